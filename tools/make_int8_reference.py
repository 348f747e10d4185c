#!/usr/bin/env python3
"""Writes test/data/int8_reference, bitsandbytes' own LLM.int8 weight quantisation, for test_int8.

For each case tensor w.<case> (f32, (out, in)): bnb.nn.Int8Params(w, has_fp16_weights=False)
quantised on the CPU by its _quantize (what moving it to a device runs), as transformers' BitsAndBytesConfig(load_in_8bit=True) quantises a Linear
weight (the weight cast to fp16, then int8_vectorwise_quant row by row). Saved: codes.<case>
(Int8Params' CB, int8, stored as F32: exact for -127..127), scb.<case> (its SCB, f32 per row) and
dequant.<case> (int8_vectorwise_dequant(CB, SCB)). Cases cover f32 values between fp16's, fp16
subnormals (rows scaled down to 1e-7), exact .5 ties (round to even) and a row whose absmax is
negative. An all-zero row is not a case: bnb divides 0 by 0 there (ours keeps codes 0).
Needs torch, bitsandbytes:  tools/make_int8_reference.py [--out DIR]
"""
import argparse, json, os
import bitsandbytes as bnb, torch
import bitsandbytes.functional as F
from safetensors.torch import save_file

ap = argparse.ArgumentParser()
ap.add_argument("--out", default="test/data/int8_reference")
a = ap.parse_args()
torch.manual_seed(0)
ties = torch.tensor([[127.0, 0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 126.5, -126.5, 3.5]])
cases = {
    "square": torch.randn(64, 64) * 0.02,
    "rows": torch.randn(23, 835) * torch.logspace(-7, 1, 23)[:, None],
    "ties": torch.cat([ties, -ties]),
}
cases["rows"][3, 17] = -5 * cases["rows"][3].abs().max()  # a row whose absmax is a negative weight
tensors = {}
for name, w in cases.items():
    p = bnb.nn.Int8Params(w.clone(), requires_grad=False, has_fp16_weights=False)
    p = p._quantize("cpu")
    cb, scb = p.CB, p.SCB
    assert cb.dtype == torch.int8 and scb.dtype == torch.float32
    tensors["w." + name] = w.contiguous()
    tensors["codes." + name] = cb.float().contiguous()
    tensors["scb." + name] = scb.contiguous()
    tensors["dequant." + name] = F.int8_vectorwise_dequant(cb, scb).float().contiguous()
os.makedirs(a.out, exist_ok=True)
save_file(tensors, os.path.join(a.out, "reference.safetensors"))
with open(os.path.join(a.out, "reference.json"), "w") as f:
    json.dump({"cases": list(cases), "torch": torch.__version__, "bitsandbytes": bnb.__version__}, f, indent=1)
print(a.out, {k: tuple(v.shape) for k, v in tensors.items()}, "bitsandbytes", bnb.__version__)
