#!/usr/bin/env python3
"""Writes the reward-model trajectory fixtures that test_reward_model and test_process_reward_model
check llm_train's reward_model: true and process_reward_model: true against.

TRL's RewardTrainer semantics, written out in torch (transformers' LlamaForSequenceClassification
with one label, float32, on the CPU): the classifier made from the causal LM of the hf_trajectory
fixture as transformers makes it (its lm_head left unread, the score head drawn after
torch.manual_seed(SEED)) and saved to OUT/start, which llm_train then loads (so both start from
the same score head). Each row of OUT/pairs.jsonl (bradley_terry.chat_template: system, input,
chosen, rejected) becomes two conversations rendered by TEMPLATE (Axolotl's
BTChatTemplateStrategy: [system (even ""),] user input, assistant response) and tokenized with llm_train's
byte tokenizer (UTF-8 bytes; apply_chat_template adds no BOS). A micro-batch's chosen sequences
and then its rejected ones are padded right with PAD and scored at each sequence's last non-pad
token (transformers' pooling, config.pad_token_id = PAD as TRL sets it); the loss of a
micro-batch is the mean of -log sigmoid(r_chosen - r_rejected) over its pairs, divided by the
step's micro-batches (model_accepts_loss_kwargs False); AdamW (torch, no weight decay), gradients
clipped at max_grad_norm, a constant learning rate; each epoch's pairs in the Trainer's random
order (torch.randperm seeded SEED + epoch).
Each step records what TRL logs: loss (the mean over the step's micro-batches), grad_norm (before
clipping), and accuracy (r_chosen > r_rejected), margin (r_chosen - r_rejected) and min_reward,
mean_reward and max_reward (of all 2B scores), the means of the step's micro-batches' values.

TRL's PRMTrainer the same way (transformers' LlamaForTokenClassification with two labels, its
dropout off as TRL's disable_dropout, saved to OUT/start_prm): each row of OUT/steps.jsonl
(stepwise_supervised: prompt, completions, labels) tokenized as Axolotl's stepwise strategy does
with the byte tokenizer (BOS 256, the prompt, each step and its separator "\n", the step's label on
its last token); a micro-batch padded right with PAD, its labels with -100; the loss the summed
cross-entropy of the labelled tokens over the step's count of them (the Trainer's
num_items_in_batch); logged: loss and grad_norm.

Run from the repository root (needs torch, transformers and, through make_dpo_reference.py, peft):
  tools/make_reward_reference.py [--out test/data/reward_reference]
Writes OUT/pairs.jsonl, OUT/steps.jsonl, OUT/start and OUT/start_prm (the starting classifiers) and
OUT/trajectory.json (cases reward and prm).
"""
import argparse
import importlib.util
import os
import random

import torch
import transformers

# The DPO fixture's settings, sampler and writers (its STEPS, micro-batches and epoch order).
_spec = importlib.util.spec_from_file_location("dpo", os.path.join(os.path.dirname(__file__), "make_dpo_reference.py"))
dpo = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(dpo)

PAIRS = 14  # 7 micro-batches an epoch: its 4th step takes the one left, as the Trainer's last step of an epoch
# The Jinja template the fixture's config gives (chat_template: jinja): no special tokens, so the
# byte tokenizer renders it.
TEMPLATE = "{% for m in messages %}{{ m.role }}: {{ m.content }}\n{% endfor %}"
SETTINGS = dict(dpo.SETTINGS, chat_template_jinja=TEMPLATE)


def pair_rows():
    rng = random.Random(7)
    rows = []
    for i in range(PAIRS):
        a, b = rng.randint(1, 60), rng.randint(1, 60)
        rows.append({"system": "Add." if i % 3 == 0 else "", "input": f"{a}+{b}=?", "chosen": f"It is {a + b}.",
                     "rejected": f"{a + b + rng.randint(1, 9)}"})
    return rows


def conversation_ids(row, response):
    # Axolotl's strategy adds a non-empty system; its chat_template parent inserts an empty one.
    messages = ([{"role": "system", "content": row["system"]}] if row["system"] is not None else []) + [
        {"role": "user", "content": row["input"]}, {"role": "assistant", "content": response}]
    text = "".join(f"{m['role']}: {m['content']}\n" for m in messages)
    return list(text.encode())[:SETTINGS["sequence_len"]]


def step_rows():
    rng = random.Random(11)
    rows = []
    for i in range(PAIRS):
        a, b = rng.randint(1, 60), rng.randint(1, 60)
        wrong = i % 2 == 1
        rows.append({"prompt": f"{a}+{b}=?", "completions": [f"{a} plus {b}", f"is {a + b + (rng.randint(1, 9) if wrong else 0)}"],
                     "labels": [True, not wrong]})
    return rows


def step_ids(row):
    """Axolotl's stepwise_supervised: BOS, the prompt, each step with its separator; labels on the steps' last tokens."""
    ids = [dpo.BOS] + list(row["prompt"].encode())
    labels = [-100] * len(ids)
    for step, label in zip(row["completions"], row["labels"]):
        piece = list(step.encode()) + list(b"\n")
        ids += piece
        labels += [-100] * (len(piece) - 1) + [int(label)]
    n = SETTINGS["sequence_len"]
    return ids[:n], labels[:n]


