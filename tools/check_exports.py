#!/usr/bin/env python3
"""Every kind of model llm_train writes at the end of a run, loaded by transformers and PEFT.

Makes two small HF Llama 3 bases (tied and untied, llama3 RoPE scaling) with transformers, trains
each export kind for a few steps with llm_train, and checks: every full model loads with nothing
missing or unexpected and gives finite logits; every adapter loads with PEFT, and where llm_train
also merged it (merge_lora), PEFT's merge_and_unload onto the same base equals our merged model
tensor by tensor and in its logits. Needs torch, transformers and peft (tools/install_deps.sh does
not install them: a reference environment, as for the other tools/make_*.py).

    python tools/check_exports.py [--llm-train ./llm_train] [--work /tmp/llm_exports]
"""
import argparse
import os
import shutil
import subprocess
import sys

import peft
import torch
import transformers

LORA = "adapter: lora\nlora_r: 4\nlora_alpha: 8\nlora_target_linear: true\n"
QLORA = "adapter: qlora\nload_in_4bit: true\nlora_r: 4\nlora_alpha: 8\nlora_target_linear: true\n"
# name: (base, extra config); a run with merge_lora is compared with PEFT's merge.
RUNS = {
    "full": ("base_untied", ""),
    "full_tied": ("base_tied", ""),
    "full_bf16": ("base_untied", "bf16: true\n"),
    "tokens": ("base_untied", 'tokens: ["<x1>", "<x2>"]\n'),
    "lora": ("base_untied", LORA + "merge_lora: true\n"),
    "lora_tied": ("base_tied", LORA + "merge_lora: true\n"),
    "dora": ("base_untied", LORA + "peft_use_dora: true\nmerge_lora: true\n"),
    "modules_to_save": ("base_untied", LORA + "lora_modules_to_save: [lm_head, embed_tokens]\nmerge_lora: true\n"),
    "token_rows": ("base_untied", LORA + "peft_trainable_token_indices: {embed_tokens: [5, 9], lm_head: [7]}\n"
                   "merge_lora: true\n"),
    "token_rows_tied": ("base_tied", LORA + "peft_trainable_token_indices: [5, 9]\nmerge_lora: true\n"),
    "int8": ("base_untied", LORA + "load_in_8bit: true\nmerge_lora: true\n"),
    "qlora": ("base_untied", QLORA),
    "relora": ("base_untied", LORA + "relora: true\njagged_restart_steps: 2\n"),
    "relora_qlora": ("base_untied", QLORA + "relora: true\njagged_restart_steps: 2\n"),
}


def make_bases(work):
    torch.manual_seed(0)
    for name, tied in (("base_untied", False), ("base_tied", True)):
        config = transformers.LlamaConfig(
            vocab_size=384, hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
            num_key_value_heads=2, max_position_embeddings=256, tie_word_embeddings=tied, rope_theta=500000.0,
            initializer_range=0.05,
            rope_scaling={"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                          "original_max_position_embeddings": 64})
        transformers.LlamaForCausalLM(config).save_pretrained(os.path.join(work, name))


def train(llm_train, work, name, base, extra):
    run_dir = os.path.join(work, name)
    os.makedirs(run_dir, exist_ok=True)
    config = os.path.join(run_dir, "config.yaml")
    with open(config, "w") as f:
        f.write(f"base_model: {os.path.join(work, base)}\ndatasets:\n  - path: {os.path.join(work, 'corpus.txt')}\n"
                f"    type: completion\ndataset_prepared_path: {run_dir}/prepared\noutput_dir: {run_dir}/out\n"
                "sequence_len: 64\nmicro_batch_size: 2\nmax_steps: 3\nlearning_rate: 0.01\nval_set_size: 0\nseed: 3\n"
                + extra)
    result = subprocess.run([llm_train, config], capture_output=True, text=True, errors="replace")
    if result.returncode != 0:
        sys.exit(f"{name}: llm_train failed ({result.returncode}):\n{result.stdout[-2000:]}{result.stderr[-2000:]}")
    return os.path.join(run_dir, "out")


def load(path):
    model, info = transformers.AutoModelForCausalLM.from_pretrained(path, output_loading_info=True,
                                                                    dtype=torch.float32)
    return model, {k: v for k, v in info.items() if v}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--llm-train", default="./llm_train")
    parser.add_argument("--work", default="/tmp/llm_exports")
    args = parser.parse_args()
    llm_train = os.path.abspath(args.llm_train)
    shutil.rmtree(args.work, ignore_errors=True)
    os.makedirs(args.work)
    with open(os.path.join(args.work, "corpus.txt"), "w") as f:
        f.writelines(f"line {i % 37}: the quick brown fox jumps over the lazy dog {i}.\n" for i in range(300))
    make_bases(args.work)
    ids = torch.randint(0, 300, (1, 40), generator=torch.Generator().manual_seed(0))
    failures = 0
    for name, (base, extra) in RUNS.items():
        out = train(llm_train, args.work, name, base, extra)
        if os.path.exists(os.path.join(out, "adapter_config.json")):
            base_model = transformers.AutoModelForCausalLM.from_pretrained(os.path.join(args.work, base),
                                                                           dtype=torch.float32)
            peft_model = peft.PeftModel.from_pretrained(base_model, out)
            if not os.path.exists(os.path.join(out, "merged")):
                finite = torch.isfinite(peft_model(ids).logits).all().item()
                failures += not finite
                print(f"{name}: PEFT loads the adapter, logits finite: {finite}")
                continue
            reference = peft_model.merge_and_unload()
            ours, issues = load(os.path.join(out, "merged"))
            want, got = reference.state_dict(), ours.state_dict()
            missing = sorted(set(want) - set(got))
            worst = max((want[k] - got[k]).abs().max().item() for k in want if k in got)
            logits = (reference(ids).logits - ours(ids).logits).abs().max().item()
            ok = not missing and not issues and worst <= 1e-6 and logits <= 1e-5
            failures += not ok
            print(f"{name}: merged vs PEFT's merge_and_unload: max |diff| {worst:.3g}, logits {logits:.3g}, "
                  f"missing {missing}, loading issues {issues}: {'ok' if ok else 'FAIL'}")
        else:
            model, issues = load(out)
            finite = torch.isfinite(model(ids).logits).all().item()
            ok = not issues and finite
            failures += not ok
            print(f"{name}: transformers loads {len(model.state_dict())} tensors, vocab {model.config.vocab_size}, "
                  f"loading issues {issues}, logits finite {finite}: {'ok' if ok else 'FAIL'}")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
