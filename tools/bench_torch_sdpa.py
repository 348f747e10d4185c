#!/usr/bin/env python3
"""Times torch's scaled_dot_product_attention (flash backend) on the shapes `llm_bench attention`
uses, with the same FLOP convention (4*b*h*s^2*d forward, 2.5x that for backward, half when
causal), so `make bench-attention` can print both side by side. Needs torch with CUDA.

usage: tools/bench_torch_sdpa.py [--seq 512,...] [--head-dim 64,128] [--causal 0,1]
                                 [--pass fwd,fwd_bwd] [--batch 1] [--heads 16] [--repeats 20]
"""
import argparse
import statistics


def ints(text):
    return [int(x) for x in text.split(",")]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seq", type=ints, default=ints("512,1024,2048,4096,8192,16384"))
    parser.add_argument("--head-dim", type=ints, default=ints("64,128"))
    parser.add_argument("--causal", type=ints, default=ints("0,1"))
    parser.add_argument("--pass", dest="passes", default="fwd,fwd_bwd")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--heads", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()

    import torch
    import torch.nn.functional as F
    from torch.nn.attention import SDPBackend, sdpa_kernel

    print(f"{'impl':<14}{'seq':>7}{'d':>5}{'causal':>7} {'pass':<9}{'ms':>10}{'TFLOP/s':>10}")
    for d in args.head_dim:
        for causal in args.causal:
            for seq in args.seq:
                shape = (args.batch, args.heads, seq, d)
                q, k, v = (torch.randn(shape, device="cuda", dtype=torch.bfloat16,
                                       requires_grad=True) for _ in range(3))
                dout = torch.randn(shape, device="cuda", dtype=torch.bfloat16)
                for name in args.passes.split(","):
                    def run():
                        with sdpa_kernel(SDPBackend.FLASH_ATTENTION):
                            out = F.scaled_dot_product_attention(q, k, v, is_causal=bool(causal))
                        if name == "fwd_bwd":
                            out.backward(dout)
                    for _ in range(3):
                        run()
                    times = []
                    for _ in range(args.repeats):
                        start = torch.cuda.Event(enable_timing=True)
                        end = torch.cuda.Event(enable_timing=True)
                        start.record()
                        run()
                        end.record()
                        torch.cuda.synchronize()
                        times.append(start.elapsed_time(end))
                    ms = statistics.median(times)
                    flops = 4 * args.batch * args.heads * seq * seq * d
                    flops *= 3.5 if name == "fwd_bwd" else 1.0
                    flops /= 2 if causal else 1
                    print(f"{'torch_sdpa':<14}{seq:>7}{d:>5}{causal:>7} {name:<9}{ms:>10.3f}"
                          f"{flops / ms / 1e9:>10.1f}")


if __name__ == "__main__":
    main()
