#!/usr/bin/env python3
"""Writes the DPO trajectory fixture that test_rl checks llm_train's rl: dpo / ipo against.

TRL's DPOTrainer semantics, written out in torch (transformers' LlamaForCausalLM in float32 on
the CPU): each pair is tokenized as TRL does with llm_train's byte tokenizer (BOS 256, then the
UTF-8 bytes; EOS 257 appended to each response), the prompt masked; a micro-batch's chosen and
rejected sequences are concatenated along the batch and padded right with an attention mask;
each sequence's log-likelihood is the sum of log_softmax(logits)[next token] over its response;
the reference is a frozen copy of the starting model (LoRA: the same model with its adapters
disabled, TRL's choice when no ref_model is given), run beside the policy on every batch rather
than precomputed; dropout is off (TRL's disable_dropout). The loss of a micro-batch is the mean
over its pairs, divided by the step's micro-batches (model_accepts_loss_kwargs False); AdamW
(torch), gradients clipped at max_grad_norm, a constant learning rate.
Cases, each STEPS steps on the same pairs, each epoch in the Trainer's random order (epoch_order):
  dpo        full fine-tuning, loss_type sigmoid, beta 0.1
  cdpo       dpo with label_smoothing 0.1 (conservative DPO: TRL's sigmoid loss before 1.0)
  ipo        loss_type ipo, beta 0.5: log-ratios averaged over each response's tokens (and so its
             rewards and logged logps, as TRL's)
  rpo        dpo with rpo_alpha 0.5 (TRL's RPO before 1.0: each pair's loss plus alpha x the mean NLL
             of the micro-batch's chosen response tokens, its cross_entropy ignoring label id 0)
  rpo_nul    rpo on OUT/pairs_nul.jsonl, whose chosen responses hold NUL bytes (token id 0 here, as
             Llama 3's "!"): in the DPO term, not in the NLL
  lora_dpo   PEFT LoRA from the hf_trajectory fixture's lora_init (r 8, alpha 16, every linear)
  lora_dpo_trained  lora_dpo from OUT/lora_trained: lora_init with every lora_B drawn normal(0, 0.05)
             (an adapter trained before, as a lora_model_dir from SFT), handed to TRL as a PeftModel:
             its reference a frozen copy of that adapter (TRL's "ref" adapter), not the base
  dpo_norm   dpo with Axolotl's dpo_norm_loss: its trainer runs TRL's forward as for ipo, so the
             sigmoid loss, rewards and logps are of log-likelihoods averaged over each response's tokens
  simpo      TRL's CPOTrainer with loss_type simpo, beta 2, simpo_gamma 0.5, cpo_alpha 1 (its default):
             no reference, log-likelihoods averaged over each response's tokens, the loss plus
             cpo_alpha x the micro-batch's chosen tokens' mean NLL (no token id left out)
  simpo_plain  simpo_gamma 1, cpo_alpha 0
  dpo_sft    loss_type [sigmoid, sft], loss_weights [1, 0.5] (Axolotl's dpo_loss_type / dpo_loss_weights):
             the sft term the chosen tokens' mean NLL as RPO's (id 0 left out), its rewards 0
  wpo, wpo_ipo  dpo (beta 0.1) and ipo (beta 0.5) with TRL 1.9's use_weighting (Axolotl's
             dpo_use_weighting, WPO): each pair's loss times exp of each response's mean over its
             tokens of log p - logsumexp(2 logits) + 2 logsumexp(logits), under no gradient
  dpo_mix    loss_type [sigmoid, ipo], loss_weights [0.7, 0.3]: ipo among them averages every term's
             log-likelihoods; the rewards weighted as the losses (TRL's sum over terms)
  dpo_partial  dpo on the first 7 pairs (OUT/pairs_7.jsonl): each epoch's second step holds a
             whole micro-batch and one of a single pair, which the Trainer keeps (no
             dataloader_drop_last), each micro-batch's mean loss weighing the same
Each step records TRL's logged values: loss (the mean over the step's micro-batches), grad_norm
(before clipping), and rewards/chosen, rewards/rejected, rewards/accuracies, rewards/margins,
logps/chosen, logps/rejected (the means of the step's micro-batches' means over their pairs), and with rpo_alpha, cpo_alpha or an sft
term nll_loss (the mean over the step's micro-batches); but for simpo (CPOTrainer), TRL 1.9's token-level
logs, each the mean over the step's micro-batches of a ratio over its response tokens: entropy (of each
token's softmax), logits/chosen and logits/rejected (each side's mean logit a token) and
mean_token_accuracy (the chosen tokens that are their logits' argmax).

Evaluations (TRL's DPOTrainer.evaluate over the pairs, sigmoid loss, beta 0.1, one pair a batch, as
Axolotl's evaluate command with eval_batch_size 1), under "evaluations":
  base          the model itself, its reference a copy of it (so every reward is 0)
  lora_trained  the model with OUT/lora_trained, its reference the same (every reward 0): the loaded
                adapter's weights in every log-likelihood

Run from the repository root (needs torch, transformers, peft):
  tools/make_dpo_reference.py [--out test/data/dpo_reference]
Reads test/data/hf_trajectory/untied (the model) and lora_init; writes OUT/pairs.jsonl (type
chatml.prompt_pairs rows), OUT/pairs_nul.jsonl, OUT/pairs_7.jsonl and OUT/trajectory.json.
"""
import argparse
import copy
import json
import os
import random