def padded(sequences, labels=None):
    """Right-padded ids (PAD) and attention mask of `sequences`, and with `labels` theirs padded with -100."""
    length = max(len(ids) for ids in sequences)
    input_ids = torch.full((len(sequences), length), dpo.PAD, dtype=torch.long)
    mask = torch.zeros((len(sequences), length), dtype=torch.long)
    targets = torch.full((len(sequences), length), -100, dtype=torch.long)
    for i, ids in enumerate(sequences):
        input_ids[i, :len(ids)], mask[i, :len(ids)] = torch.tensor(ids), 1
        if labels:
            targets[i, :len(ids)] = torch.tensor(labels[i])
    return input_ids, mask, targets


def run_steps(model, items, step):
    """The Trainer's STEPS optimizer steps over `items`: step(micro_batches) runs each micro-batch's
    backward and returns what the step logs; then the clip (its norm logged) and AdamW's update."""
    s = SETTINGS
    optimizer = torch.optim.AdamW(model.parameters(), lr=s["learning_rate"], betas=(s["adam_beta1"], s["adam_beta2"]),
                                  eps=s["adam_epsilon"], weight_decay=0.0)
    steps = []
    for micro_batches in dpo.step_batches(items):
        logged = step(micro_batches)
        logged["grad_norm"] = torch.nn.utils.clip_grad_norm_(model.parameters(), s["max_grad_norm"]).item()
        optimizer.step()
        optimizer.zero_grad()
        steps.append(logged)
    return {"steps": steps}


def train_prm(model, rows):
    def step(micro_batches):
        items = sum(sum(l != -100 for l in labels) for batch in micro_batches for _, labels in batch)
        logged = {"loss": 0.0}
        for batch in micro_batches:
            input_ids, mask, targets = padded([ids for ids, _ in batch], [labels for _, labels in batch])
            logits = model(input_ids=input_ids, attention_mask=mask).logits.float()
            loss = torch.nn.functional.cross_entropy(logits.view(-1, 2), targets.view(-1), ignore_index=-100,
                                                     reduction="sum") / items
            loss.backward()
            logged["loss"] += loss.item()
        return logged
    return run_steps(model, rows, step)


def scores(model, batch):
    input_ids, mask, _ = padded([chosen for chosen, _ in batch] + [rejected for _, rejected in batch])
    rewards = model(input_ids=input_ids, attention_mask=mask).logits.squeeze(-1).float()
    return rewards[:len(batch)], rewards[len(batch):]


def train(model, pairs):
    def step(micro_batches):
        logged = {"loss": 0.0, "accuracy": 0.0, "margin": 0.0, "min_reward": 0.0, "mean_reward": 0.0, "max_reward": 0.0}
        for batch in micro_batches:
            chosen, rejected = scores(model, batch)
            loss = -torch.nn.functional.logsigmoid(chosen - rejected).mean()
            (loss / len(micro_batches)).backward()
            with torch.no_grad():
                logged["loss"] += loss.item() / len(micro_batches)
                logged["accuracy"] += (chosen > rejected).float().mean().item() / len(micro_batches)
                logged["margin"] += (chosen - rejected).mean().item() / len(micro_batches)
                rewards = torch.cat([chosen, rejected])
                logged["min_reward"] += rewards.min().item() / len(micro_batches)
                logged["mean_reward"] += rewards.mean().item() / len(micro_batches)
                logged["max_reward"] += rewards.max().item() / len(micro_batches)
        return logged
    return run_steps(model, pairs, step)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", default="test/data/reward_reference")
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    rows = pair_rows()
    dpo.write_jsonl(os.path.join(args.out, "pairs.jsonl"), rows)
    torch.manual_seed(dpo.SEED)
    model = transformers.LlamaForSequenceClassification.from_pretrained(
        os.path.join(dpo.TRAJECTORY, "untied"), num_labels=1, pad_token_id=dpo.PAD, dtype=torch.float32)
    model.save_pretrained(os.path.join(args.out, "start"))
    model.train()  # no dropout in Llama: train mode changes nothing but is what the Trainer runs
    pairs = [(conversation_ids(r, r["chosen"]), conversation_ids(r, r["rejected"])) for r in rows]
    cases = {"reward": train(model, pairs)}
    steps = step_rows()
    dpo.write_jsonl(os.path.join(args.out, "steps.jsonl"), steps)
    torch.manual_seed(dpo.SEED)
    prm = transformers.LlamaForTokenClassification.from_pretrained(os.path.join(dpo.TRAJECTORY, "untied"), num_labels=2,
                                                                   dtype=torch.float32)
    prm.save_pretrained(os.path.join(args.out, "start_prm"))
    for module in prm.modules():  # TRL's disable_dropout (the token classifier's own dropout is 0.1)
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0
    prm.train()
    cases["prm"] = train_prm(prm, [step_ids(r) for r in steps])
    dpo.write_fixture(args.out, SETTINGS, cases)

if __name__ == "__main__":
    main()
