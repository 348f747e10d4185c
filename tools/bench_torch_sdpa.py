#!/usr/bin/env python3
"""Times torch's scaled_dot_product_attention (flash backend) on the shapes `llm_bench attention`
uses, the same way: a cache flush before each run, CUDA events around it (a wall clock on the
CPU), the median; FLOPs by the same convention (4*b*h*s^2*d forward, 2.5x that for backward, half
when causal). bf16 on a GPU; f32 with --threads threads on the CPU (`--device cpu`), as our CPU
backend runs. `--json FILE` writes rows that tools/bench_compare.py joins with llm_bench's JSON.

usage: tools/bench_torch_sdpa.py [--seq 512,...] [--head-dim 64,128] [--causal 0,1]
                                 [--pass fwd,fwd_bwd] [--batch 1] [--heads 16] [--kv-heads 16]
                                 [--repeats 20] [--device cuda|cpu] [--threads 2] [--json FILE]
"""
import argparse
import json
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
    parser.add_argument("--kv-heads", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", default="")
    args = parser.parse_args()

    import time
    import torch
    import torch.nn.functional as F
    from torch.nn.attention import SDPBackend, sdpa_kernel

    gpu = args.device == "cuda"
    if not gpu:
        torch.set_num_threads(args.threads)
    dtype = torch.bfloat16 if gpu else torch.float32
    cache_bytes = torch.cuda.get_device_properties(0).L2_cache_size if gpu else 32 << 20
    flush = torch.empty(2 * cache_bytes, dtype=torch.uint8, device=args.device)
    gqa = {"enable_gqa": True} if args.kv_heads != args.heads else {}
    rows = []
    print(f"{'impl':<14}{'seq':>7}{'d':>5}{'causal':>7} {'pass':<9}{'ms':>10}{'TFLOP/s':>10}")
    for seq in args.seq:
        for d in args.head_dim:
            for causal in args.causal:
                def tensor(heads, grad):
                    return torch.randn((args.batch, heads, seq, d), device=args.device,
                                       dtype=dtype, requires_grad=grad)
                q, k, v = tensor(args.heads, True), tensor(args.kv_heads, True), tensor(args.kv_heads, True)
                dout = tensor(args.heads, False)
                for name in args.passes.split(","):
                    def run():
                        q.grad = k.grad = v.grad = None
                        flush.zero_()
                        if gpu:
                            start = torch.cuda.Event(enable_timing=True)
                            end = torch.cuda.Event(enable_timing=True)
                            start.record()
                        wall = time.perf_counter()
                        with sdpa_kernel(SDPBackend.FLASH_ATTENTION):
                            out = F.scaled_dot_product_attention(q, k, v, is_causal=bool(causal), **gqa)
                        if name == "fwd_bwd":
                            out.backward(dout)
                        if not gpu:
                            return (time.perf_counter() - wall) * 1e3
                        end.record()
                        torch.cuda.synchronize()
                        return start.elapsed_time(end)
                    run()
                    ms = statistics.median(run() for _ in range(args.repeats))
                    flops = 4 * args.batch * args.heads * seq * seq * d
                    flops *= 3.5 if name == "fwd_bwd" else 1.0
                    flops /= 2 if causal else 1
                    tflops = flops / ms / 1e9
                    print(f"{'torch_sdpa':<14}{seq:>7}{d:>5}{causal:>7} {name:<9}{ms:>10.3f}{tflops:>10.3f}")
                    rows.append({"impl": "torch_sdpa", "seq": seq, "head_dim": d, "causal": causal,
                                 "pass": name, "batch": args.batch, "heads": args.heads,
                                 "kv_heads": args.kv_heads, "ms": ms, "tflops": tflops})
    if args.json:
        with open(args.json, "w") as out:
            device = torch.cuda.get_device_name(0) if gpu else f"cpu, {torch.get_num_threads()} threads"
            json.dump({"device": device, "torch": torch.__version__,
                       "rows": rows}, out, indent=1)


if __name__ == "__main__":
    main()
