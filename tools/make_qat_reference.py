#!/usr/bin/env python3
"""Writes test/data/qat_reference, torchao's own fake quantisation for Axolotl's `qat`, for test_qat.

Axolotl's qat {activation_dtype: int8, weight_dtype: int4, group_size: G} swaps every nn.Linear
for torchao's FakeQuantizedLinear with an Int4WeightFakeQuantizer(group_size G, bf16 activations)
on the weight and a per-token asymmetric int8 IntxFakeQuantizer on the input. For each case, in
f32 on the CPU: the input (w.<case> or x.<case>), an upstream gradient (dy.<case>), torchao's
output (out.<case>) and the input's gradient from torch's autograd through it (grad.<case>).
int4 cases (groups of 32 along each row): random rows; rows with ties at a group's min and max;
a constant group and one narrower than the 1e-6 scale clamp (which stops the gradient through
the scale); values that land on the .5 between levels. int8 cases (per row): random rows, an
all-positive row, an all-negative row, an all-zero row, one with a single non-zero element.
Axolotl's other schemes (its _make_qat_config): fp8 rows (torchao's Float8FakeQuantizer, per row,
e4m3: activations and weights of float8_e4m3fn / float8_e4m3fn, activations of float8_e4m3fn /
int4) on random rows, rows with ties at +-max, tiny values and a single non-zero element
(fp8_rows_<case>); and int4 weights for fp8 activations (Int4WeightFakeQuantizer's default: fp8
rows, then symmetric int4 groups; weight_dtype int4 alone and float8_e4m3fn / int4) on random
rows, ties, a constant group, a group under the 1e-6 scale clamp and values between levels
(int4fp8_<case>); and mxfp4 (Axolotl's weight_dtype mxfp4: torchao's MXTensor.to_mx with the
RCEIL scales its MXFakeQuantizeConfig defaults to, dequantised) on random rows, an all-zero block,
tiny values, e2m1's midpoints and a block whose amax / 6 is a power of two (mxfp4_<case>: out only;
the gradient passes straight through).
Then whole models: test_hf's two transformers models (test/data/hf_reference: untied with GQA 2,
tied with GQA 4) prepared as Axolotl's prepare_model_for_qat prepares them (torchao's quantize_
with that QATConfig: every nn.Linear, lm_head too), group size 32 and 16 (the tied model's
intermediate_size is 48): <model>.safetensors holds logits and grad.<parameter> from loss.backward()
on the reference's ids, <model>.json the loss and group size. The other schemes on them as
<model>_<scheme>.safetensors / .json (the json names the two dtypes; mxfp4 on the untied model,
whose widths are multiples of its blocks of 32).
Needs torch, torchao, transformers:  tools/make_qat_reference.py [--out DIR] [--hf test/data/hf_reference]
"""
import argparse, json, os
import torch, torchao
from safetensors.torch import save_file
from torchao.quantization.qat.fake_quantize_config import (Float8FakeQuantizeConfig, Int4WeightFakeQuantizeConfig,
                                                            IntxFakeQuantizeConfig)
from torchao.quantization.qat.fake_quantizer import Float8FakeQuantizer, Int4WeightFakeQuantizer, IntxFakeQuantizer

GROUP = 32
ap = argparse.ArgumentParser()
ap.add_argument("--out", default="test/data/qat_reference")
ap.add_argument("--hf", default="test/data/hf_reference")
a = ap.parse_args()
torch.manual_seed(0)

