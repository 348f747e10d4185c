#!/usr/bin/env python3
"""Our CPU backend beside PyTorch's on the same machine, same threads, interleaved: for each case
and round, the load average, then our run, then torch's, so both meet the same neighbours. Cases:
the training step at the tiny preset and at width 512 (llm_bench step vs tools/bench_hf_step.py:
HF's LlamaForCausalLM, eager f32, sdpa attention, fused AdamW) and flash attention forward +
backward at seq 2048, head_dim 64 and 128, causal (llm_bench attention vs
tools/bench_torch_sdpa.py). speedup = torch ms / our ms (above 1: ours is faster); the median of
the rounds is the figure. Needs ./llm_bench built and a python with torch and transformers.

usage: tools/bench_cpu_vs_torch.py [--python PYTHON] [--threads 2] [--rounds 3] [--cases step,attention]
"""
import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile

STEP_SHAPES = {"tiny": [], "width 512": ["--dim", "512"]}
STEP_COMMON = ["--preset", "tiny", "--seq", "256", "--batch", "8", "--steps", "5"]
ATTENTION_DIMS = [64, 128]


def run(cmd, env):
    done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stdout}{done.stderr}")
    return done.stdout


def run_json(cmd, env):
    """cmd with `--json FILE` appended: the JSON it wrote."""
    with tempfile.NamedTemporaryFile(suffix=".json") as out:
        run([*cmd, "--json", out.name], env)
        with open(out.name) as f:
            return json.load(f)


def torch_step(args, extra, env):
    text = run([args.python, "tools/bench_hf_step.py", "--device", "cpu", "--threads",
                str(args.threads), *STEP_COMMON, *extra], env)
    return float(re.search(r"^step ([0-9.]+) ms", text, re.M).group(1))


def attention_args(d):
    return ["--seq", "2048", "--head-dim", str(d), "--causal", "1", "--pass", "fwd_bwd",
            "--repeats", "3"]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--python", default=sys.executable)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--cases", default="step,attention")
    args = parser.parse_args()
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads))

    cases = []  # (name, ours, theirs)
    if "step" in args.cases:
        for name, extra in STEP_SHAPES.items():
            ours = ["./llm_bench", "step", *STEP_COMMON, *extra]
            cases.append((f"step {name}", lambda c=ours: run_json(c, env)["step_ms"],
                          lambda e=extra: torch_step(args, e, env)))
    if "attention" in args.cases:
        for d in ATTENTION_DIMS:
            ours = ["./llm_bench", "attention", "--impl", "flash", *attention_args(d)]
            theirs = [args.python, "tools/bench_torch_sdpa.py", "--device", "cpu", "--threads",
                      str(args.threads), *attention_args(d)]
            cases.append((f"flash fwd+bwd S2048 d{d}", lambda c=ours: run_json(c, env)["rows"][0]["ms"],
                          lambda c=theirs: run_json(c, env)["rows"][0]["ms"]))

    print(f"{args.threads} threads each, {args.rounds} interleaved rounds; load = 1-minute average")
    print(f"{'case':<26}{'round':>6}{'load':>7}{'ours ms':>10}{'torch ms':>10}{'speedup':>9}")
    for name, ours, theirs in cases:
        ratios = []
        for r in range(args.rounds):
            load = os.getloadavg()[0]
            a, b = ours(), theirs()
            ratios.append(b / a)
            print(f"{name:<26}{r + 1:>6}{load:>7.2f}{a:>10.1f}{b:>10.1f}{b / a:>9.2f}", flush=True)
        print(f"{name:<26}{'median':>6}{'':>7}{'':>10}{'':>10}{statistics.median(ratios):>9.2f}")


if __name__ == "__main__":
    main()
