#!/usr/bin/env python3
"""Writes test/data/parquet/: small Parquet files as pyarrow (HF datasets' parquet loader) writes
them, and expected.json, the rows pyarrow reads back from each (Table.to_pylist(), what HF hands
Axolotl), which test_parquet holds io/parquet.h's reader to. Also files the reader refuses.

Needs pyarrow:  python tools/make_parquet_fixtures.py
"""
import json
import pathlib

import pyarrow as pa
import pyarrow.parquet as pq

OUT = pathlib.Path(__file__).resolve().parent.parent / "test" / "data" / "parquet"

ALPACA = [
    {"instruction": "hello", "input": "world 12", "output": "hello world"},
    {"instruction": "say hello", "input": "", "output": "hello"},
    {"instruction": "null input", "input": None, "output": "12345"},
    {"instruction": "naïve", "input": "x", "output": "café 中文 🎉"},
    {"instruction": "null output", "input": "x", "output": None},
] * 3

PAIRS = [
    {"system": "Be brief.", "question": "What is 2+2?", "chosen": "4", "rejected": "5"},
    {"system": "", "question": "Name a colour.", "chosen": "Blue.", "rejected": "A car."},
    {"system": "You help.", "question": "Say hi in French.", "chosen": "Bonjour !", "rejected": "Hola."},
]

MESSAGES = pa.list_(pa.struct([("role", pa.string()), ("content", pa.string())]))
CHAT = pa.table({
    "messages": pa.array([
        [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}],
        [],
        None,
        [{"role": "user", "content": None}, None, {"role": "assistant", "content": "a" * 300}],
        [{"role": "system", "content": "s"}],
    ], type=MESSAGES),
    "id": pa.array([1, -2, None, 2**40, 7], type=pa.int64()),
    "small": pa.array([1, 2, 3, None, -5], type=pa.int32()),
    "score": pa.array([0.5, None, -1.25, 3.0, 1e-3], type=pa.float32()),
    "weight": pa.array([0.1, 2.5, None, -7.0, 1e300], type=pa.float64()),
    "flag": pa.array([True, False, None, True, True], type=pa.bool_()),
    "tags": pa.array([["a", "b"], None, [], [None, "c"], ["d"]], type=pa.list_(pa.string())),
    "nested": pa.array([[[1, 2], []], [[3]], None, [None, [4, None]], []], type=pa.list_(pa.list_(pa.int64()))),
    "meta": pa.array([{"source": "x", "turns": 2}, None, {"source": None, "turns": 0}, {"source": "y", "turns": None},
                      {"source": "z", "turns": 1}], type=pa.struct([("source", pa.string()), ("turns", pa.int32())])),
})


def write(name, table, **options):
    path = OUT / name
    pq.write_table(table, path, **options)
    return pq.read_table(path).to_pylist()


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    alpaca = pa.Table.from_pylist(ALPACA)
    expected = {
        # pyarrow's defaults, as HF writes hub files: snappy, dictionary pages, data page v1.
        "alpaca.parquet": write("alpaca.parquet", alpaca),
        # Plain values, uncompressed, data page v2, small pages and row groups.
        "alpaca_v2_plain.parquet": write("alpaca_v2_plain.parquet", alpaca, use_dictionary=False, compression="none",
                                         data_page_version="2.0", data_page_size=64, row_group_size=4),
        "chat.parquet": write("chat.parquet", CHAT),
        "chat_v2.parquet": write("chat_v2.parquet", CHAT, data_page_version="2.0", data_page_size=32,
                                 row_group_size=2),
        "chat_plain.parquet": write("chat_plain.parquet", CHAT, use_dictionary=False, compression="none"),
        # Preference pairs as the hub's DPO sets store them (Intel/orca_dpo_pairs' columns).
        "pairs.parquet": write("pairs.parquet", pa.Table.from_pylist(PAIRS)),
    }
    write("zstd.parquet", alpaca, compression="zstd")
    write("binary.parquet", pa.table({"blob": pa.array([b"\x00\x01"], type=pa.binary())}))
    write("delta.parquet", alpaca, use_dictionary=False, column_encoding="DELTA_BYTE_ARRAY")
    (OUT / "expected.json").write_text(json.dumps(expected, ensure_ascii=False, indent=1) + "\n")
    for name, rows in expected.items():
        print(f"{name}: {len(rows)} rows")


if __name__ == "__main__":
    main()