import peft
import torch
import transformers

STEPS = 4
MICRO_BATCH, ACCUMULATION = 2, 2
PAIRS = STEPS * MICRO_BATCH * ACCUMULATION
BOS, EOS, PAD = 256, 257, 258
SETTINGS = dict(learning_rate=2e-3, max_grad_norm=1.0, adam_beta1=0.9, adam_beta2=0.999, adam_epsilon=1e-8,
                sequence_len=128, micro_batch_size=MICRO_BATCH, gradient_accumulation_steps=ACCUMULATION,
                max_steps=STEPS)
TRAJECTORY = "test/data/hf_trajectory"
SEED = 42  # the Trainer's seed: llm_train's default (test_rl's configs set none)


def pair_rows():
    rng = random.Random(5)
    rows = []
    for i in range(PAIRS):
        a, b = rng.randint(1, 60), rng.randint(1, 60)
        row = {"prompt": f"{a}+{b}=?", "chosen": f"It is {a + b}.", "rejected": f"{a + b + rng.randint(1, 9)}"}
        if i % 3 == 0:
            row["system"] = "Add."
        rows.append(row)
    return rows


def chatml_texts(row):  # Axolotl's chatml.prompt_pairs
    prompt = ""
    if row.get("system"):
        prompt += f"<|im_start|>system\n{row['system']}<|im_end|>\n"
    prompt += f"<|im_start|>user\n{row['prompt']}<|im_end|>\n<|im_start|>assistant\n"
    return prompt, row["chosen"] + "<|im_end|>", row["rejected"] + "<|im_end|>"


def tokenize(row):  # TRL: BOS + text; EOS after each response; prompt = the common prefix
    prompt, chosen, rejected = chatml_texts(row)
    prompt_ids = [BOS] + list(prompt.encode())
    out = []
    for response in (chosen, rejected):
        ids = [BOS] + list((prompt + response).encode()) + [EOS]
        assert ids[:len(prompt_ids)] == prompt_ids
        out.append((ids, len(prompt_ids)))
    return out


def token_logps(model, sequences):
    """log p of every next token of sequences, a list of (ids, prompt_len), in one right-padded
    batch: (logps, response mask, real-token mask, the next ids, WPO's aligned log p, the token
    statistics TRL 1.9 logs: each token's softmax entropy (its entropy_from_logits), mean logit, and
    1 where it is its logits' argmax), each (B, L - 1)."""
    length = max(len(ids) for ids, _ in sequences)
    input_ids = torch.full((len(sequences), length), PAD, dtype=torch.long)
    mask = torch.zeros((len(sequences), length), dtype=torch.long)
    completion = torch.zeros((len(sequences), length), dtype=torch.bool)
    for i, (ids, prompt_len) in enumerate(sequences):
        input_ids[i, :len(ids)] = torch.tensor(ids)
        mask[i, :len(ids)] = 1
        completion[i, prompt_len:len(ids)] = True
    logits = model(input_ids=input_ids, attention_mask=mask).logits.float()
    logps = torch.gather(logits[:, :-1].log_softmax(-1), 2, input_ids[:, 1:, None]).squeeze(2)
    with torch.no_grad():  # TRL 1.9's use_weighting: log p - log sum_v p_v^2, a constant
        shift = logits[:, :-1]
        aligned = logps - (torch.logsumexp(2.0 * shift, dim=-1) - 2.0 * torch.logsumexp(shift, dim=-1))
        all_logps = shift.log_softmax(-1)
        stats = (-(all_logps.exp() * all_logps).sum(-1), shift.mean(-1), (shift.argmax(-1) == input_ids[:, 1:]).float())
    return logps, completion[:, 1:], mask[:, 1:].bool(), input_ids[:, 1:], aligned, stats


