#!/usr/bin/env python3
"""Writes test/data/csv/: CSV files and expected.json, the rows HF's csv loader reads from each
(datasets.load_dataset("csv", data_files=...)["train"].to_list(): pandas' read_csv, then pyarrow),
which test_csv holds io/csv.h's reader to.

Needs datasets (and pandas):  python tools/make_csv_fixtures.py
"""
import json
import pathlib
import tempfile

import datasets
import pandas as pd

OUT = pathlib.Path(__file__).resolve().parent.parent / "test" / "data" / "csv"

# Alpaca rows as pandas writes them (to_csv): commas, quotes and line breaks inside quoted fields,
# an empty input (NA, so null), text that pandas reads as NA ("None"), leading spaces kept.
ALPACA = [
    {"instruction": "Say hello, politely.", "input": "", "output": "Hello, \"friend\"."},
    {"instruction": "Two lines", "input": "a\nb", "output": "line one\r\nline two"},
    {"instruction": "  indented", "input": "None", "output": "naïve café 中文"},
    {"instruction": "Count", "input": "1,2,3", "output": "4"},
]

# pandas' inference over every kind of column, and its parser's quirks, written by hand.
TYPES = (
    "\ufeffid,big,mixed,score,flag,maybe,text,,id,empty\r\n"
    "1, 9223372036854775808,9223372036854775808, 1.5 ,True,true,\"q\"\"uote\",u1,7,\r\n"
    "\r\n"
    "  \t\r\n"
    "-2,1,-1,2e3,FALSE,,\"ab\"cd,u2,8,NA\r\n"
    "+3,2,3,.5,false,False,\"multi\r\nline, with comma\",u3,9,\r\n"
    "4,3,4,-0,True,NA,x\"y,u4,10\r\n"
)
INTS_WITH_NULLS = "a,b,c\n1,,x\n,2,\n3,4,None\n5,6,n/a\n"
# Rows one field longer than the header: the first field is pandas' index, which pyarrow drops
# when pandas made it a RangeIndex (integers with a constant step) and keeps as a column otherwise.
INDEX = "a,b\n0,x,1\n1,y,2\n"
INDEX_KEPT = "a,b\n0,x,1\n5,y,2\nz\n"


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    datasets.disable_progress_bars()
    pd.DataFrame(ALPACA).to_csv(OUT / "alpaca.csv", index=False)
    files = {"types.csv": TYPES, "ints_with_nulls.csv": INTS_WITH_NULLS, "index.csv": INDEX, "index_kept.csv": INDEX_KEPT}
    for name, text in files.items():
        (OUT / name).write_bytes(text.encode())
    expected = {}
    with tempfile.TemporaryDirectory() as cache:
        for name in ["alpaca.csv", *files]:
            ds = datasets.load_dataset("csv", data_files=str(OUT / name), cache_dir=cache, split="train")
            expected[name] = ds.to_list()
    (OUT / "expected.json").write_text(json.dumps(expected, ensure_ascii=False, indent=1) + "\n")
    for name, rows in expected.items():
        print(f"{name}: {len(rows)} rows, columns {list(rows[0])}")


if __name__ == "__main__":
    main()
