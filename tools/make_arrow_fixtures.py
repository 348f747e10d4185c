#!/usr/bin/env python3
"""Writes test/data/arrow/: Arrow IPC files as pyarrow and HF datasets write them (the stream
format of datasets' cache and save_to_disk, the file format, zstd buffers, several record batches),
directories save_to_disk wrote (a Dataset and a DatasetDict), and expected.json: the rows pyarrow
or load_from_disk reads back (to_pylist(), what HF hands Axolotl), which test_arrow holds
io/arrow_ipc.h's reader to. Also files the reader refuses.

Needs pyarrow and datasets:  python tools/make_arrow_fixtures.py
"""
import json
import pathlib
import shutil

import datasets
import pyarrow as pa

from make_parquet_fixtures import ALPACA, CHAT, latin1_table

OUT = pathlib.Path(__file__).resolve().parent.parent / "test" / "data" / "arrow"

# Every type the reader takes, at every nesting: widths and signs of integers, half floats, large
# strings and lists, fixed-size lists, a null column, nulls inside lists and structs.
KINDS = pa.table({
    "i8": pa.array([-128, 127, None, 0], type=pa.int8()),
    "u16": pa.array([0, 65535, 7, None], type=pa.uint16()),
    "u64": pa.array([2**64 - 1, 0, None, 1], type=pa.uint64()),
    "half": pa.array([0.5, None, -65504.0, 1e-7], type=pa.float16()),
    "big_text": pa.array(["é", None, "", "a" * 100], type=pa.large_string()),
    "big_list": pa.array([[1], [], None, [None, 2]], type=pa.large_list(pa.int32())),
    "pair": pa.array([[1.5, 2.5], None, [0.0, -1.0], [3.0, None]], type=pa.list_(pa.float64(), 2)),
    "nothing": pa.array([None] * 4, type=pa.null()),
    "deep": pa.array([{"a": [{"b": "x"}]}, {"a": None}, None, {"a": [None, {"b": None}]}],
                     type=pa.struct([("a", pa.list_(pa.struct([("b", pa.string())])))])),
})

# Dates and times, read as their integers: the table itself, cast column by column to them.
TEMPORAL = pa.table({
    "day": pa.array([0, 19000, None], type=pa.date32()),
    "ms_day": pa.array([86400000, None, -86400000], type=pa.date64()),
    "time_s": pa.array([3600, 0, None], type=pa.time32("s")),
    "time_ns": pa.array([None, 1, 86399999999999], type=pa.time64("ns")),
    "at": pa.array([1700000000000000, None, -1], type=pa.timestamp("us", tz="UTC")),
    "took": pa.array([5, -7, None], type=pa.duration("ms")),
    "text": pa.array(["a", None, "c"]),
})
INTEGERS = {pa.types.is_date32: pa.int32(), pa.types.is_time32: pa.int32()}


def as_integers(table):
    columns = []
    for column in table.columns:
        if pa.types.is_temporal(column.type):
            width = next((t for test, t in INTEGERS.items() if test(column.type)), pa.int64())
            column = column.cast(width)
        columns.append(column)
    return pa.table(columns, names=table.column_names)


def stream(name, table, **options):
    with pa.ipc.new_stream(OUT / name, table.schema, options=pa.ipc.IpcWriteOptions(**options)) as w:
        for batch in table.to_batches(max_chunksize=2):
            w.write_batch(batch)
    return pa.ipc.open_stream(OUT / name).read_all().to_pylist()


def file_format(name, table):
    with pa.ipc.new_file(OUT / name, table.schema) as w:
        w.write_table(table, max_chunksize=3)
    return pa.ipc.open_file(OUT / name).read_all().to_pylist()


def saved(name, dataset):
    shutil.rmtree(OUT / name, ignore_errors=True)
    dataset.save_to_disk(str(OUT / name))
    loaded = datasets.load_from_disk(str(OUT / name))
    return (loaded["train"] if isinstance(loaded, datasets.DatasetDict) else loaded).to_list()


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    alpaca = pa.Table.from_pylist(ALPACA)
    expected = {
        "chat.arrow": stream("chat.arrow", CHAT),
        "kinds.arrow": file_format("kinds.arrow", KINDS),
        "kinds_zstd.arrow": stream("kinds_zstd.arrow", KINDS, compression="zstd"),
        "temporal.arrow": (stream("temporal.arrow", TEMPORAL), as_integers(TEMPORAL).to_pylist())[1],
        "saved": saved("saved", datasets.Dataset.from_list(ALPACA)),
        "saved_dict": saved("saved_dict", datasets.DatasetDict({
            "train": datasets.Dataset.from_list(ALPACA[:4]), "test": datasets.Dataset.from_list(ALPACA[4:6])})),
    }
    stream("lz4.arrow", alpaca, compression="lz4")
    stream("binary.arrow", pa.table({"blob": pa.array([b"\x00\x01"], type=pa.binary())}))
    with pa.ipc.new_stream(OUT / "latin1.arrow", latin1_table().schema) as w:  # (stream() reads it back)
        w.write_table(latin1_table())
    stream("dictionary.arrow", pa.table({"tag": pa.array(["a", "b", "a"]).dictionary_encode()}))
    (OUT / "expected.json").write_text(json.dumps(expected, ensure_ascii=False, indent=1) + "\n")
    for name, rows in expected.items():
        print(f"{name}: {len(rows)} rows")


if __name__ == "__main__":
    main()
