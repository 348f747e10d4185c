#!/usr/bin/env python3
"""Writes the HF reference fixtures that test_hf checks our Llama 3 against.

For each of two tiny random models, built by transformers' own LlamaForCausalLM in float32 on the
CPU (eager attention), it writes test/data/hf_reference/<name>/:
  config.json, model.safetensors  save_pretrained's files, which base_model: loads
  reference.safetensors           logits (B, S, vocab) and grad.<parameter name> for every
                                  parameter, from loss.backward()
  reference.json                  the token ids, the loss, and the versions that made them
The loss is transformers' own: mean cross-entropy of logits[:, :-1] against ids[:, 1:].
The models cover what our forward must match: llama3 rope scaling with every band of the
wavelength rule in use (head_dim 8, original_max_position_embeddings 16), GQA ratios 2 and 4,
tied and untied embeddings, RMSNorm's eps; and the other scalings built (ROPE_MODELS): YaRN with
its ramp over all four frequencies and its attention factor, linear, and dynamic NTK below
max_position_embeddings (where transformers leaves the frequencies unscaled).

Run from the repository root (needs torch, transformers, safetensors):
  tools/make_hf_reference.py [--out test/data/hf_reference] [--only NAME ...]
(--only: just those models, so the others' committed files stay as they are.)
The other direction: --check NAME=DIR ... loads each DIR (the model NAME as llm_train exported
it) with transformers and prints how far its logits are from the reference's.
"""
import argparse
import json
import os

import torch
import transformers
from safetensors.torch import load_file, save_file

MODELS = {
    # GQA 2, untied, llama3 rope scaling.
    "untied_gqa2": dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                        num_attention_heads=4, num_key_value_heads=2, vocab_size=96,
                        tie_word_embeddings=False),
    # GQA 4, tied embeddings (Llama 3.2 1B/3B style).
    "tied_gqa4": dict(hidden_size=32, intermediate_size=48, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=1, vocab_size=96,
                      tie_word_embeddings=True),
}
COMMON = dict(max_position_embeddings=128, rms_norm_eps=1e-5, rope_theta=500000.0,
              rope_scaling={"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                            "high_freq_factor": 4.0, "original_max_position_embeddings": 16},
              hidden_act="silu", attention_bias=False, mlp_bias=False, initializer_range=0.2,
              bos_token_id=1, eos_token_id=2)
# Each the untied GQA-2 model with another rope scaling (its fields over COMMON's).
ROPE_MODELS = {
    # rope_theta 1e4 and these betas put the ramp's ends at dims 0 and 3 of the four: the first
    # frequency its own, the last interpolated, the two between mixed.
    "yarn_gqa2": dict(rope_theta=10000.0,
                      rope_scaling={"rope_type": "yarn", "factor": 4.0, "beta_fast": 2.0,
                                    "beta_slow": 0.01, "original_max_position_embeddings": 16}),
    "linear_gqa2": dict(rope_scaling={"rope_type": "linear", "factor": 2.0}),
    "dynamic_gqa2": dict(rope_scaling={"rope_type": "dynamic", "factor": 2.0}),
}
for rope_name, rope_fields in ROPE_MODELS.items():
    ROPE_MODELS[rope_name] = {**MODELS["untied_gqa2"], **rope_fields}
BATCH, SEQ = 2, 40  # positions beyond original_max_position_embeddings too


def make(name, fields, out_dir):
    torch.manual_seed(sum(map(ord, name)))
    config = transformers.LlamaConfig(**{**COMMON, **fields})
    model = transformers.LlamaForCausalLM._from_config(
        config, attn_implementation="eager", dtype=torch.float32)
    # Norm weights start at 1; random ones make the test see a swapped or dropped norm weight.
    with torch.no_grad():
        for pname, p in model.named_parameters():
            if pname.endswith("norm.weight"):
                p.copy_(1.0 + 0.1 * torch.randn_like(p))
    model.eval()  # no dropout (there is none in Llama, but be explicit)
    ids = torch.randint(0, config.vocab_size, (BATCH, SEQ))
    result = model(input_ids=ids, labels=ids)
    result.loss.backward()

    directory = os.path.join(out_dir, name)
    model.save_pretrained(directory, safe_serialization=True)
    tensors = {"logits": result.logits.detach().contiguous()}
    for pname, p in model.named_parameters():
        tensors["grad." + pname] = p.grad.detach().contiguous()
    save_file(tensors, os.path.join(directory, "reference.safetensors"))
    with open(os.path.join(directory, "reference.json"), "w") as f:
        json.dump({"ids": ids.tolist(), "loss": result.loss.item(),
                   "torch": torch.__version__, "transformers": transformers.__version__},
                  f, indent=1)
        f.write("\n")
    print(f"{directory}: loss {result.loss.item():.6f}, "
          f"{sum(p.numel() for p in model.parameters())} parameters")


def check(name, exported, out_dir):
    reference = os.path.join(out_dir, name)
    with open(os.path.join(reference, "reference.json")) as f:
        ids = torch.tensor(json.load(f)["ids"])
    want = load_file(os.path.join(reference, "reference.safetensors"))["logits"]
    model = transformers.LlamaForCausalLM.from_pretrained(
        exported, attn_implementation="eager", dtype=torch.float32)
    with torch.no_grad():
        got = model(input_ids=ids).logits
    print(f"{exported}: max |logits - {name}'s reference| {(got - want).abs().max().item():.3g} "
          f"(max |reference| {want.abs().max().item():.3g})")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="test/data/hf_reference")
    parser.add_argument("--check", nargs="+", metavar="NAME=DIR")
    parser.add_argument("--only", nargs="+", metavar="NAME", choices=[*MODELS, *ROPE_MODELS])
    args = parser.parse_args()
    if args.check:
        for item in args.check:
            name, exported = item.split("=", 1)
            check(name, exported, args.out)
        return
    for name, fields in {**MODELS, **ROPE_MODELS}.items():
        if not args.only or name in args.only:
            make(name, fields, args.out)


if __name__ == "__main__":
    main()
