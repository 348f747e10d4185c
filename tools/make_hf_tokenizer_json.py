#!/usr/bin/env python3
"""Writes a Hugging Face tokenizer.json (+ tokenizer_config.json) from a tiktoken ranks file, with
the `tokenizers` library itself, as transformers' TikTokenConverter builds Llama 3's: byte-level
BPE whose ids are the ranks, merges listed in the order of the ids they make, Llama 3's split
regex then ByteLevel, the special tokens as added tokens after the ranks. Also writes
expected.json: the ids `tokenizers` gives for a few texts, the reference test_tokenizer holds our
reader of the written file to (an independent encoder: Rust, not ours).

  tools/make_hf_tokenizer_json.py --ranks RANKS [--specials special_tokens.json] --out DIR
  tools/make_hf_tokenizer_json.py --small --out test/data/hf_tokenizer   (the test's fixture)

--small writes test/tokenizer_fixture.h's small vocabulary (the 256 bytes, then its 12 merges)
with four specials. Needs `tokenizers` (pip).
"""
import argparse, base64, json, os
from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers

LLAMA3_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|"
                  r" ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")
SMALL_MERGES = ["ll", "he", "hell", "hello", " w", "or", " wor", "ld", " world", "12", "123", "el"]
SMALL_SPECIALS = ["<|begin_of_text|>", "<|end_of_text|>", "<|finetune_right_pad_id|>", "<|eot_id|>"]
TEXTS = ["hello world", "hello  world 12345", "Hello, World! 1234567 hello\n\n  world",
         "naïve café 中文 🎉", "<|eot_id|> is text here"]


def byte_alphabet():
    printable = list(range(33, 127)) + list(range(161, 173)) + list(range(174, 256))
    others = [b for b in range(256) if b not in printable]
    table = {b: chr(b) for b in printable}
    table.update({b: chr(256 + i) for i, b in enumerate(others)})
    return table


def ranks_from_file(path):
    ranks = {}
    for line in open(path, "rb").read().splitlines():
        if line:
            token, rank = line.split()
            ranks[base64.b64decode(token)] = int(rank)
    return ranks


def merges_of(ranks):
    # Every split of a token into two tokens, in the order of the rank of the token they make,
    # then of their own ranks (as TikTokenConverter lists them).
    merges = []
    for token, rank in ranks.items():
        for i in range(1, len(token)):
            left, right = token[:i], token[i:]
            if left in ranks and right in ranks:
                merges.append((rank, ranks[left], ranks[right], left, right))
    merges.sort()
    return [(m[3], m[4]) for m in merges]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ranks")
    ap.add_argument("--specials")
    ap.add_argument("--small", action="store_true")
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    if a.small:
        ranks = {bytes([b]): b for b in range(256)}
        ranks.update({m.encode(): 256 + i for i, m in enumerate(SMALL_MERGES)})
        specials = SMALL_SPECIALS
    else:
        ranks = ranks_from_file(a.ranks)
        specials = json.load(open(a.specials)) if a.specials else None
        if specials is None:
            raise SystemExit("--specials special_tokens.json is needed with --ranks")
    alphabet = byte_alphabet()
    text = lambda b: "".join(alphabet[x] for x in b)
    vocab = {text(t): r for t, r in ranks.items()}
    merges = [(text(l), text(r)) for l, r in merges_of(ranks)]
    tok = Tokenizer(models.BPE(vocab=vocab, merges=merges, ignore_merges=True))
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(LLAMA3_PATTERN), behavior="isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    tok.decoder = decoders.ByteLevel()
    tok.add_special_tokens(specials)
    os.makedirs(a.out, exist_ok=True)
    tok.save(os.path.join(a.out, "tokenizer.json"))
    config = {"bos_token": specials[0], "eos_token": specials[-1] if a.small else specials[1],
              "pad_token": None, "tokenizer_class": "PreTrainedTokenizerFast"}
    json.dump(config, open(os.path.join(a.out, "tokenizer_config.json"), "w"), indent=1)
    expected = [{"text": t, "ids": tok.encode(t, add_special_tokens=False).ids} for t in TEXTS]
    json.dump(expected, open(os.path.join(a.out, "expected.json"), "w"), ensure_ascii=False, indent=1)
    print(f"wrote {a.out}: {len(vocab)} tokens, {len(merges)} merges, {len(specials)} specials")


if __name__ == "__main__":
    main()
