#!/usr/bin/env python3
"""Writes test/data/fp8_reference, torchao's own fp8 training numerics for Axolotl's `fp8: true`, for test_fp8.

Axolotl's fp8 hands accelerate AORecipeKwargs(), which converts every nn.Linear but the model's
first and last (and any with a width not a multiple of 16) to torchao's Float8Linear with its
default config: tensorwise dynamic scaling, e4m3 inputs and weights, e5m2 output gradients.
Casts: for each case x.<case> (f32), torchao's hp_tensor_to_float8_dynamic as the GEMM reads it,
its codes times the scale's reciprocal, in f32 (e4m3.<case>, e5m2.<case>): random values, values beyond the range after scaling, exact ties
between codes, subnormals. Models: test_hf's two transformers models (test/data/hf_reference)
converted by accelerate's convert_model_to_fp8_ao: <model>.safetensors holds logits and
grad.<parameter> from loss.backward() on the reference's ids, <model>.json the loss and which
linears were converted.
Needs torch, torchao, transformers, accelerate:  tools/make_fp8_reference.py [--out DIR] [--hf DIR]
"""
import argparse, json, os
import torch, torchao, accelerate
from safetensors.torch import save_file
from accelerate.utils.ao import convert_model_to_fp8_ao
from torchao.float8.float8_linear import Float8Linear
from torchao.float8.float8_scaling_utils import hp_tensor_to_float8_dynamic
from torchao.float8.float8_training_tensor import LinearMMConfig
from hf_reference_grads import write_model_reference

ap = argparse.ArgumentParser()
ap.add_argument("--out", default="test/data/fp8_reference")
ap.add_argument("--hf", default="test/data/hf_reference")
a = ap.parse_args()
os.makedirs(a.out, exist_ok=True)
torch.manual_seed(0)

cases = {"random": torch.randn(7, 33) * 0.3, "wide": torch.randn(5, 64) * torch.logspace(-6, 3, 64)}
ties = torch.tensor([448.0, 1.0625, 1.1875, 3 * 2.0 ** -10, -2.0 ** -10, 0.0, 1.09375, 300.0, -17.0])
cases["ties"] = ties.view(1, -1)
tensors = {}
for name, x in cases.items():
    tensors["x." + name] = x.contiguous()
    for fmt, dtype in (("e4m3", torch.float8_e4m3fn), ("e5m2", torch.float8_e5m2)):
        t = hp_tensor_to_float8_dynamic(x, dtype, LinearMMConfig())
        # As torch._scaled_mm reads it: the code times the scale's reciprocal (to_original_precision
        # divides instead, one rounding away).
        tensors[fmt + "." + name] = (t._data.float() * t._scale.reciprocal()).contiguous()
save_file(tensors, os.path.join(a.out, "casts.safetensors"))

def convert(model):
    convert_model_to_fp8_ao(model)
    return {"converted": sorted(n for n, m in model.named_modules() if isinstance(m, Float8Linear))}


for name in ("untied_gqa2", "tied_gqa4"):
    loss = write_model_reference(a.hf, name, convert, a.out, torchao=torchao.__version__, accelerate=accelerate.__version__)
    print(name, "fp8 loss", loss)
