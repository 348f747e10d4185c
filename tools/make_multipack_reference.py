#!/usr/bin/env python3
"""Writes test/data/multipack_reference/cases.json, which test_multipack holds io/multipack.cpp to:
random example lengths packed by Axolotl's own pack_parallel (first fit; one process) and
allocate_sequentially (next fit), from axolotl/utils/samplers/multipack.py (Axolotl 0.19).

Run: tools/make_multipack_reference.py [--source PATH/TO/axolotl/utils/samplers/multipack.py]
With axolotl installed it imports the module; --source instead loads those functions from the file
without importing axolotl, with numba's njit taken as the identity (the same arithmetic, slower).
"""
import argparse
import ast
import json
import os
import random

import numpy as np

FUNCTIONS = ("pack_group", "_process_group", "pack_parallel", "allocate_sequentially")


def load(source):
    if source is None:
        from axolotl.utils.samplers import multipack
        return multipack.pack_parallel, multipack.allocate_sequentially
    tree = ast.parse(open(source).read())
    functions = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name in FUNCTIONS]
    for f in functions:
        f.decorator_list = []  # numba.njit
    scope = {"np": np, "LOG": type("Log", (), {"debug": print, "warning": print})(), "get_context": None,
             "cpu_count": os.cpu_count, "ProcessPoolExecutor": None}
    exec(compile(ast.Module(body=functions, type_ignores=[]), source, "exec"), scope)
    return scope["pack_parallel"], scope["allocate_sequentially"]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source")
    parser.add_argument("--out", default="test/data/multipack_reference/cases.json")
    args = parser.parse_args()
    pack_parallel, allocate_sequentially = load(args.source)
    rng = random.Random(3)
    cases = []
    for _ in range(40):
        capacity = rng.randint(64, 512)
        lengths = [rng.randint(1, min(capacity, 200)) for _ in range(rng.randint(1, 120))]
        group_size, bin_size = rng.choice([100000, 7, 50]), rng.choice([200, 2, 3])
        array = np.array(lengths, dtype=np.int32)
        first_fit = pack_parallel(array, capacity, group_size, bin_size, num_processes=1, mp_start_method=None)
        next_fit = allocate_sequentially(array, 0, capacity, 1)[0]
        cases.append({"lengths": lengths, "capacity": capacity, "group_size": group_size, "bin_size": bin_size,
                      "first_fit": [[int(i) for i in b] for b in first_fit],
                      "next_fit": [[int(i) for i in b] for b in next_fit]})
    with open(args.out, "w") as f:
        json.dump({"axolotl_multipack": "0.19.0", "cases": cases}, f, separators=(",", ":"))


if __name__ == "__main__":
    main()
