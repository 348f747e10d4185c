"""Writes test/data/untrained_tokens_reference/cases.json, which test_untrained_tokens holds
train/untrained_tokens.cpp to: Axolotl's fix_untrained_tokens (get_embedding_mean, in its LGPL
contributions: axolotl/contribs/lgpl/unsloth.py, loaded from that file without importing axolotl)
run on small random embed_tokens and lm_head matrices with untrained rows of each kind it looks
for (zero rows, a repeated lm_head vector, the pad token's, one only the config lists), over
random training examples, for an untied and a tied model.
Run: tools/make_untrained_tokens_reference.py --source PATH/TO/axolotl/contribs/lgpl/unsloth.py"""
import argparse
import ast
import itertools
import json
import logging
import types
from collections import Counter
from contextlib import nullcontext
from functools import partial

import numpy as np
import torch

VOCAB, HIDDEN, PAD = 40, 8, 36


class Rows:
    """The few datasets.Dataset methods get_embedding_mean uses."""

    def __init__(self, examples):
        self.examples = examples

    def __len__(self):
        return len(self.examples)

    def __getitem__(self, i):
        return {"input_ids": self.examples[i]}

    def map(self, fn, batched, desc=None):
        fn({"input_ids": self.examples})


class Tokenizer:
    """What get_embedding_mean asks of a tokenizer: its size, pad id, template and token names."""
    pad_token_id, chat_template = PAD, None

    def __len__(self):
        return VOCAB

    def convert_ids_to_tokens(self, ids):
        return [f"<t{i}>" for i in ids]


def load(source):
    tree = ast.parse(open(source).read())
    functions = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "get_embedding_mean"]
    scope = {"torch": torch, "np": np, "Counter": Counter, "itertools": itertools, "nullcontext": nullcontext,
             "partial": partial, "LOG": logging.getLogger("reference"),
             "datasets": types.SimpleNamespace(IterableDataset=type("IterableDataset", (), {}))}
    exec(compile(ast.Module(body=functions, type_ignores=[]), source, "exec"), scope)
    return scope["get_embedding_mean"]


def case(get_embedding_mean, tied, seed):
    g = torch.Generator().manual_seed(seed)
    embed = torch.randn(VOCAB, HIDDEN, generator=g) * 0.1
    embed[30:37] = 0.0                         # never trained: 30-36 (36 the pad token)
    embed[37] = -torch.rand(HIDDEN, generator=g)  # all negative: its largest value is below eps too
    head = embed.clone() if tied else torch.randn(VOCAB, HIDDEN, generator=g) * 0.1
    if not tied:
        shared = torch.randn(HIDDEN, generator=g)
        head[30:34] = shared                   # Llama 3.1's case: one vector repeated
        head[34] = torch.randn(HIDDEN, generator=g)  # a lone head vector: trained after all
        head[35] = 0.0
    rng = np.random.default_rng(seed)
    examples = [[int(t) for t in rng.integers(0, 30, rng.integers(3, 12))] for _ in range(600)]
    examples[3] += [31, 31, 35, 38]            # seen early; 38 only because the config lists it
    examples[400] += [37, 33]                  # seen in the middle only
    layers = [torch.nn.Embedding(VOCAB, HIDDEN), torch.nn.Linear(HIDDEN, VOCAB, bias=False)]
    layers[0].weight = torch.nn.Parameter(embed.clone())
    layers[1].weight = layers[0].weight if tied else torch.nn.Parameter(head.clone())
    tokenizer = Tokenizer()
    extra = [38]
    with torch.no_grad():  # as Axolotl's fix_untrained_tokens calls it
        result = get_embedding_mean(layers[0], layers[1], tokenizer, Rows(examples), token_ids_to_fix=extra)
    mean_embed, mean_head, ids = result
    order = sorted(range(len(ids)), key=lambda i: ids[i])
    return {"tied": tied, "embed": embed.flatten().tolist(), "head": head.flatten().tolist(), "extra": extra,
            "examples": examples, "ids": [int(ids[i]) for i in order],
            "embed_rows": [mean_embed[i].tolist() for i in order], "head_rows": [mean_head[i].tolist() for i in order]}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source", required=True)
    parser.add_argument("--out", default="test/data/untrained_tokens_reference/cases.json")
    args = parser.parse_args()
    get_embedding_mean = load(args.source)
    cases = [case(get_embedding_mean, False, 1), case(get_embedding_mean, True, 2)]
    with open(args.out, "w") as f:
        json.dump({"vocab": VOCAB, "hidden": HIDDEN, "pad": PAD, "cases": cases}, f, separators=(",", ":"))


if __name__ == "__main__":
    main()