def sequence_logps(model, sequences):
    """Sums of log p(response tokens) and their counts; the same without targets of id 0; WPO's
    aligned sums; the sums of the token statistics (entropy, mean logit, argmax hits)."""
    logps, keep, _, targets, aligned, stats = token_logps(model, sequences)
    nonzero = keep & (targets != 0)  # RPO's NLL: TRL's cross_entropy ignores label id 0
    return ((logps * keep).sum(-1), keep.sum(-1), (logps * nonzero).sum(-1), nonzero.sum(-1), (aligned * keep).sum(-1),
            tuple((stat * keep).sum(-1) for stat in stats))


def token_metrics(stats, counts, n):
    """TRL 1.9 DPOTrainer's token-level logs of a micro-batch of n pairs (chosen sequences first):
    entropy over every response token, logits/chosen and logits/rejected, mean_token_accuracy over
    the chosen tokens."""
    entropy, mean_logit, hits = stats
    chosen, rejected = counts[:n].sum().item(), counts[n:].sum().item()
    return {"entropy": entropy.sum().item() / counts.sum().item(),
            "logits/chosen": mean_logit[:n].sum().item() / chosen,
            "logits/rejected": mean_logit[n:].sum().item() / rejected,
            "mean_token_accuracy": hits[:n].sum().item() / chosen}


def epoch_order(n, epoch):
    """The order the Trainer's RandomSampler serves n rows in an epoch (TRL's preference trainers
    keep it; Axolotl's curriculum_sampling does not reach them): torch.randperm from a generator
    seeded with SEED + epoch, as accelerate's SeedableRandomSampler seeds it."""
    return torch.randperm(n, generator=torch.Generator().manual_seed(SEED + epoch)).tolist()


def step_batches(pairs):
    """Each of the STEPS steps' micro-batches as the Trainer serves `pairs`, each epoch in its
    epoch_order: MICRO_BATCH pairs each, an epoch's last one smaller when MICRO_BATCH does not
    divide the pairs (no dataloader_drop_last), an epoch's last step taking the micro-batches left;
    then the next epoch."""
    steps, epoch = [], 0
    while len(steps) < STEPS:
        order = [pairs[i] for i in epoch_order(len(pairs), epoch)]
        micro = [order[i:i + MICRO_BATCH] for i in range(0, len(order), MICRO_BATCH)]
        steps += [micro[i:i + ACCUMULATION] for i in range(0, len(micro), ACCUMULATION)]
        epoch += 1
    return steps[:STEPS]