int4 = {"random": torch.randn(6, 4 * GROUP) * 0.05}
ties = torch.randn(4, 2 * GROUP)
ties[0, 3] = ties[0, 7] = ties[0, :GROUP].max() + 0.25    # two maxima in a group
ties[1, 40] = ties[1, 41] = ties[1, 50] = ties[1, GROUP:].min() - 0.5  # three minima
ties[2, :GROUP] = 0.75                                      # a constant group
ties[3, GROUP:] = 0.1 + torch.arange(GROUP) * 1e-8          # range below the 1e-6 clamp
int4["ties"] = ties
halves = torch.empty(2, GROUP)
steps = torch.arange(15, dtype=torch.float32) + 0.5        # min 0, max 15: s 1, these exactly between levels
halves[0] = torch.cat([torch.tensor([0.0, 15.0]), steps, steps.flip(0)])
halves[1] = torch.linspace(-1, 1, GROUP) ** 3
int4["halves"] = halves

int8 = {"random": torch.randn(7, 48) * 2.0}
rows = torch.randn(5, 40)
rows[0] = rows[0].abs() + 0.1
rows[1] = -rows[1].abs() - 0.1
rows[2] = 0.0
rows[3] = 0.0
rows[3, 11] = 3.0
int8["edges"] = rows

tensors = {}
def record(name, x, quantizer):
    x = x.clone().requires_grad_(True)
    y = quantizer(x)
    dy = torch.randn_like(y)
    (y * dy).sum().backward()
    tensors["x." + name] = x.detach().contiguous()
    tensors["dy." + name] = dy.contiguous()
    tensors["out." + name] = y.detach().contiguous()
    tensors["grad." + name] = x.grad.contiguous()

w_quantizer = Int4WeightFakeQuantizer(Int4WeightFakeQuantizeConfig(group_size=GROUP, activation_dtype=torch.bfloat16))
x_quantizer = IntxFakeQuantizer(IntxFakeQuantizeConfig(dtype=torch.int8, granularity="per_token", is_symmetric=False))
for name, w in int4.items():
    record("int4_" + name, w, w_quantizer)
for name, x in int8.items():
    record("int8_" + name, x, x_quantizer)
# Drawn after the cases above, which keep their draws.
fp8_rows = {"random": torch.randn(7, 48) * 2.0}
rows = torch.randn(4, 40)
rows[0, 3] = 6.0
rows[0, 17] = -6.0                                          # +-max tie
rows[1] = torch.randn(40) * 1e-3
rows[1, 0] = 1.0                                            # most values in e4m3's subnormals
rows[2] = 0.0
rows[2, 5] = -0.3                                           # a single non-zero element
rows[3] = torch.linspace(-1, 1, 40)
fp8_rows["edges"] = rows

int4fp8 = {"random": torch.randn(6, 4 * GROUP) * 0.05}
ties = torch.randn(4, 2 * GROUP)
ties[0, 3] = ties[0, :GROUP].abs().max() + 0.25
ties[0, 7] = -ties[0, 3]                                    # +-max tie in a group
ties[1, GROUP:] = 0.75                                      # a constant group
ties[2, :GROUP] = torch.randn(GROUP) * 1e-7                 # amax / 8 under the 1e-6 clamp
ties[3] = torch.linspace(-2, 2, 2 * GROUP)
int4fp8["ties"] = ties

fp8_quantizer = Float8FakeQuantizer(Float8FakeQuantizeConfig(dtype=torch.float8_e4m3fn))
int4fp8_quantizer = Int4WeightFakeQuantizer(Int4WeightFakeQuantizeConfig(group_size=GROUP))  # fp8 activations
for name, x in fp8_rows.items():
    record("fp8_rows_" + name, x, fp8_quantizer)
for name, w in int4fp8.items():
    record("int4fp8_" + name, w, int4fp8_quantizer)
