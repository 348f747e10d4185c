#!/usr/bin/env python3
"""Writes test/data/lora_init_reference, PEFT 0.21's inits from the base weight, for test_lora_init.

PEFT's own LoRA layer (get_peft_model on a one-linear module, r 4, lora_alpha 8: scale 2) starts
from a random weight W, tall (40 x 24) and wide (24 x 40), with init_lora_weights pissa (torch's
exact SVD), pissa_niter_2 (torch.svd_lowrank, whose one torch.randn draw is recorded as `draws`, so the test
can hand ours the same values) and olora
(torch's QR). reference.safetensors holds, per shape and init, W, PEFT's lora_A and lora_B and the
residual base weight it leaves: `<shape>.w`, `<shape>.<init>.a`, `.b`, `.residual`,
`<shape>.pissa_niter_2.draws`.
Needs torch, peft:  tools/make_lora_init_reference.py [--out DIR]
"""
import argparse
import os

import peft
import torch
from safetensors.torch import save_file

R, ALPHA, NITER, DRAW_SEED = 4, 8, 2, 11
SHAPES = {"tall": (40, 24), "wide": (24, 40)}


class OneLinear(torch.nn.Module):
    def __init__(self, w):
        super().__init__()
        self.proj = torch.nn.Linear(w.shape[1], w.shape[0], bias=False)
        self.proj.weight.data.copy_(w)

    def forward(self, x):
        return self.proj(x)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="test/data/lora_init_reference")
    out = ap.parse_args().out
    os.makedirs(out, exist_ok=True)
    torch.set_num_threads(1)
    g = torch.Generator().manual_seed(7)
    tensors = {}
    for shape_name, (rows, cols) in SHAPES.items():
        w = torch.randn(rows, cols, generator=g) * 0.1
        tensors[f"{shape_name}.w"] = w
        for init in ("pissa", f"pissa_niter_{NITER}", "olora"):
            torch.manual_seed(DRAW_SEED)
            draws = []
            randn = torch.randn

            def recording_randn(*args, **kwargs):  # torch._lowrank's draw, kept
                draws.append(randn(*args, **kwargs))
                return draws[-1]
            torch.randn = recording_randn
            model = peft.get_peft_model(OneLinear(w), peft.LoraConfig(r=R, lora_alpha=ALPHA, target_modules=["proj"],
                                                                     init_lora_weights=init))
            torch.randn = randn
            layer = model.base_model.model.proj
            key = f"{shape_name}.{init}"
            tensors[key + ".a"] = layer.lora_A["default"].weight.detach().clone()
            tensors[key + ".b"] = layer.lora_B["default"].weight.detach().clone()
            tensors[key + ".residual"] = layer.base_layer.weight.detach().clone()
            if init.startswith("pissa_niter"):
                assert len(draws) == 1 and draws[0].shape == (min(rows, cols), R)
                tensors[key + ".draws"] = draws[0]
    save_file({k: v.contiguous() for k, v in tensors.items()}, os.path.join(out, "reference.safetensors"))
    print(f"wrote {len(tensors)} tensors to {out}")


if __name__ == "__main__":
    main()