def train(model, reference, pairs, loss_type, beta, label_smoothing, rpo_alpha=None, simpo_gamma=None,
          cpo_alpha=None, norm_loss=False, loss_weights=None, use_weighting=False):
    """TRL's DPOTrainer (loss_type sigmoid / ipo, or a list of sigmoid / ipo / sft terms with
    loss_weights; rpo_alpha; use_weighting, TRL 1.9's WPO) or, with simpo_gamma, its CPOTrainer's
    SimPO (no reference, cpo_alpha x the chosen tokens' NLL added)."""
    torch.manual_seed(0)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=SETTINGS["learning_rate"], betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0)
    simpo = simpo_gamma is not None
    types = loss_type if isinstance(loss_type, list) else [loss_type]
    weights = loss_weights or [1.0] * len(types)
    steps = []
    for step, batches in enumerate(step_batches(pairs)):
        opt.zero_grad()
        total, sums, nlls = 0.0, dict.fromkeys(["chosen", "rejected", "acc", "lc", "lr_"], 0.0), []
        tokens = {}  # DPOTrainer's token-level logs (not CPO's): each micro-batch's
        for batch in batches:
            seqs = [p[0] for p in batch] + [p[1] for p in batch]
            logps, counts, nll_sums, nll_counts, aligned, stats = sequence_logps(model, seqs)
            if not simpo:
                for key, value in token_metrics(stats, counts, len(batch)).items():
                    tokens[key] = tokens.get(key, 0.0) + value / len(batches)
            if simpo:
                ref = torch.zeros_like(logps)
            else:
                with torch.no_grad():
                    ref = sequence_logps(reference(), seqs)[0]
            n = len(batch)
            if "ipo" in types or simpo or norm_loss:  # TRL averages over each response's tokens first
                logps, ref = logps / counts, ref / counts
            pc, pr, rc, rr = logps[:n], logps[n:], ref[:n], ref[n:]
            # The chosen tokens' mean NLL: DPO's (RPO, sft) leaves out id 0, CPO's does not.
            sums_, counts_ = (logps[:n] * counts[:n], counts[:n]) if simpo else (nll_sums[:n], nll_counts[:n])
            nll = -sums_.sum() / counts_.sum()
            losses, reward_weight = 0.0, 0.0  # TRL weights each term's rewards as its loss (sft's are 0)
            for kind, weight in zip(types, weights):
                if kind == "ipo":
                    losses = losses + weight * ((pc - rc) - (pr - rr) - 1 / (2 * beta)) ** 2
                elif kind == "sft":
                    losses = losses + weight * nll
                    continue
                else:
                    z = beta * ((pc - rc) - (pr - rr)) - (simpo_gamma if simpo else 0.0)
                    losses = losses + weight * (-(1 - label_smoothing) * torch.nn.functional.logsigmoid(z)
                                                - label_smoothing * torch.nn.functional.logsigmoid(-z))
                reward_weight += weight
            if use_weighting:  # each pair's loss times exp of both responses' mean aligned log p
                means = torch.exp(aligned / counts.clamp_min(1))
                losses = losses * (means[:n] * means[n:])
            alpha = cpo_alpha if simpo else rpo_alpha
            if alpha is not None:
                losses = losses + alpha * nll
            if alpha is not None or "sft" in types:
                nlls.append(nll.item() if alpha != 0 or not simpo else 0.0)  # CPO's is 0 when its alpha is
            loss = losses.mean() / len(batches)  # the Trainer: over the micro-batches the step holds
            loss.backward()
            total += loss.item()
            reward_c, reward_r = reward_weight * beta * (pc - rc).detach(), reward_weight * beta * (pr - rr).detach()
            sums["chosen"] += reward_c.mean().item()  # TRL stores each micro-batch's means
            sums["rejected"] += reward_r.mean().item()
            sums["acc"] += (reward_c > reward_r).float().mean().item()
            sums["lc"] += pc.detach().mean().item()
            sums["lr_"] += pr.detach().mean().item()
        grad_norm = torch.nn.utils.clip_grad_norm_(params, SETTINGS["max_grad_norm"]).item()
        opt.step()
        count = len(batches)
        record = {"step": step + 1, "loss": total, "grad_norm": grad_norm,
                  "rewards/chosen": sums["chosen"] / count, "rewards/rejected": sums["rejected"] / count,
                  "rewards/accuracies": sums["acc"] / count,
                  "rewards/margins": (sums["chosen"] - sums["rejected"]) / count,
                  "logps/chosen": sums["lc"] / count, "logps/rejected": sums["lr_"] / count}
        if nlls:
            record["nll_loss"] = sum(nlls) / len(nlls)
        record.update(tokens)
        steps.append(record)
    return {"loss_type": loss_type, "loss_weights": loss_weights, "beta": beta, "label_smoothing": label_smoothing, "rpo_alpha": rpo_alpha,
            "simpo_gamma": simpo_gamma, "cpo_alpha": cpo_alpha, "norm_loss": norm_loss, "use_weighting": use_weighting,
            "steps": steps}


def evaluate(model, reference, pairs, beta):
    """TRL's DPOTrainer.evaluate (sigmoid loss) with per_device_eval_batch_size 1, as Axolotl's
    evaluate command runs it: each pair a batch of its own, so every metric (the Trainer's loss,
    TRL's logs) is the mean over the pairs; eval_num_tokens is 0 (TRL logs its count of training
    tokens)."""
    totals = {}
    with torch.no_grad():
        for pair in pairs:
            logps, counts, _, _, _, stats = sequence_logps(model, list(pair))
            ref = sequence_logps(reference(), list(pair))[0]
            chosen, rejected = beta * (logps[0] - ref[0]), beta * (logps[1] - ref[1])
            record = {"loss": -torch.nn.functional.logsigmoid(chosen - rejected).item(),
                      "rewards/chosen": chosen.item(), "rewards/rejected": rejected.item(),
                      "rewards/accuracies": float(chosen > rejected), "rewards/margins": (chosen - rejected).item(),
                      "logps/chosen": logps[0].item(), "logps/rejected": logps[1].item()}
            record.update(token_metrics(stats, counts, 1))
            for key, value in record.items():
                totals[key] = totals.get(key, 0.0) + value / len(pairs)
    return dict(totals, num_tokens=0)


def lora_with_reference(load, adapter):
    """The adapter on a fresh model, and its reference: the same model, adapters off."""
    lora = peft.PeftModel.from_pretrained(load(), adapter, is_trainable=True)

    def reference(**kw):
        with lora.disable_adapter():
            return lora(**kw)
    return lora, reference


