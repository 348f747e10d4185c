#!/usr/bin/env python3
"""Writes test/data/pretraining_reference/cases.json: the rows Axolotl 0.19 itself streams from a
pretraining_dataset, which test_pretraining holds io/pretraining.h to.

Axolotl's own functions run here, unmodified: utils.data.sft's _prepare_streaming_dataset (HF
datasets 4.8's load_dataset(streaming=True), skip, IterableDataset.shuffle with the seed and
streaming_multipack_buffer_size, then utils.data.streaming's wrap_streaming_dataset: encode_streaming
without sample_packing, encode_packed_streaming with it: the dataset type's strategy (pretrain:
PretrainTokenizationStrategy's overlapping windows; completion), filtering, MultipackBatchSampler
over a RandomSampler, and its collator). Each case's rows are the stream's rows in order for epochs
0 and 1 (set_epoch), iterated as the Trainer iterates them: torch's global generator seeded with the
seed, each epoch through a torch DataLoader (which draws its base seed from it), in the main process
(dataloader_num_workers 0) or in one worker (Axolotl's default on a node with one GPU).

The tokenizer is test/data/axolotl_rows' (tools/make_axolotl_rows.py), EOS as its pad token.
Needs torch, transformers, datasets 4.8.4, TRL 1.9.0 and Axolotl 0.19's source importable:
  PYTHONPATH=/path/to/unpacked/axolotl python tools/make_pretraining_reference.py
"""
import json
import pathlib
import random
import tempfile

import torch
from transformers import PreTrainedTokenizerFast

from axolotl.utils.data.sft import _prepare_streaming_dataset
from axolotl.utils.dict import DictDefault

ROOT = pathlib.Path(__file__).resolve().parent.parent
TOKENIZER = ROOT / "test" / "data" / "axolotl_rows"
OUT = ROOT / "test" / "data" / "pretraining_reference"
SEED = 42


def tokenizer():
    config = json.loads((TOKENIZER / "tokenizer_config.json").read_text())
    tk = PreTrainedTokenizerFast(tokenizer_file=str(TOKENIZER / "tokenizer.json"), bos_token=config["bos_token"],
                                 eos_token=config["eos_token"])
    tk.pad_token = tk.eos_token
    return tk


def texts(count, longest, rng, column):
    words = "the quick brown fox jumps over a lazy dog while seven cats sleep under warm sun".split()
    rows = []
    for i in range(count):
        n = 0 if i % 9 == 4 else rng.randint(1, longest)  # an empty text now and then
        rows.append({column: " ".join(rng.choice(words) for _ in range(n)), "id": i})
    return rows


def stream_rows(cfg, tk, epochs, workers):
    torch.manual_seed(cfg.seed)  # the Trainer's set_seed
    dataset, _, _, _ = _prepare_streaming_dataset(cfg, tk, None)
    out = []
    for epoch in range(epochs):
        dataset.set_epoch(epoch)
        rows = []
        for row in torch.utils.data.DataLoader(dataset, batch_size=None, num_workers=workers):
            kept = {"input_ids": [int(t) for t in row["input_ids"]]}
            if "position_ids" in row:
                kept["position_ids"] = [int(p) for p in row["position_ids"]]
            rows.append(kept)
        out.append(rows)
    return out


def main():
    tk = tokenizer()
    rng = random.Random(0)
    cases = []
    # (name, files' row counts, entry, config): every case at sequence_len 16.
    specs = [
        ("rows", [23], {"text_column": "body"}, {"streaming_multipack_buffer_size": 5}),
        ("rows_within_buffer", [12], {}, {}),
        ("rows_skip_unshuffled", [15], {"skip": 4}, {"shuffle_merged_datasets": False}),
        ("rows_two_files", [7, 9], {}, {"streaming_multipack_buffer_size": 4}),
        ("packed", [21], {}, {"sample_packing": True, "micro_batch_size": 2, "streaming_multipack_buffer_size": 8}),
        ("packed_completion", [14], {"type": "completion"},
         {"sample_packing": True, "micro_batch_size": 2, "streaming_multipack_buffer_size": 6}),
        ("packed_one_sequence", [21], {}, {"sample_packing": True, "micro_batch_size": 2,
                                            "streaming_multipack_buffer_size": 8, "pretrain_multipack_attn": False}),
        ("rows_worker", [23], {"text_column": "body"}, {"streaming_multipack_buffer_size": 5, "dataloader_num_workers": 1}),
        ("rows_two_files_worker", [7, 9], {}, {"streaming_multipack_buffer_size": 4, "dataloader_num_workers": 1}),
        ("packed_worker", [21], {}, {"sample_packing": True, "micro_batch_size": 2, "streaming_multipack_buffer_size": 8,
                                     "dataloader_num_workers": 1}),
    ]
    for name, counts, entry, config in specs:
        column = entry.get("text_column", "text")
        with tempfile.TemporaryDirectory() as tmp:
            files = []
            for f, count in enumerate(counts):
                rows = texts(count, 30 if config.get("sample_packing") else 12, rng, column)
                path = pathlib.Path(tmp) / f"part{f}.jsonl"
                path.write_text("".join(json.dumps(r) + "\n" for r in rows))
                files.append({"file": path.name, "content": path.read_text()})
            # The directory as the path: HF's loader reads its files (sorted by name) as json.
            full_entry = {"path": tmp, "name": None, "skip": entry.get("skip"), "split": "train", "text_column": column,
                          "type": entry.get("type", "pretrain"), "data_files": None}
            cfg = DictDefault({"pretraining_dataset": [full_entry], "sequence_len": 16, "micro_batch_size": 1,
                               "sample_packing": False, "pretrain_multipack_attn": True, "seed": SEED,
                               "shuffle_merged_datasets": True, "streaming_multipack_buffer_size": 10000,
                               "sample_packing_bin_size": 200, "max_steps": 10, **config})
            epochs = stream_rows(cfg, tk, 2, config.get("dataloader_num_workers", 0))
        cases.append({"name": name, "files": files, "entry": {k: v for k, v in entry.items()},
                      "config": config, "epochs": epochs})
        print(name, [len(rows) for rows in epochs])
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "cases.json").write_text(json.dumps({"seed": SEED, "sequence_len": 16, "cases": cases}, indent=None) + "\n")


main()