from torchao.prototype.mx_formats.mx_tensor import MXTensor
from torchao.prototype.qat import MXFakeQuantizeConfig
MX = MXFakeQuantizeConfig(dtype=torch.float4_e2m1fn_x2, block_size=32)  # Axolotl's, RCEIL scales
mxfp4 = {"random": torch.randn(5, 96) * 2.0}
blocks = torch.randn(4, 64)
blocks[0, :32] = 0.0                                        # an all-zero block
blocks[1, :32] = torch.randn(32) * 1e-30                    # tiny: a scale far below 1
blocks[2] = torch.tensor([0.25, 0.75, 1.25, 1.75, 2.5, 3.5, 5.0, 6.0] * 8)  # e2m1's midpoints, amax 6: scale 1
blocks[3, 32:] = torch.linspace(-12.0, 12.0, 32)            # amax / 6 = 2: scale 2 exactly
mxfp4["blocks"] = blocks
for name, x in mxfp4.items():
    q = MXTensor.to_mx(x, elem_dtype=MX.dtype, block_size=MX.block_size, scaling_mode=MX.scaling_mode,
                       kernel_preference=MX.kernel_preference)
    tensors["x.mxfp4_" + name] = x.contiguous()
    tensors["out.mxfp4_" + name] = q.dequantize(torch.float32).contiguous()

os.makedirs(a.out, exist_ok=True)
save_file(tensors, os.path.join(a.out, "ops.safetensors"))
with open(os.path.join(a.out, "ops.json"), "w") as f:
    json.dump({"group_size": GROUP, "int4_cases": ["int4_" + n for n in int4], "int8_cases": ["int8_" + n for n in int8],
               "fp8_rows_cases": ["fp8_rows_" + n for n in fp8_rows], "int4fp8_cases": ["int4fp8_" + n for n in int4fp8],
               "mxfp4_cases": ["mxfp4_" + n for n in mxfp4],
               "torch": torch.__version__, "torchao": torchao.__version__}, f, indent=1)
print(a.out, {k: tuple(v.shape) for k, v in tensors.items()}, "torchao", torchao.__version__)

from torchao.quantization import quantize_
from torchao.quantization.qat import QATConfig
from hf_reference_grads import write_model_reference


def prepare_qat(group):
    def prepare(model):
        weight = Int4WeightFakeQuantizeConfig(group_size=group, activation_dtype=torch.bfloat16)
        activation = IntxFakeQuantizeConfig(dtype=torch.int8, granularity="per_token", is_symmetric=False)
        quantize_(model, QATConfig(weight_config=weight, activation_config=activation))
    return prepare


for name, group in (("untied_gqa2", 32), ("tied_gqa4", 16)):
    loss = write_model_reference(a.hf, name, prepare_qat(group), a.out, group_size=group, torchao=torchao.__version__)
    print(name, "qat loss", loss)


# Axolotl's _make_qat_config for its other schemes: int4 weights for fp8 activations (the
# Int4WeightFakeQuantizeConfig default), fp8 activations per row.
def prepare_scheme(activation, weight, group):
    def prepare(model):
        if weight == "mxfp4":  # MX on inputs and weights, whatever activation_dtype says
            quantize_(model, QATConfig(weight_config=MX, activation_config=MX))
            return
        w = (Int4WeightFakeQuantizeConfig(group_size=group) if weight == "int4"
             else Float8FakeQuantizeConfig(dtype=torch.float8_e4m3fn))
        x = Float8FakeQuantizeConfig(dtype=torch.float8_e4m3fn) if activation == "float8_e4m3fn" else None
        quantize_(model, QATConfig(weight_config=w, activation_config=x))
    return prepare


for name, scheme, activation, weight, group in (("untied_gqa2", "fp8int4", "float8_e4m3fn", "int4", 32),
                                                 ("tied_gqa4", "int4", None, "int4", 16),
                                                 ("untied_gqa2", "fp8fp8", "float8_e4m3fn", "float8_e4m3fn", 32),
                                                 ("untied_gqa2", "mxfp4", None, "mxfp4", 32)):
    loss = write_model_reference(a.hf, name, prepare_scheme(activation, weight, group), a.out,
                                 out_name=name + "_" + scheme, group_size=group, activation_dtype=activation,
                                 weight_dtype=weight, torchao=torchao.__version__)
    print(name, scheme, "qat loss", loss)
