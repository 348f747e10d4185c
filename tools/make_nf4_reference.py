#!/usr/bin/env python3
"""Writes test/data/nf4_reference, bitsandbytes' own NF4 quantisation, for test_nf4.

For each case tensor w.<case> (f32): bnb.functional.quantize_4bit(w, blocksize=64,
quant_type="nf4", compress_statistics=True) on the CPU, as transformers' BitsAndBytesConfig
(bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True) quantises a Linear weight. Saved:
codes.<case> (the packed bytes), absmax_codes.<case> (8-bit codes of absmax - offset),
offset.<case> (1), state2_absmax.<case> (f32 per 256 absmax), absmax.<case> (bnb's f32 absmax
before double quantisation), dequant.<case> (dequantize_4bit of the double-quantised state) and
dequant_plain.<case> (dequantize_4bit without double quantisation); state2_code is the 8-bit map
bnb dequantised the absmax with. safetensors here is read as floats only, so codes are stored
as F32 (exact for 0..255). Cases cover numel not a multiple of 64 (and odd), absmax counts not
a multiple of 256, an all-zero block and rows of very different scales.
Needs torch, bitsandbytes:  tools/make_nf4_reference.py [--out DIR]
"""
import argparse, json, os
import bitsandbytes as bnb, torch
import bitsandbytes.functional as F
from safetensors.torch import save_file

ap = argparse.ArgumentParser()
ap.add_argument("--out", default="test/data/nf4_reference")
a = ap.parse_args()
torch.manual_seed(0)
cases = {
    "square": torch.randn(64, 64) * 0.02,
    "odd": torch.randn(7, 37),                                        # 259: odd, 4 blocks + 3
    "rows": torch.randn(23, 835) * torch.logspace(-3, 1, 23)[:, None],  # 302 absmax: 2 blocks of 256
}
cases["rows"][5, :200] = 0  # two whole zero blocks (absmax 0) and a partial one
tensors, code = {}, None
for name, w in cases.items():
    q, state = F.quantize_4bit(w, blocksize=64, quant_type="nf4", compress_statistics=True)
    _, plain = F.quantize_4bit(w, blocksize=64, quant_type="nf4", compress_statistics=False)
    tensors["w." + name] = w.contiguous()
    tensors["codes." + name] = q.flatten().float()
    tensors["absmax." + name] = plain.absmax.float()
    tensors["absmax_codes." + name] = state.absmax.flatten().float()
    tensors["offset." + name] = state.offset.reshape(1).float()
    tensors["state2_absmax." + name] = state.state2.absmax.float()
    tensors["dequant." + name] = F.dequantize_4bit(q, state).float().contiguous()
    tensors["dequant_plain." + name] = F.dequantize_4bit(q, plain).float().contiguous()
    code = state.state2.code.float()
tensors["state2_code"] = code.contiguous()
tensors["nf4_code"] = F.get_4bit_type("nf4", device="cpu").float()
os.makedirs(a.out, exist_ok=True)
save_file(tensors, os.path.join(a.out, "reference.safetensors"))
with open(os.path.join(a.out, "reference.json"), "w") as f:
    json.dump({"cases": list(cases), "torch": torch.__version__, "bitsandbytes": bnb.__version__}, f, indent=1)
print(a.out, {k: tuple(v.shape) for k, v in tensors.items()}, "bitsandbytes", bnb.__version__)
