#!/usr/bin/env python3
"""Reads every #include "folder/..." of the layered folders and fails on an arrow that points up
(shared/DESIGN.md: engine <- io <- model <- train <- tools; cuda sits behind engine's backend
interface and includes only engine). Prints each offending include with its file and line."""
import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
# What each folder may include besides itself.
ALLOWED = {
    "engine": set(),
    "cuda": {"engine"},
    "io": {"engine"},
    "model": {"engine", "io"},
    "train": {"engine", "io", "model"},
}
INCLUDE = re.compile(r'^\s*#\s*include\s+"([a-z_]+)/')

bad = []
checked = 0
for folder, allowed in ALLOWED.items():
    for path in sorted((ROOT / folder).rglob("*")):
        if path.suffix not in {".h", ".cpp", ".cu", ".cuh"}:
            continue
        checked += 1
        for number, line in enumerate(path.read_text().splitlines(), 1):
            m = INCLUDE.match(line)
            if m and m.group(1) != folder and m.group(1) not in allowed:
                bad.append(f"{path.relative_to(ROOT)}:{number}: {folder}/ includes {m.group(1)}/")
for line in bad:
    print(line)
print(f"layers: {checked} files read, {len(bad)} upward include(s)")
sys.exit(1 if bad else 0)