def write_fixture(out, settings, cases, evaluations=None):
    fixture = {"settings": settings, "versions": {"torch": torch.__version__, "transformers": transformers.__version__,
                                                  "peft": peft.__version__}, "cases": cases}
    if evaluations:
        fixture["evaluations"] = evaluations
    with open(os.path.join(out, "trajectory.json"), "w") as f:
        json.dump(fixture, f, indent=1)
        f.write("\n")


def write_jsonl(path, rows):
    with open(path, "w") as f:
        for row in rows:
            f.write(json.dumps(row) + "\n")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", default="test/data/dpo_reference")
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    rows = pair_rows()
    write_jsonl(os.path.join(args.out, "pairs.jsonl"), rows)
    pairs = [tokenize(row) for row in rows]
    load = lambda: transformers.LlamaForCausalLM.from_pretrained(os.path.join(TRAJECTORY, "untied"),
                                                                 dtype=torch.float32).eval()
    cases = {}
    for name, loss_type, beta, smoothing in [("dpo", "sigmoid", 0.1, 0.0), ("cdpo", "sigmoid", 0.1, 0.1),
                                             ("ipo", "ipo", 0.5, 0.0)]:
        model, frozen = load(), load()
        cases[name] = train(model, lambda: frozen, pairs, loss_type, beta, smoothing)
    model, frozen = load(), load()
    cases["rpo"] = train(model, lambda: frozen, pairs, "sigmoid", 0.1, 0.0, rpo_alpha=0.5)
    nul_rows = [dict(row, chosen=row["chosen"].replace(" ", "\x00")) for row in rows]
    write_jsonl(os.path.join(args.out, "pairs_nul.jsonl"), nul_rows)
    model, frozen = load(), load()
    cases["rpo_nul"] = train(model, lambda: frozen, [tokenize(row) for row in nul_rows], "sigmoid", 0.1, 0.0,
                             rpo_alpha=0.5)
    model, frozen = load(), load()
    cases["dpo_norm"] = train(model, lambda: frozen, pairs, "sigmoid", 0.1, 0.0, norm_loss=True)
    for name, gamma, alpha in [("simpo", 0.5, 1.0), ("simpo_plain", 1.0, 0.0)]:
        cases[name] = train(load(), None, pairs, "simpo", 2.0, 0.0, simpo_gamma=gamma, cpo_alpha=alpha)
    for name, types, weights in [("dpo_sft", ["sigmoid", "sft"], [1.0, 0.5]),
                                 ("dpo_mix", ["sigmoid", "ipo"], [0.7, 0.3])]:
        model, frozen = load(), load()
        cases[name] = train(model, lambda: frozen, pairs, types, 0.5, 0.0, loss_weights=weights)
    lora, reference = lora_with_reference(load, os.path.join(TRAJECTORY, "lora_init"))
    cases["lora_dpo"] = train(lora, lambda: reference, pairs, "sigmoid", 0.1, 0.0)
    trained = peft.PeftModel.from_pretrained(load(), os.path.join(TRAJECTORY, "lora_init"))
    generator = torch.Generator().manual_seed(11)
    with torch.no_grad():
        for name, p in sorted(trained.named_parameters()):
            if "lora_B" in name:
                p.copy_(torch.randn(p.shape, generator=generator) * 0.05)
    trained.save_pretrained(os.path.join(args.out, "lora_trained"))
    lora = lora_with_reference(load, os.path.join(args.out, "lora_trained"))[0]
    frozen = copy.deepcopy(lora)
    cases["lora_dpo_trained"] = train(lora, lambda: frozen, pairs, "sigmoid", 0.1, 0.0)
    lora = lora_with_reference(load, os.path.join(args.out, "lora_trained"))[0]
    model, frozen = load(), load()
    evaluations = {"base": evaluate(model, lambda: frozen, pairs, 0.1),
                   "lora_trained": evaluate(lora, lambda: lora, pairs, 0.1)}
    # 7 pairs: epochs of 2 steps, the second of a whole micro-batch and one of a single pair.
    write_jsonl(os.path.join(args.out, "pairs_7.jsonl"), rows[:7])
    model, frozen = load(), load()
    cases["dpo_partial"] = train(model, lambda: frozen, pairs[:7], "sigmoid", 0.1, 0.0)
    for name, loss_type, beta in [("wpo", "sigmoid", 0.1), ("wpo_ipo", "ipo", 0.5)]:
        model, frozen = load(), load()
        cases[name] = train(model, lambda: frozen, pairs, loss_type, beta, 0.0, use_weighting=True)
    write_fixture(args.out, SETTINGS, cases, evaluations)


if __name__ == "__main__":
    main()
