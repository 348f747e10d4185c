"""Prints the learning rates test/test_optimizer.cpp holds LrSchedule's rex to: Axolotl 0.19's own
RexLR (axolotl/utils/schedulers.py, loaded from its source without importing axolotl) stepped as
the Trainer steps it, for a few (warmup, total steps, min_lr ratio) settings at learning_rate 1e-3.
Run: tools/make_rex_reference.py --source PATH/TO/axolotl/utils/schedulers.py (torch installed)."""
import argparse
import ast

import torch
from torch import Tensor
from torch.optim.lr_scheduler import LRScheduler


def load_rex(source):
    tree = ast.parse(open(source).read())
    classes = [n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "RexLR"]
    scope = {"LRScheduler": LRScheduler, "Tensor": Tensor}
    exec(compile(ast.Module(body=classes, type_ignores=[]), source, "exec"), scope)
    return scope["RexLR"]


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--source", required=True)
    rex = load_rex(parser.parse_args().source)
    for warmup, total, ratio in [(2, 10, 0.0), (0, 7, 0.1), (3, 12, 0.05)]:
        param = torch.nn.Parameter(torch.zeros(1))
        optimizer = torch.optim.AdamW([param], lr=1e-3)
        schedule = rex(optimizer, max_lr=1e-3, min_lr=1e-3 * ratio, total_steps=total, num_warmup_steps=warmup)
        rates = []
        for _ in range(total):  # the rate each update runs at, then the Trainer's scheduler.step()
            rates.append(optimizer.param_groups[0]["lr"])
            optimizer.step()
            schedule.step()
        print(f"warmup {warmup}, total {total}, min_lr ratio {ratio}: {[float(f'{r:.10g}') for r in rates]}")


if __name__ == "__main__":
    main()
