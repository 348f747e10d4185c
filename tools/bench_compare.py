#!/usr/bin/env python3
"""Prints llm_bench attention's rows beside torch SDPA's on the same shape (seq, head_dim, causal,
pass, batch, heads, kv_heads), with speedup = torch ms / our ms (above 1: ours is faster). S2 rows
are compared with torch's full causal attention at that length: what S2 saves is the point.

usage: tools/bench_compare.py LLM_BENCH.json TORCH_SDPA.json
"""
import json
import sys

SHAPE = ("seq", "head_dim", "causal", "pass", "batch", "heads", "kv_heads")


def load_rows(path):
    try:
        with open(path) as f:
            return json.load(f)["rows"]
    except (OSError, ValueError, KeyError) as e:
        sys.exit(f"{path}: expected a JSON object with a 'rows' list ({e})")


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__.strip())
    ours, theirs = load_rows(sys.argv[1]), load_rows(sys.argv[2])
    torch_by_shape = {tuple(r[k] for k in SHAPE): r for r in theirs}
    print(f"{'impl':<14}{'seq':>7}{'d':>5}{'causal':>7} {'pass':<9}{'ms':>10}{'TFLOP/s':>10}"
          f"{'torch ms':>10}{'torch TF/s':>11}{'speedup':>9}")
    for r in ours:
        shape = tuple(r[k] for k in SHAPE)
        head = f"{r['impl']:<14}{r['seq']:>7}{r['head_dim']:>5}{r['causal']:>7} {r['pass']:<9}"
        if "ms" not in r:
            print(f"{head}{r.get('note', '')}")
            continue
        t = torch_by_shape.get(shape)
        torch_cols = f"{t['ms']:>10.3f}{t['tflops']:>11.4g}{t['ms'] / r['ms']:>9.2f}" if t else f"{'-':>10}{'-':>11}{'-':>9}"
        print(f"{head}{r['ms']:>10.3f}{r['tflops']:>10.4g}{torch_cols}")


if __name__ == "__main__":
    main()
