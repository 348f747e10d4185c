#!/usr/bin/env python3
"""Turns the text of `llm_bench attention` runs (and tools/bench_torch_sdpa.py's rows) into issue
#13's table: every row as printed (ms, TFLOP/s, % of peak, error), TFLOP/s side by side per shape,
and each of the issue's targets with the rows it is read from. Reads the text rather than --json
because a run cut off by its deadline keeps the rows it printed and writes no JSON.

usage: tools/attention_table.py [--peak TFLOPS] LOG [LOG ...]   (markdown on stdout)

--peak (default 989, the H100 SXM's dense bf16): the denominator of torch SDPA's % of peak, which
its rows do not print; llm_bench's rows keep their own.
"""
import argparse
import re
import sys

HEADER = re.compile(r"llm_bench attention: .*, batch (\d+), heads (\d+), kv heads (\d+), median of \d+"
                    r"(?:, (\d+) packed documents a row)?")
SHAPE = r"(\S+)\s+(\d+)\s+(\d+)\s+([01])\s+(fwd_bwd|fwd)\s+"
TIMED = re.compile(SHAPE + r"([\d.]+)\s+([\d.]+)\s+(\S+)\s+(\S+)\s+([\d.]+)$")
TORCH = re.compile(r"(torch_sdpa)\s+(\d+)\s+(\d+)\s+([01])\s+(fwd_bwd|fwd)\s+([\d.]+)\s+([\d.]+)$")
UNTIMED = re.compile(SHAPE + r"(.+)$")


def parse(lines, peak):
    """Rows as dicts: impl, seq, d, causal, pass, docs, heads, kv_heads, then ms, tflops, peak_pct,
    err for a timed row or note for one that was not (FAIL, n/a, unavailable)."""
    rows, context = [], {"batch": 1, "heads": 16, "kv_heads": 16, "docs": 1}
    for line in lines:
        line = line.rstrip("\n")
        header = HEADER.search(line)
        if header:
            context = {"batch": int(header[1]), "heads": int(header[2]), "kv_heads": int(header[3]),
                       "docs": int(header[4] or 1)}
            continue
        torch = TORCH.match(line)
        timed = TIMED.match(line)
        if torch:  # bench_torch_sdpa.py's defaults: batch 1, 16 heads, no documents
            ms, tflops = float(torch[6]), float(torch[7])
            row = {"ms": ms, "tflops": tflops, "peak_pct": 100 * tflops / peak, "err": "-",
                   "batch": 1, "heads": 16, "kv_heads": 16, "docs": 1}
            match = torch
        elif timed:
            pct = timed[8]
            row = dict(context, ms=float(timed[6]), tflops=float(timed[7]),
                       peak_pct=float(pct) if pct != "-" else None, err=timed[9])
            match = timed
        else:
            untimed = UNTIMED.match(line)
            if not untimed or untimed[1] == "impl":
                continue
            row = dict(context, note=untimed[6].strip())
            match = untimed
        row.update(impl=match[1], seq=int(match[2]), d=int(match[3]), causal=int(match[4]),
                   pass_=match[5])
        rows.append(row)
    return rows


def key(row):
    return (row["d"], row["causal"], row["pass_"], row["seq"], row["docs"], row["heads"], row["kv_heads"])


def find(rows, impl, seq, d, causal, pass_, docs=1):
    for r in rows:
        if (r["impl"], r["seq"], r["d"], r["causal"], r["pass_"], r["docs"]) == (impl, seq, d, causal, pass_, docs) \
                and "ms" in r:
            return r
    return None


def fmt_cell(r):
    if r is None:
        return ""
    if "ms" not in r:
        return "FAIL" if r["note"].startswith("FAIL") else "-"
    return f"{r['tflops']:.1f}"


