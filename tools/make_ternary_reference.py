#!/usr/bin/env python3
"""Writes test/data/qat_reference/ternary_*, Axolotl's own ternary QAT for test_qat.

Axolotl 0.19's qat {weight_dtype: ternary} is not torchao's: its prepare_model_for_ternary_qat
swaps every nn.Linear but lm_head for a TernaryFakeQuantizedLinear (BitNet b1.58: each weight row
rounded to {-1, 0, 1} times the row's mean magnitude; with any activation_dtype, which must be
int8, each input row to int8 times its largest magnitude over 127), both applied as
x + (q - x).detach(). Its convert_ternary_model bakes ternarize(w) into the weights before the
final save. This script calls those functions themselves.

ternary_ops.safetensors, in f32 on the CPU, for each case: the input (x.<case>), an upstream
gradient (dy.<case>), the quantiser's output (out.<case>), the input's gradient from torch's
autograd (grad.<case>) and, for weight cases, what convert bakes in (baked.<case>). Weight cases
(ternary_<case>): random rows; an all-zero row and one under the 1e-5 scale clamp; a constant row;
a row of values at +-0.5 and +-1.5 of its scale (round half to even); a row with one outlier.
Input cases (int8_absmax_<case>): random rows; an all-zero row; one non-zero element; a row under
the clamp; values at half levels.
Then test_hf's two transformers models (test/data/hf_reference) prepared as Axolotl prepares
them: untied_gqa2_ternary (weights only) and tied_gqa4_ternary_int8 (int8 inputs too), each
<name>.safetensors (logits, grad.<parameter>) and <name>.json (loss, the dtypes).
Needs torch, transformers and Axolotl 0.19 (PYTHONPATH may name an unpacked wheel):
  tools/make_ternary_reference.py [--out test/data/qat_reference] [--hf test/data/hf_reference]
"""
import argparse, json, os
import torch
from safetensors.torch import save_file
from axolotl.utils.quantization_ternary import (TernaryFakeQuantizer, prepare_model_for_ternary_qat, quantize_activation,
                                                ternarize)
from hf_reference_grads import write_model_reference

ap = argparse.ArgumentParser()
ap.add_argument("--out", default="test/data/qat_reference")
ap.add_argument("--hf", default="test/data/hf_reference")
a = ap.parse_args()
torch.manual_seed(0)

weights = {"random": torch.randn(6, 96) * 0.05}
rows = torch.randn(6, 40) * 0.02
rows[0] = 0.0                                   # scale clamps to 1e-5: all zero
rows[1] = torch.randn(40) * 1e-7                # mean magnitude under the clamp
rows[2] = -0.3                                  # constant: every value its own scale
rows[3] = torch.tensor([0.5, -0.5, 1.5, -1.5] * 10)  # mean 1: exactly between levels
rows[4, 7] = 5.0                                # one outlier lifts the scale
rows[5] = torch.linspace(-1, 1, 40)
weights["edges"] = rows

inputs = {"random": torch.randn(7, 48) * 2.0}
rows = torch.randn(5, 40)
rows[0] = 0.0                                   # scale clamps: all zero
rows[1] = 0.0
rows[1, 11] = -3.0                              # one non-zero element
rows[2] = torch.randn(40) * 1e-7                # amax under the clamp
rows[3] = (torch.arange(40) - 20.0) + 0.5       # -19.5 .. 19.5 exactly between levels,
rows[3, 0] = 127.0                              # as 127 makes the scale 1
rows[4] = torch.linspace(-4, 4, 40)
inputs["edges"] = rows

tensors = {}
def record(name, x, quantize, bake=None):
    x = x.clone().requires_grad_(True)
    y = TernaryFakeQuantizer(quantize)(x)
    dy = torch.randn_like(y)
    (y * dy).sum().backward()
    tensors["x." + name] = x.detach().contiguous()
    tensors["dy." + name] = dy.contiguous()
    tensors["out." + name] = y.detach().contiguous()
    tensors["grad." + name] = x.grad.contiguous()
    if bake:
        tensors["baked." + name] = bake(x.detach()).contiguous()

for name, w in weights.items():
    record("ternary_" + name, w, ternarize, ternarize)
for name, x in inputs.items():
    record("int8_absmax_" + name, x, quantize_activation)

os.makedirs(a.out, exist_ok=True)
save_file(tensors, os.path.join(a.out, "ternary_ops.safetensors"))
with open(os.path.join(a.out, "ternary_ops.json"), "w") as f:
    json.dump({"ternary_cases": ["ternary_" + n for n in weights], "int8_absmax_cases": ["int8_absmax_" + n for n in inputs],
               "torch": torch.__version__}, f, indent=1)
print(a.out, {k: tuple(v.shape) for k, v in tensors.items()})

for name, activation in (("untied_gqa2", None), ("tied_gqa4", "int8")):
    out_name = name + "_ternary" + ("_int8" if activation else "")
    loss = write_model_reference(
        a.hf, name, lambda model, act=activation: prepare_model_for_ternary_qat(model, quantize_activations=act is not None),
        a.out, out_name=out_name, weight_dtype="ternary", activation_dtype=activation)
    print(out_name, "loss", loss)
