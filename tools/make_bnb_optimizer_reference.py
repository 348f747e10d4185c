#!/usr/bin/env python3
"""Writes test/data/bnb_optimizer_reference, bitsandbytes' own optimizers, for test_bnb_optimizers.

Each case runs one bitsandbytes optimizer on the CPU for STEPS updates of two parameters as the
Trainer groups them: "w" (4 x 1100: 17 blocks of 256 and a short one; weight decay) and "norm"
(64 elements, under min_8bit_size, so its state stays f32 even in 8-bit mode; no decay), with the
gradients saved here. Optimizers as transformers builds them from `optim` (adamw_8bit /
paged_adamw_8bit: AdamW(optim_bits=8); lion_32bit: Lion; lion_8bit: Lion(optim_bits=8); ademamix,
ademamix_8bit: AdEMAMix with beta3 0.9999 and alpha 5), with the Trainer's betas (adam_beta1,
adam_beta2) and lr; rmsprop_32bit, rmsprop_8bit: RMSprop(optim_bits=32 | 8), alpha 0.99, eps 1e-8
(its state1 is square_avg, on the signed map in 8-bit). AdEMAMix keeps its two first moments in state1 (2, n) and absmax1 (2, blocks). Saved per case and step t (0: the start):
<case>.<t>.w / .norm, and from t = 1 the state after t updates: <case>.<t>.<param>.state1 and
state2 (f32) or their codes (as F16) and absmax1 / absmax2;
<case>.grad.<param>.<t> is the gradient of update t + 1.
Needs torch, bitsandbytes:  tools/make_bnb_optimizer_reference.py [--out DIR]
"""
import argparse, json, os
import bitsandbytes as bnb, torch
from safetensors.torch import save_file

ap = argparse.ArgumentParser()
ap.add_argument("--out", default="test/data/bnb_optimizer_reference")
a = ap.parse_args()

STEPS = 3
CASES = {  # name: (class, kwargs beyond the groups' weight decay)
    "adamw_8bit": (bnb.optim.AdamW, dict(lr=2e-3, betas=(0.9, 0.999), eps=1e-8, optim_bits=8)),
    "lion_32bit": (bnb.optim.Lion, dict(lr=1e-3, betas=(0.9, 0.999), optim_bits=32)),
    "lion_8bit": (bnb.optim.Lion, dict(lr=1e-3, betas=(0.9, 0.999), optim_bits=8)),
    "ademamix": (bnb.optim.AdEMAMix, dict(lr=2e-3, betas=(0.9, 0.999, 0.9999), alpha=5.0, eps=1e-8, optim_bits=32)),
    "ademamix_8bit": (bnb.optim.AdEMAMix, dict(lr=2e-3, betas=(0.9, 0.999, 0.9999), alpha=5.0, eps=1e-8,
                                               optim_bits=8)),
    # transformers' rmsprop_bnb / rmsprop_bnb_32bit and rmsprop_bnb_8bit: RMSprop(optim_bits=32 | 8)
    # with its alpha 0.99 and eps 1e-8 (optim_args would set them).
    "rmsprop_32bit": (bnb.optim.RMSprop, dict(lr=1e-3, alpha=0.99, eps=1e-8, optim_bits=32)),
    "rmsprop_8bit": (bnb.optim.RMSprop, dict(lr=1e-3, alpha=0.99, eps=1e-8, optim_bits=8)),
}
WEIGHT_DECAY = 0.1

torch.manual_seed(0)
tensors, cases = {}, {}
for name, (cls, kwargs) in CASES.items():
    w = torch.randn(4, 1100)
    w[2, :300] *= 1e-3  # a block of small values next to large ones
    norm = 1.0 + 0.1 * torch.randn(64)
    w.requires_grad_(True)
    norm.requires_grad_(True)
    opt = cls([{"params": [w], "weight_decay": WEIGHT_DECAY}, {"params": [norm], "weight_decay": 0.0}], **kwargs)
    for t in range(STEPS + 1):
        tensors[f"{name}.{t}.w"], tensors[f"{name}.{t}.norm"] = w.detach().clone(), norm.detach().clone()
        for pname, p in (("w", w), ("norm", norm)):
            for key, value in opt.state[p].items():
                if key.startswith("state") or key.startswith("absmax"):
                    # Codes as F16 (exact for 0..255; safetensors is read as floats here), the rest F32.
                    stored = value.half() if value.dtype == torch.uint8 else value.float()
                    tensors[f"{name}.{t}.{pname}.{key}"] = stored.clone()
        if t == STEPS:
            break
        gw = torch.randn(4, 1100) * (0.1 if t % 2 else 1.0)
        gw[0, :256] = 0.0  # a whole block of zero gradients (its absmax falls towards 0)
        gn = 0.01 * torch.randn(64)
        tensors[f"{name}.grad.w.{t}"], tensors[f"{name}.grad.norm.{t}"] = gw.clone(), gn.clone()
        w.grad, norm.grad = gw, gn
        opt.step()
    cases[name] = {"lr": kwargs["lr"], "betas": kwargs.get("betas", (kwargs.get("alpha"), 0.0)), "eps": kwargs.get("eps", 0.0),
                   "weight_decay": WEIGHT_DECAY, "steps": STEPS, "optim_bits": kwargs["optim_bits"]}
os.makedirs(a.out, exist_ok=True)
save_file(tensors, os.path.join(a.out, "reference.safetensors"))
with open(os.path.join(a.out, "reference.json"), "w") as f:
    json.dump({"cases": cases, "torch": torch.__version__, "bitsandbytes": bnb.__version__}, f, indent=1)
print(a.out, len(tensors), "tensors", "bitsandbytes", bnb.__version__)
