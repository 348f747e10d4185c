#!/usr/bin/env python3
"""Writes the KTO trajectory fixture that test_rl checks llm_train's rl: kto against.

TRL's KTOTrainer semantics (trl.experimental.kto, as Axolotl runs it), written out in torch
(transformers' LlamaForCausalLM in float32 on the CPU), with llm_train's byte tokenizer (BOS 256,
the UTF-8 bytes, EOS 257):
- rows of type chatml.prompt_pairs (Axolotl's KTO strategy): a row whose prompt and completion
  bytes together exceed sequence_len is dropped (Axolotl's length rule);
- prompt ids = BOS + prompt, completion ids = (BOS + prompt + completion + EOS) past them;
- the KL sequences: within each block of micro_batch_size rows (file order, TRL's
  SequentialSampler), row i's prompt with row i - 1's completion (the first with the last's);
- each sequence prompt + completion cut to sequence_len, the prompt masked, right padded;
- per micro-batch: kl = mean(policy - reference over the KL sequences), averaged over ranks,
  clamped at 0, no gradient; a desirable row's loss w_d (1 - sigmoid(beta (r - kl))), an
  undesirable one's w_u (1 - sigmoid(beta (kl - r))), r = policy - reference of its completion's
  summed log-likelihood; the micro-batch's loss their mean, divided by the accumulation steps;
  the reference a frozen copy of the starting model (LoRA: the adapters off); dropout off; AdamW,
  clipping, a constant learning rate.
Cases (MICRO_BATCH rows a micro-batch, ACCUMULATION of them a step):
  kto         full fine-tuning, beta 0.1, weights 1 and 1
  kto_weights beta 0.5, kto_desirable_weight 0.2 (Axolotl's qlora-1b-kto.yaml), undesirable 1
  lora_kto    PEFT LoRA from the hf_trajectory fixture's lora_init (r 8, alpha 16, every linear)
  kto_2ranks  kto on 2 ranks: rank r's j-th micro-batch is global batch 2 j + r; a step's loss the
              mean over its rows on both ranks, each micro-batch's kl the mean of the two ranks'
Each step records: loss, grad_norm, kl (the mean of the step's micro-batch estimates), and
rewards/chosen, logps/chosen (over desirable rows), rewards/rejected, logps/rejected, rewards/margins;
TRL 1.9's token-level logs over the training sequences' completion tokens: entropy, logits/chosen and
logits/rejected, each the mean over the step's micro-batches of its ratio of the ranks' sums (a side
with no token in a micro-batch adds none).

Run from the repository root (needs torch, transformers, peft):
  tools/make_kto_reference.py [--out test/data/kto_reference]
Reads test/data/hf_trajectory/untied and lora_init; writes OUT/rows.jsonl and OUT/trajectory.json.
"""
import argparse
import importlib.util
import json
import os
import random

import torch
import transformers

_spec = importlib.util.spec_from_file_location("dpo", os.path.join(os.path.dirname(__file__), "make_dpo_reference.py"))
dpo = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(dpo)

MICRO_BATCH, ACCUMULATION, STEPS = 3, 2, 3
ROWS = MICRO_BATCH * ACCUMULATION * STEPS
SEQUENCE_LEN = 128
SETTINGS = dict(dpo.SETTINGS, micro_batch_size=MICRO_BATCH, gradient_accumulation_steps=ACCUMULATION,
                max_steps=STEPS, sequence_len=SEQUENCE_LEN)


def kto_rows():
    rng = random.Random(11)
    rows = []
    for i in range(ROWS):
        a, b = rng.randint(1, 60), rng.randint(1, 60)
        good = rng.random() < 0.6
        row = {"prompt": f"{a}+{b}=?", "completion": f"It is {a + b}." if good else f"{a + b + rng.randint(1, 9)}",
               "label": good}
        if i % 4 == 0:
            row["system"] = "Add them."
        if i == 7:  # row 8 (with a system turn) takes it for its KL sequence, which is cut at sequence_len
            row["completion"] = "It is " + "very " * 9 + f"much {a + b}."
        rows.append(row)
    # Longer than sequence_len with its prompt: Axolotl drops it.
    rows.insert(5, {"prompt": "1+1=?", "completion": "two " * 40, "label": True})
    return rows


def texts(row):  # Axolotl's chatml.prompt_pairs KTO strategy
    prompt = ""
    if row.get("system"):
        prompt += f"<|im_start|>system\n{row['system']}<|im_end|>\n"
    prompt += f"<|im_start|>user\n{row['prompt']}<|im_end|>\n<|im_start|>assistant\n"
    return prompt, row["completion"] + "<|im_end|>"


def tokenize(rows):
    """(prompt ids, completion ids, label) of each row kept by Axolotl's length rule."""
    out = []
    for row in rows:
        prompt, completion = texts(row)
        if len(prompt.encode()) + len(completion.encode()) > SEQUENCE_LEN:
            continue
        prompt_ids = [dpo.BOS] + list(prompt.encode())
        full = [dpo.BOS] + list((prompt + completion).encode()) + [dpo.EOS]
        out.append((prompt_ids, full[len(prompt_ids):], row["label"]))
    return out


