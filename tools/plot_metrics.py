#!/usr/bin/python3
"""Plots output_dir/metrics.jsonl: train and eval loss against step, and the learning rate.

usage: tools/plot_metrics.py OUTPUT_DIR/metrics.jsonl [-o loss.png]
Runs on Debian's python3 with python3-matplotlib (installed by `make deps`).
"""
import argparse
import json
import sys

try:
    import matplotlib
except ImportError:
    sys.exit("tools/plot_metrics.py: needs matplotlib (Debian's python3-matplotlib; `make deps` installs it)")

matplotlib.use("Agg")  # files only: no display needed
import matplotlib.pyplot as plt  # noqa: E402


def read_records(path):
    train, evals = [], []
    with open(path) as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as e:
                sys.exit(f"{path}:{number}: not a JSON object ({e.msg})")
            # metrics.jsonl writes a non-finite loss as null: a gap in the curve.
            record = {k: float("nan") if v is None else v for k, v in record.items()}
            (evals if "eval_loss" in record else train).append(record)
    return train, evals


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("metrics")
    parser.add_argument("-o", "--output", default="loss.png")
    args = parser.parse_args()
    train, evals = read_records(args.metrics)
    if not train:
        sys.exit(f"{args.metrics}: no train records")
    fig, (loss_ax, lr_ax) = plt.subplots(2, 1, figsize=(8, 6), sharex=True,
                                         gridspec_kw={"height_ratios": [3, 1]})
    loss_ax.plot([r["step"] for r in train], [r["loss"] for r in train], label="train loss")
    if evals:
        loss_ax.plot([r["step"] for r in evals], [r["eval_loss"] for r in evals], "o-",
                     label="eval loss")
    loss_ax.set_ylabel("loss (nats/token)")
    loss_ax.legend()
    loss_ax.grid(alpha=0.3)
    lr_ax.plot([r["step"] for r in train], [r["lr"] for r in train], color="tab:green")
    lr_ax.set_ylabel("lr")
    lr_ax.set_xlabel("step")
    lr_ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(args.output, dpi=100)
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
