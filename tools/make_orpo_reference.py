#!/usr/bin/env python3
"""Writes the ORPO trajectory fixture that test_rl checks llm_train's rl: orpo against.

Axolotl's chat_template.argilla ORPO strategy and TRL's ORPOTrainer (trl.experimental.orpo, as
Axolotl runs it), written out in torch (transformers' LlamaForCausalLM in float32 on the CPU),
with llm_train's byte tokenizer (BOS 256, the UTF-8 bytes, EOS 257) and the chatml template,
sequence_len 256 (max_position_embeddings raised to it):
- prompt: the row's system turn (when non-empty), then per turn of "chosen" its user message (the
  row's "prompt" instead when it has one) and, but for the last turn, its assistant message,
  rendered with the generation prompt; each response: the whole conversation with the last
  message of chosen / rejected as the assistant's, rendered, less the prompt's characters;
- Axolotl drops a pair whose prompt and either response (bytes, no BOS/EOS) exceed sequence_len;
- TRL 1.9 (Axolotl 0.19's pin; its ORPOTrainer.tokenize_row): prompt part BOS + prompt, answer
  response + EOS; when a prompt part and the longer answer exceed max_length (sequence_len), each
  answer keeps its first max_length - longer (no prompt is cut: Axolotl 0.19 passes TRL no
  max_prompt_length); that may leave a sequence up to BOS and EOS past max_length, which
  llm_train's rows end at max_length, and so does this fixture; a pair left with an empty answer
  is dropped here (TRL would average over no token: NaN; llm_train drops it too);
- per micro-batch: the chosen and rejected sequences in one right-padded batch; each response's
  log-likelihood averaged over its tokens (c, r); log_odds = (c - r) - (log1p(-e^c) - log1p(-e^r));
  loss = NLL of the chosen sequences (every token after the first, prompt included, one mean over
  the micro-batch) - beta mean(log sigmoid(log_odds)), divided by the accumulation steps; dropout
  off; AdamW, clipping, a constant learning rate.
Cases (the kept rows in the Trainer's random order of epoch 0, make_dpo_reference.epoch_order;
every case trains within one epoch):
  orpo            beta 0.5 (Axolotl's orpo_alpha): the long row, at sequence_len before BOS and EOS,
                  keeps its chosen answer but the last byte and EOS
  orpo_2ranks     orpo on 2 ranks of one pair per micro-batch: the same as one rank of micro-batches
                  of one pair, ACCUMULATION x 2 of them a step
Each step records: loss, grad_norm, rewards/chosen, rewards/rejected, rewards/accuracies,
rewards/margins, logps/chosen, logps/rejected, nll_loss, log_odds_ratio, log_odds_chosen (means
over the step's micro-batches of their means, as TRL's stored metrics).

Run from the repository root (needs torch, transformers):
  tools/make_orpo_reference.py [--out test/data/orpo_reference]
Reads test/data/hf_trajectory/untied; writes OUT/rows.jsonl and OUT/trajectory.json.
"""
import argparse
import importlib.util
import os
import random

import torch
import transformers

_spec = importlib.util.spec_from_file_location("dpo", os.path.join(os.path.dirname(__file__), "make_dpo_reference.py"))
dpo = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(dpo)

MICRO_BATCH, ACCUMULATION, STEPS = 2, 2, 4
SEQUENCE_LEN = 256  # two-turn chatml rows need more than the model's 128 (its RoPE has no limit)
LONG_ROW = 5
SETTINGS = dict(dpo.SETTINGS, micro_batch_size=MICRO_BATCH, gradient_accumulation_steps=ACCUMULATION,
                max_steps=STEPS, sequence_len=SEQUENCE_LEN)


def chatml(messages, generation_prompt):
    text = "".join(f"<|im_start|>{m['role']}\n{m['content']}<|im_end|>\n" for m in messages)
    return text + ("<|im_start|>assistant\n" if generation_prompt else "")


def orpo_rows():
    rng = random.Random(13)
    rows = []
    for i in range(MICRO_BATCH * ACCUMULATION * STEPS + 1):
        a, b = rng.randint(1, 60), rng.randint(1, 60)
        chosen, rejected = f"It is {a + b}.", f"{a + b + rng.randint(1, 9)}"
        if i % 4 == 1:  # two turns: the first turn's answer is the prompt's
            c, d = rng.randint(1, 9), rng.randint(1, 9)
            history = [{"role": "user", "content": f"{c}+{d}?"}, {"role": "assistant", "content": f"{c + d}"}]
        else:
            history = []
        row = {"chosen": history + [{"role": "user", "content": f"{a}+{b}=?"}, {"role": "assistant", "content": chosen}],
               "rejected": history + [{"role": "user", "content": f"{a}+{b}=?"},
                                      {"role": "assistant", "content": rejected}]}
        if i % 3 == 0:
            row["system"] = "Add."
        if i == 6:
            row["prompt"] = f"Add {a} and {b}."  # every user turn reads it instead
        rows.append(row)
    # One row at the length limit: prompt and chosen exactly sequence_len bytes.
    long = rows[LONG_ROW]
    long.pop("system", None)
    prompt, chosen, _ = texts(long)
    long["chosen"][-3 if len(long["chosen"]) > 2 else 0]["content"] += "x" * (SEQUENCE_LEN - len(prompt) - len(chosen))
    long["rejected"] = [dict(m) for m in long["chosen"][:-1]] + [long["rejected"][-1]]
    assert sum(map(len, texts(long)[:2])) == SEQUENCE_LEN
    return rows