def long_table(rows):
    out = ["| impl | seq | head_dim | causal | pass | documents | heads / kv | ms | TFLOP/s | % of peak | max_err |",
           "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        shape = f"| {r['impl']} | {r['seq']} | {r['d']} | {r['causal']} | {r['pass_']} | {r['docs']} | " \
                f"{r['heads']} / {r['kv_heads']} |"
        if "ms" in r:
            pct = f"{r['peak_pct']:.1f}" if r["peak_pct"] is not None else "-"
            out.append(f"{shape} {r['ms']:.3f} | {r['tflops']:.1f} | {pct} | {r['err']} |")
        else:
            out.append(f"{shape} | | | {r['note']} |")
    return out


def pivot_tables(rows):
    """TFLOP/s per implementation, one table per (head_dim, causal, pass) of single-document rows."""
    out = []
    impls = list(dict.fromkeys(r["impl"] for r in rows))
    groups = sorted({(r["d"], r["causal"], r["pass_"]) for r in rows if r["docs"] == 1})
    for d, causal, pass_ in groups:
        seqs = sorted({r["seq"] for r in rows if (r["d"], r["causal"], r["pass_"], r["docs"]) == (d, causal, pass_, 1)})
        present = [i for i in impls if any(r["impl"] == i and (r["d"], r["causal"], r["pass_"]) == (d, causal, pass_)
                                           for r in rows)]
        out += ["", f"TFLOP/s, head_dim {d}, {'causal' if causal else 'not causal'}, {pass_}:", "",
                "| seq | " + " | ".join(present) + " |", "|---" * (len(present) + 1) + "|"]
        for seq in seqs:
            cells = []
            for impl in present:
                match = [r for r in rows if r["impl"] == impl and (r["seq"], r["d"], r["causal"], r["pass_"], r["docs"])
                         == (seq, d, causal, pass_, 1)]
                cells.append(fmt_cell(match[0] if match else None))
            out.append(f"| {seq} | " + " | ".join(cells) + " |")
    return out


def verdict(ok):
    return "met" if ok else "not met"


def targets(rows):
    """Issue #13's targets, each with the rows it reads; a target whose rows are missing says so."""
    out = []
    flash = find(rows, "flash", 4096, 128, 1, "fwd_bwd")
    torch = find(rows, "torch_sdpa", 4096, 128, 1, "fwd_bwd")
    cudnn = find(rows, "cudnn", 4096, 128, 1, "fwd_bwd")
    if flash and torch:
        ratio = torch["ms"] / flash["ms"]
        out.append(f"- flash fwd+bwd >= 1.0x torch SDPA (seq 4096, head_dim 128, causal): {ratio:.2f}x "
                   f"({flash['ms']:.3f} ms against {torch['ms']:.3f}): {verdict(ratio >= 1.0)}")
    else:
        out.append("- flash fwd+bwd >= 1.0x torch SDPA (seq 4096, head_dim 128, causal): rows missing")
    if flash and cudnn:
        ratio = cudnn["ms"] / flash["ms"]
        out.append(f"- stretch, flash fwd+bwd >= cuDNN at that shape: {ratio:.2f}x ({cudnn['ms']:.3f} ms): "
                   f"{verdict(ratio >= 1.0)}")
    forward = find(rows, "flash", 4096, 128, 1, "fwd")
    if forward and forward["peak_pct"] is not None:
        variants = [r for r in rows if r["impl"].startswith("flash") and "ms" in r and r["peak_pct"] is not None
                    and (r["seq"], r["d"], r["causal"], r["pass_"], r["docs"]) == (4096, 128, 1, "fwd", 1)]
        best = max(variants, key=lambda r: r["peak_pct"])
        out.append(f"- forward >= 60% of peak (seq 4096, head_dim 128, causal): flash {forward['peak_pct']:.1f}%"
                   f" (best variant {best['impl']} {best['peak_pct']:.1f}%): {verdict(forward['peak_pct'] >= 60)}")
    else:
        out.append("- forward >= 60% of peak (seq 4096, head_dim 128, causal): row missing")
    s2_rows = [(s2, find(rows, "flash", 16384, s2["d"], 1, s2["pass_"]))
               for s2 in rows if s2["impl"] == "s2" and s2["seq"] == 16384 and "ms" in s2 and s2["docs"] == 1]
    s2_rows = [(s2, full) for s2, full in s2_rows if full]
    for s2, full in s2_rows:
        ratio = full["ms"] / s2["ms"]
        out.append(f"- S2 >= 3x faster than causal flash at seq 16384 (head_dim {s2['d']}, {s2['pass_']}): "
                   f"{ratio:.2f}x ({s2['ms']:.3f} ms against {full['ms']:.3f}): {verdict(ratio >= 3.0)}")
    if not s2_rows:
        out.append("- S2 >= 3x faster than causal flash at seq 16384: rows missing")
    packed = [(m, find(rows, "flash", m["seq"], m["d"], m["causal"], m["pass_"], m["docs"]))
              for m in rows if m["impl"] == "mem_efficient" and m["docs"] > 1 and "ms" in m]
    packed = [(m, f) for m, f in packed if f]
    for m, f in packed:
        ratio = m["ms"] / f["ms"]
        out.append(f"- memory-efficient within 1.2x of flash, {m['docs']} documents a row (seq {m['seq']}, "
                   f"head_dim {m['d']}, {m['pass_']}): {ratio:.2f}x ({m['ms']:.3f} ms against {f['ms']:.3f}): "
                   f"{verdict(ratio <= 1.2)}")
    if not packed:
        out.append("- memory-efficient within 1.2x of flash on packed batches: rows missing")
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--peak", type=float, default=989.0)
    parser.add_argument("logs", nargs="+")
    args = parser.parse_args()
    rows = []
    for path in args.logs:
        try:
            with open(path, errors="replace") as f:
                rows += parse(f, args.peak)
        except OSError as e:
            sys.exit(f"{path}: expected an llm_bench attention log ({e.strerror})")
    if not rows:
        sys.exit(f"{', '.join(args.logs)}: expected llm_bench attention rows, found none")
    lines = ["## Targets", ""] + targets(rows) + ["", "## TFLOP/s by implementation"] + pivot_tables(rows)
    lines += ["", "## Every row", ""] + long_table(sorted(rows, key=key))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
