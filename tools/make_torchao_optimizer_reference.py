#!/usr/bin/env python3
"""Writes test/data/torchao_optimizer_reference, torchao's AdamW8bit, AdamW4bit and AdamWFp8, for test_torchao_optimizer.

torchao's AdamW8bit and AdamW4bit as transformers builds them for `optim: adamw_torch_8bit` and
`adamw_torch_4bit` (block_size 256 for both, the Trainer's betas, eps and lr), and AdamWFp8 as
Axolotl builds it for `optimizer: ao_adamw_fp8` (its default block_size, 256), each run on the CPU
(its update torch.compile'd) for STEPS updates of two
parameters as the Trainer groups them: "w" (4 x 1024: 16 blocks of 256, 8-bit state; weight decay;
one block of small values beside large ones, one block of zero gradients) and "norm" (64 elements:
f32 state; no decay). Saved in reference.safetensors (AdamW8bit) and reference_4bit.safetensors
(AdamW4bit, its codes two to a byte, the first in the high nibble) and reference_fp8.safetensors
(AdamWFp8, its float8_e4m3fn codes' bytes): <t>.w and <t>.norm (t = 0: the start), from t = 1 the state after t
updates: <t>.w.exp_avg.codes / .scale and <t>.w.exp_avg_sq.codes / .scale (codes as F16, exact for
0..255), <t>.norm.exp_avg and <t>.norm.exp_avg_sq; grad.<param>.<t> is the gradient of update t + 1.
Needs torch, torchao:  tools/make_torchao_optimizer_reference.py [--out DIR]
"""
import argparse, json, os
import torch, torchao
from safetensors.torch import save_file
from torchao.optim import AdamW4bit, AdamW8bit, AdamWFp8

ap = argparse.ArgumentParser()
ap.add_argument("--out", default="test/data/torchao_optimizer_reference")
a = ap.parse_args()

STEPS, LR, WEIGHT_DECAY = 3, 2e-3, 0.1


def run(optimizer_class):
    torch.manual_seed(0)
    w = torch.randn(4, 1024)
    w[2, :256] *= 1e-3
    norm = 1.0 + 0.1 * torch.randn(64)
    w.requires_grad_(True)
    norm.requires_grad_(True)
    opt = optimizer_class([{"params": [w], "weight_decay": WEIGHT_DECAY}, {"params": [norm], "weight_decay": 0.0}],
                          lr=LR, betas=(0.9, 0.999), eps=1e-8, block_size=256)
    tensors = {}
    for t in range(STEPS + 1):
        tensors[f"{t}.w"], tensors[f"{t}.norm"] = w.detach().clone(), norm.detach().clone()
        if t > 0:
            for key in ("exp_avg", "exp_avg_sq"):
                state = opt.state[w][key]
                codes = state.codes.view(torch.uint8) if state.codes.dtype == torch.float8_e4m3fn else state.codes
                tensors[f"{t}.w.{key}.codes"] = codes.half().clone()
                tensors[f"{t}.w.{key}.scale"] = state.scale.clone()
                tensors[f"{t}.norm.{key}"] = opt.state[norm][key].clone()
        if t == STEPS:
            break
        gw = torch.randn(4, 1024) * (0.1 if t % 2 else 1.0)
        gw[0, :256] = 0.0
        gn = 0.01 * torch.randn(64)
        tensors[f"grad.w.{t}"], tensors[f"grad.norm.{t}"] = gw.clone(), gn.clone()
        w.grad, norm.grad = gw, gn
        opt.step()
    return tensors


os.makedirs(a.out, exist_ok=True)
for optimizer_class, file in ((AdamW8bit, "reference.safetensors"), (AdamW4bit, "reference_4bit.safetensors"),
                              (AdamWFp8, "reference_fp8.safetensors")):
    tensors = run(optimizer_class)
    save_file(tensors, os.path.join(a.out, file))
with open(os.path.join(a.out, "reference.json"), "w") as f:
    json.dump({"lr": LR, "betas": [0.9, 0.999], "eps": 1e-8, "weight_decay": WEIGHT_DECAY, "steps": STEPS,
               "torch": torch.__version__, "torchao": torchao.__version__}, f, indent=1)
print(a.out, len(tensors), "tensors", "torchao", torchao.__version__)