def texts(row):  # Axolotl's orpo chat_template.argilla
    turns = len(row["chosen"]) // 2
    messages = [{"role": "system", "content": row["system"]}] if row.get("system") else []
    for i in range(turns):
        messages.append({"role": "user", "content": row.get("prompt", row["chosen"][2 * i]["content"])})
        if i < turns - 1:
            messages.append({"role": "assistant", "content": row["chosen"][2 * i + 1]["content"]})
    prompt = chatml(messages, True)
    responses = [chatml(messages + [{"role": "assistant", "content": row[k][-1]["content"]}], False)[len(prompt):]
                 for k in ("chosen", "rejected")]
    return prompt, responses[0], responses[1]


def tokenize(row):
    """(ids, prompt_len) of the chosen and the rejected sequence, or None when the pair is dropped."""
    prompt, chosen, rejected = texts(row)
    if len(prompt) + max(len(chosen), len(rejected)) > SEQUENCE_LEN:  # Axolotl's rule
        return None
    parts = [[dpo.BOS] + list(prompt.encode()) for _ in range(2)]
    answers = [list(r.encode()) + [dpo.EOS] for r in (chosen, rejected)]
    longer = max(map(len, answers))
    for i in range(2):
        if len(parts[i]) + longer > SEQUENCE_LEN:  # TRL 1.9's cut
            answers[i] = answers[i][:SEQUENCE_LEN - longer]
        answers[i] = answers[i][:max(0, SEQUENCE_LEN - len(parts[i]))]  # a row ends at sequence_len
    if not answers[0] or not answers[1]:
        return None
    return [(parts[i] + answers[i], len(parts[i])) for i in range(2)]


def forward(model, sequences):
    """Per sequence: the summed log-likelihood of its answer and its count, of every token after
    the first and its count."""
    logps, answer, every, _, _, _ = dpo.token_logps(model, sequences)
    return (logps * answer).sum(-1), answer.sum(-1), (logps * every).sum(-1), every.sum(-1)


def train(model, pairs, beta, micro_batch, accumulation):
    assert STEPS * accumulation * micro_batch <= len(pairs)  # one epoch
    pairs = [pairs[i] for i in dpo.epoch_order(len(pairs), 0)]
    torch.manual_seed(0)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=SETTINGS["learning_rate"], betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0)
    keys = ["rewards/chosen", "rewards/rejected", "rewards/accuracies", "rewards/margins", "logps/chosen",
            "logps/rejected", "nll_loss", "log_odds_ratio", "log_odds_chosen"]
    steps = []
    for step in range(STEPS):
        opt.zero_grad()
        total, stored = 0.0, {k: [] for k in keys}
        for micro in range(accumulation):
            first = (step * accumulation + micro) * micro_batch
            batch = pairs[first:first + micro_batch]
            n = len(batch)
            sums, counts, all_sums, all_counts = forward(model, [p[0] for p in batch] + [p[1] for p in batch])
            c, r = sums[:n] / counts[:n], sums[n:] / counts[n:]
            nll = -all_sums[:n].sum() / all_counts[:n].sum()
            log_odds = (c - r) - (torch.log1p(-torch.exp(c)) - torch.log1p(-torch.exp(r)))
            ratio = torch.nn.functional.logsigmoid(log_odds)
            loss = (nll - (beta * ratio).mean()) / accumulation
            loss.backward()
            total += loss.item()
            rc, rr = beta * c.detach(), beta * r.detach()
            values = [rc.mean(), rr.mean(), (rc > rr).float().mean(), (rc - rr).mean(), c.mean(), r.mean(), nll,
                      ratio.mean(), log_odds.mean()]
            for k, v in zip(keys, values):
                stored[k].append(v.item())
        grad_norm = torch.nn.utils.clip_grad_norm_(params, SETTINGS["max_grad_norm"]).item()
        opt.step()
        record = {"step": step + 1, "loss": total, "grad_norm": grad_norm}
        record.update({k: sum(v) / len(v) for k, v in stored.items()})
        steps.append(record)
    return {"beta": beta, "steps": steps}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", default="test/data/orpo_reference")
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    rows = orpo_rows()
    dpo.write_jsonl(os.path.join(args.out, "rows.jsonl"), rows)
    load = lambda: transformers.LlamaForCausalLM.from_pretrained(os.path.join(dpo.TRAJECTORY, "untied"),
                                                                 dtype=torch.float32).eval()

    kept = [p for p in map(tokenize, rows) if p is not None]
    long = tokenize(rows[LONG_ROW])
    assert len(kept) == len(rows) and long[0][1] + len(texts(rows[LONG_ROW])[1]) - 1 == len(long[0][0]) == SEQUENCE_LEN
    cases = {"orpo": train(load(), kept, 0.5, MICRO_BATCH, ACCUMULATION),
             "orpo_2ranks": train(load(), kept, 0.5, 1, 2 * ACCUMULATION)}
    dpo.write_fixture(args.out, SETTINGS, cases)


if __name__ == "__main__":
    main()
