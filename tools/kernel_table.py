#!/usr/bin/env python3
"""Turns the text of `llm_bench kernel` runs into issue #14's kernels results file: each target with
the rows it is read from (memory-bound kernels at >= 80% of HBM bandwidth; GEMMs within 5% of
cuBLASLt's best algorithm, from the `gemm ...` lines LLM_GEMM_CANDIDATES prints), then every row.
Reads the text rather than --json because a run cut off by its deadline keeps the rows it printed.

usage: tools/kernel_table.py LOG [LOG ...]   (markdown on stdout)
"""
import re
import sys

HEADER = re.compile(r"llm_bench kernel: .*roofline .*?: ([\d.]+) GB/s, ([\d.]+) dense bf16 TFLOP/s")
NUMBER = r"(-?[\d.]+(?:e[+-]?\d+)?)"
TIMED = re.compile(r"(.*\S)\s+(fwd_bwd|fwd)\s+" + NUMBER + r"\s+" + NUMBER + r"\s+" + NUMBER + r"\s+(\S+)\s+(\S+)$")
FAILED = re.compile(r"(.*\S)\s+(fwd_bwd|fwd)\s+(FAIL: .*)$")
GEMM = re.compile(r"gemm (.*): cuBLASLt's first choice ([\d.]+) ms; best of (\d+) candidates ([\d.]+) ms "
                  r"\(#(\d+)\), (-?[\d.]+)% faster")
NAME_WIDTH = 28  # llm_bench kernel's name column


def split_name(left):
    """The kernel's name and its shape: the name fills the first column, or runs over it (two spaces
    then part it from the shape; logs before 2026-12-06 had one)."""
    if len(left) > NAME_WIDTH and left[NAME_WIDTH] == " ":
        return left[:NAME_WIDTH].strip(), left[NAME_WIDTH:].strip()
    name, _, shape = left.partition("  ")
    return name.strip(), shape.strip()


def parse(lines):
    rows, gemms, peaks = [], [], None
    for line in lines:
        line = line.rstrip("\n")
        header = HEADER.search(line)
        if header:
            peaks = (float(header[1]), float(header[2]))
            continue
        gemm = GEMM.search(line)
        if gemm:
            gemms.append({"shape": gemm[1], "first_ms": float(gemm[2]), "candidates": int(gemm[3]),
                          "best_ms": float(gemm[4]), "best": int(gemm[5]), "faster_pct": float(gemm[6])})
            continue
        if line.startswith("kernel ") or line.startswith("llm_bench"):
            continue
        failed = FAILED.match(line)
        timed = None if failed else TIMED.match(line)
        if not (failed or timed):
            continue
        name, shape = split_name((failed or timed)[1])
        row = {"kernel": name, "shape": shape, "pass": (failed or timed)[2]}
        if failed:
            row["note"] = failed[3]
        else:
            row.update(ms=float(timed[3]), gbs=float(timed[4]), tflops=float(timed[5]),
                       roof=None if timed[6] == "-" else float(timed[6]), err=timed[7])
            if peaks:  # the roof that binds: memory where the bytes take longer than the math
                row["memory_bound"] = row["gbs"] / peaks[0] >= row["tflops"] / peaks[1]
        rows.append(row)
    return rows, gemms, peaks


def targets(rows, gemms, peaks):
    out = []
    memory = [r for r in rows if r.get("memory_bound") and r["roof"] is not None and r["gbs"] > 0]
    if memory:
        below = [r for r in memory if r["roof"] < 80.0]
        out.append(f"- memory-bound kernels >= 80% of HBM bandwidth ({peaks[0]:.0f} GB/s): "
                   f"{len(memory) - len(below)} of {len(memory)} rows; below:")
        out += [f"  - {r['kernel']} {r['shape']} {r['pass']}: {r['roof']:.1f}%" for r in below]
    else:
        out.append("- memory-bound kernels >= 80% of HBM bandwidth: no rows with a roofline (a GPU run)")
    if gemms:
        above = [g for g in gemms if g["faster_pct"] > 5.0]
        out.append(f"- GEMMs within 5% of cuBLASLt's best of its candidates: {len(gemms) - len(above)} of "
                   f"{len(gemms)} shapes; further off:")
        out += [f"  - {g['shape']}: first choice {g['first_ms']:.4f} ms, best (#{g['best']} of {g['candidates']}) "
                f"{g['best_ms']:.4f} ms, {g['faster_pct']:.1f}% faster" for g in above]
    else:
        out.append("- GEMMs within 5% of cuBLASLt's best: no `gemm` lines (run with LLM_GEMM_CANDIDATES=8)")
    fails = [r for r in rows if "note" in r]
    if fails:
        out.append("- rows that failed their check against the CPU (not timed):")
        out += [f"  - {r['kernel']} {r['shape']} {r['pass']}: {r['note']}" for r in fails]
    return out


def every_row(rows):
    out = ["| kernel | shape | pass | ms | GB/s | TFLOP/s | % of roofline | bound by | rel_err |",
           "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        if "note" in r:
            out.append(f"| {r['kernel']} | {r['shape']} | {r['pass']} | | | | | | {r['note']} |")
            continue
        roof = f"{r['roof']:.1f}" if r["roof"] is not None else "-"
        bound = {True: "memory", False: "math"}.get(r.get("memory_bound"), "-")
        out.append(f"| {r['kernel']} | {r['shape']} | {r['pass']} | {r['ms']:.4f} | {r['gbs']:.1f} | "
                   f"{r['tflops']:.3f} | {roof} | {bound} | {r['err']} |")
    return out


def main():
    if len(sys.argv) < 2 or sys.argv[1].startswith("-"):
        sys.exit(__doc__.strip())
    rows, gemms, peaks = [], [], None
    for path in sys.argv[1:]:
        try:
            with open(path, errors="replace") as f:
                r, g, p = parse(f)
        except OSError as e:
            sys.exit(f"{path}: expected an llm_bench kernel log ({e.strerror})")
        rows, gemms, peaks = rows + r, gemms + g, p or peaks
    if not rows:
        sys.exit(f"{', '.join(sys.argv[1:])}: expected llm_bench kernel rows, found none")
    print("\n".join(["## Targets", ""] + targets(rows, gemms, peaks) + ["", "## Every row", ""] + every_row(rows)))


if __name__ == "__main__":
    main()
