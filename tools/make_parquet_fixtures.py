#!/usr/bin/env python3
"""Writes test/data/parquet/: small Parquet files as pyarrow (HF datasets' parquet loader) writes
them, and expected.json, the rows pyarrow reads back from each (Table.to_pylist(), what HF hands
Axolotl), which test_parquet holds io/parquet.h's reader to. Also files the reader refuses.

Needs pyarrow:  python tools/make_parquet_fixtures.py
"""
import json
import pathlib
import struct

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


# Numbers and strings for the delta and byte-stream-split encodings: deltas of every size in
# several blocks (int64's extremes wrap), strings sharing prefixes, nulls between them.
NUMBERS = pa.table({
    "id": pa.array([(-1) ** i * (i * i * 7919 % 100003) for i in range(300)] + [2**63 - 1, -2**63, 0, None, 5],
                   type=pa.int64()),
    "small": pa.array([i % 17 - 8 for i in range(300)] + [2**31 - 1, -2**31, None, 1, 2], type=pa.int32()),
    "score": pa.array([i / 8 - 3 for i in range(300)] + [None, 1e30, -0.0, 1e-30, 3.5], type=pa.float32()),
    "weight": pa.array([i * 1.1e-3 for i in range(300)] + [1e300, None, -2.5, 0.0, 7.0], type=pa.float64()),
    "url": pa.array([f"https://example.org/page/{i // 3}/{'é' * (i % 4)}" for i in range(300)] +
                    ["", None, "https://example.org/", "x", "https://example.org/page/9"], type=pa.string()),
})
DELTA = {"id": "DELTA_BINARY_PACKED", "small": "DELTA_BINARY_PACKED", "score": "BYTE_STREAM_SPLIT",
         "weight": "BYTE_STREAM_SPLIT", "url": "DELTA_BYTE_ARRAY"}


def latin1_table():
    """An alpaca row whose instruction holds a Latin-1 byte: pyarrow writes a string array built
    from raw buffers unchecked, and refuses to decode it (to_pylist raises UnicodeDecodeError), so
    HF's loaders cannot read the row."""
    values = [b"caf\xc3\xa9", b"caf\xe9"]
    offsets = struct.pack("<3i", 0, len(values[0]), len(values[0]) + len(values[1]))
    text = pa.Array.from_buffers(pa.string(), 2, [None, pa.py_buffer(offsets), pa.py_buffer(b"".join(values))])
    return pa.table({"instruction": text, "output": pa.array(["a", "b"])})


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
        # Other codecs: zstd (Polars', DuckDB's default), gzip over small v2 pages.
        "zstd.parquet": write("zstd.parquet", alpaca, compression="zstd"),
        "chat_gzip_v2.parquet": write("chat_gzip_v2.parquet", CHAT, compression="gzip", data_page_version="2.0",
                                      data_page_size=32, row_group_size=3),
        # The v2 writers' encodings: pages of v1 and of v2, one compressed.
        "delta.parquet": write("delta.parquet", alpaca, use_dictionary=False, column_encoding="DELTA_BYTE_ARRAY"),
        "numbers_delta.parquet": write("numbers_delta.parquet", NUMBERS, use_dictionary=False,
                                       column_encoding=DELTA, compression="none"),
        "numbers_delta_v2.parquet": write("numbers_delta_v2.parquet", NUMBERS, use_dictionary=False,
                                          column_encoding={**DELTA, "url": "DELTA_LENGTH_BYTE_ARRAY"},
                                          compression="zstd", data_page_version="2.0", data_page_size=256),
    }
    write("brotli.parquet", alpaca, compression="brotli")
    write("binary.parquet", pa.table({"blob": pa.array([b"\x00\x01"], type=pa.binary())}))
    pq.write_table(latin1_table(), OUT / "latin1.parquet")  # (write() would read it back: it raises)
    (OUT / "expected.json").write_text(json.dumps(expected, ensure_ascii=False, indent=1) + "\n")
    for name, rows in expected.items():
        print(f"{name}: {len(rows)} rows")


if __name__ == "__main__":
    main()