def sequences(rows):
    """Each row's (ids, prompt length) and its KL sequence's, blocks of MICRO_BATCH rotated by one."""
    matched, kl = [], []
    for start in range(0, len(rows), MICRO_BATCH):
        block = rows[start:start + MICRO_BATCH]
        for k, (prompt, completion, _) in enumerate(block):
            other = block[k - 1][1]  # k = 0: the block's last
            matched.append(((prompt + completion)[:SEQUENCE_LEN], len(prompt)))
            kl.append(((prompt + other)[:SEQUENCE_LEN], len(prompt)))
    return matched, kl


def train(model, reference, rows, beta, desirable_weight, world=1):
    torch.manual_seed(0)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=SETTINGS["learning_rate"], betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0)
    matched, kl_seqs = sequences(rows)
    labels = [r[2] for r in rows]
    batches = len(rows) // MICRO_BATCH // world  # a rank's micro-batches in the epoch
    steps = []
    for step in range(-(-batches // ACCUMULATION)):
        opt.zero_grad()
        js = range(step * ACCUMULATION, min(batches, (step + 1) * ACCUMULATION))
        count = len(js) * world * MICRO_BATCH
        total, kls = 0.0, []
        token_logs = {"entropy": [], "logits/chosen": [], "logits/rejected": []}
        sums = dict.fromkeys(["nc", "nr", "rc", "rr", "lc", "lr"], 0.0)
        for j in js:
            ranks = [range((j * world + r) * MICRO_BATCH, (j * world + r + 1) * MICRO_BATCH) for r in range(world)]
            parts = []
            token_sums = dict.fromkeys(["n", "entropy", "nc", "mc", "nr", "mr"], 0.0)  # over the ranks
            for idx in ranks:
                seqs = [matched[i] for i in idx] + [kl_seqs[i] for i in idx]
                logps, counts, _, _, _, (entropy, mean_logit, _) = dpo.sequence_logps(model, seqs)
                with torch.no_grad():
                    ref = dpo.sequence_logps(reference(), seqs)[0]
                parts.append((idx, logps, ref))
                for k, i in enumerate(idx):  # the training sequences' tokens, not the KL ones
                    side = "c" if labels[i] else "r"
                    token_sums["n"] += counts[k].item()
                    token_sums["entropy"] += entropy[k].item()
                    token_sums["n" + side] += counts[k].item()
                    token_sums["m" + side] += mean_logit[k].item()
            # KTOTrainer's token-level logs: each micro-batch's ratios of the ranks' sums
            token_logs["entropy"].append(token_sums["entropy"] / token_sums["n"])
            for side, name in [("c", "chosen"), ("r", "rejected")]:
                if token_sums["n" + side]:
                    token_logs[f"logits/{name}"].append(token_sums["m" + side] / token_sums["n" + side])
            kl = torch.stack([(lp[MICRO_BATCH:].detach() - rf[MICRO_BATCH:]).mean() for _, lp, rf in parts]).mean()
            kl = kl.clamp(min=0)
            kls.append(kl.item())
            loss = 0.0
            for idx, logps, ref in parts:
                ratio = logps[:MICRO_BATCH] - ref[:MICRO_BATCH]
                for k, i in enumerate(idx):
                    if labels[i]:
                        loss = loss + desirable_weight * (1 - torch.sigmoid(beta * (ratio[k] - kl)))
                    else:
                        loss = loss + (1 - torch.sigmoid(beta * (kl - ratio[k])))
                    side = "c" if labels[i] else "r"
                    sums["n" + side] += 1
                    sums["r" + side] += beta * ratio[k].item()
                    sums["l" + side] += logps[k].item()
            loss = loss / count
            loss.backward()
            total += loss.item()
        grad_norm = torch.nn.utils.clip_grad_norm_(params, SETTINGS["max_grad_norm"]).item()
        opt.step()
        record = {"step": step + 1, "loss": total, "grad_norm": grad_norm, "kl": sum(kls) / len(kls)}
        for side, name in [("c", "chosen"), ("r", "rejected")]:
            if sums["n" + side]:
                record[f"rewards/{name}"] = sums["r" + side] / sums["n" + side]
                record[f"logps/{name}"] = sums["l" + side] / sums["n" + side]
        if sums["nc"] and sums["nr"]:
            record["rewards/margins"] = record["rewards/chosen"] - record["rewards/rejected"]
        record.update({key: sum(values) / len(values) for key, values in token_logs.items() if values})
        steps.append(record)
    return {"beta": beta, "desirable_weight": desirable_weight, "world": world, "steps": steps}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", default="test/data/kto_reference")
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    raw = kto_rows()
    dpo.write_jsonl(os.path.join(args.out, "rows.jsonl"), raw)
    rows = tokenize(raw)
    assert len(rows) == ROWS, len(rows)
    load = lambda: transformers.LlamaForCausalLM.from_pretrained(os.path.join(dpo.TRAJECTORY, "untied"),
                                                                 dtype=torch.float32).eval()
    cases = {}
    for name, beta, weight, world in [("kto", 0.1, 1.0, 1), ("kto_weights", 0.5, 0.2, 1), ("kto_2ranks", 0.1, 1.0, 2)]:
        model, frozen = load(), load()
        cases[name] = train(model, lambda: frozen, rows, beta, weight, world)
    lora, reference = dpo.lora_with_reference(load, os.path.join(dpo.TRAJECTORY, "lora_init"))
    cases["lora_kto"] = train(lora, lambda: reference, rows, 0.1, 1.0)
    dpo.write_fixture(args.out, SETTINGS, cases)


if __name__ == "__main__":
    main()
