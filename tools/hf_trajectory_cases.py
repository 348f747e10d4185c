"""The fixture cases that make_hf_trajectory.py computes one at a time with --add NAME: LISA,
sparse fine-tuning, fp8, qat's int4-for-fp8 and fp8 schemes, bfloat16 (bf16 weights and moments, no master copy), schedules' and data semantics' cases (Axolotl's shuffled order among them), Axolotl's EAFT and DFT losses, PoSE,
and the Trainer's eval_loss (see make_hf_trajectory.py's docstring for each case)."""
import functools
import json
import math
import os
import re

import numpy as np
import torch
import transformers

from hf_trajectory_optimizers import (adamc_cases, came_cases, grokadamw_cases, lomo_cases, muon_cases, optimi_cases, optimizer_cases,
                                      rmsprop_bnb_cases, schedule_free_cases, stable_adamw_cases, torch_optim_cases,
                                      torchao_cases)
from hf_trajectory_apollo import apollo_cases
from hf_trajectory_galore import galore_cases, galore_layerwise_cases, qgalore_cases
from hf_trajectory_lora_inits import lora_init_cases
from hf_trajectory_replication import layer_replication_cases
from hf_trajectory_ssmax import ssmax_cases
from hf_trajectory_tokens import shrink_cases, token_rows_cases
from make_hf_trajectory import (ACCUMULATION, LISA_INTERVAL, LISA_LAYERS, LORA, MICRO_BATCH, QAT_GROUP, SEQUENCE_LEN, SETTINGS, STEPS,
                                 collate, load, make_model, qat_cases, train, unfrozen_rows_cases)


class LisaCallback(transformers.TrainerCallback):
    """Axolotl's LISACallback: at the start and before every step whose global_step is a multiple
    of the interval, every layer of model.layers frozen, then n of them (numpy's draw seeded by the
    step) trainable again. Records each draw."""
    def __init__(self, model, n, interval):
        self.layers, self.n, self.interval, self.draws = model.model.layers, n, interval, []

    def switch(self, step):
        for layer in self.layers:
            for p in layer.parameters():
                p.requires_grad = False
        np.random.seed(step)
        active = np.random.choice(range(len(self.layers)), self.n, replace=False)
        self.draws.append({"step": step, "layers": [int(i) for i in active]})
        for i in active:
            for p in self.layers[i].parameters():
                p.requires_grad = True

    def on_train_begin(self, args, state, control, **kwargs):
        self.switch(state.global_step)

    def on_step_begin(self, args, state, control, **kwargs):
        if state.global_step % self.interval == 0:
            self.switch(state.global_step)


def lisa_cases(out, rows):
    if not os.path.isdir(os.path.join(out, "deep")):
        make_model("deep", out)
    model = load(out, "deep")
    callback = LisaCallback(model, LISA_LAYERS, LISA_INTERVAL)
    case = train(model, rows, callbacks=[callback])
    case.update(lisa_n_layers=LISA_LAYERS, lisa_step_interval=LISA_INTERVAL, draws=callback.draws,
                numpy=np.__version__)
    return {"lisa": case}


PRUNING_TARGETS = ["re:.*" + m + ".weight" for m in LORA["target_modules"]]


class ConstantPruningCallback(transformers.TrainerCallback):
    """llmcompressor's ConstantPruningModifier under Axolotl's LLMCompressorPlugin: a mask of each
    targeted parameter (re.match on its full name) where |w| > 1e-8, taken when training starts;
    after each optimizer step (the plugin's on_step_end) w *= mask."""
    def __init__(self, model, targets):
        self.model, self.targets, self.masks = model, targets, {}

    def on_train_begin(self, args, state, control, **kwargs):
        for name, p in self.model.named_parameters():
            if any(re.match(t[3:], name) for t in self.targets):
                self.masks[name] = (p.data.abs() > 10e-9)

    def on_step_end(self, args, state, control, **kwargs):
        with torch.no_grad():
            for name, p in self.model.named_parameters():
                if name in self.masks:
                    p.mul_(self.masks[name])


def sparse_cases(out, rows):
    directory = os.path.join(out, "sparse24")
    if not os.path.isdir(directory):
        model = load(out, "untied")
        with torch.no_grad():
            for name, p in model.named_parameters():
                if any(re.match(t[3:], name) for t in PRUNING_TARGETS):
                    groups = p.view(-1, 4)
                    smallest = groups.abs().argsort(dim=1)[:, :2]
                    groups.scatter_(1, smallest, 0.0)
        model.save_pretrained(directory)
    model = transformers.LlamaForCausalLM.from_pretrained(directory, dtype=torch.float32, attn_implementation="eager")
    case = train(model, rows, callbacks=[ConstantPruningCallback(model, PRUNING_TARGETS)])
    case.update(targets=PRUNING_TARGETS)
    return {"sparse": case}


def fp8_cases(out, rows):
    from accelerate.utils.ao import convert_model_to_fp8_ao
    model = load(out, "untied")
    convert_model_to_fp8_ao(model)
    return {"fp8": train(model, rows)}


def linear_ratio_cases(out, rows):
    # Axolotl's builder turns warmup_ratio into warmup_steps int(ratio x total) (and a warmup of 1
    # into 2) before the Trainer sees it; the Trainer's own ratio would round up instead.
    ratio = 0.25
    case = train(load(out, "tied"), rows, lr_scheduler_type="linear", warmup_steps=int(ratio * STEPS))
    case.update(lr_scheduler="linear", warmup_ratio=ratio)
    return {"linear_ratio": case}


def axolotl_max_steps(rows, epochs):
    """Axolotl 0.19's total_num_steps without packing, ceil(rows x epochs / batch), which its
    builder hands the Trainer as max_steps."""
    return math.ceil(rows * epochs / (MICRO_BATCH * ACCUMULATION))


def epoch_end_cases(out, rows):
    # 18 rows: 9 micro-batches an epoch, so each of the Trainer's epochs ends with a step of one
    # micro-batch (5 steps); Axolotl hands it max_steps ceil(18 x 2 / 4) = 9, so the second epoch
    # stops before its short step.
    case = train(load(out, "untied"), rows[:18], max_steps=axolotl_max_steps(18, 2), num_train_epochs=2)
    case.update(examples=18, num_epochs=2)
    return {"epoch_end": case}


def partial_batch_cases(out, rows):
    # 15 rows in micro-batches of 2: the Trainer's DataLoader (dataloader_drop_last false, HF's
    # default and Axolotl's) ends each epoch with a micro-batch of one row, in a step with one
    # whole micro-batch: 4 steps an epoch, and Axolotl's ceil(15 x 2 / 4) = 8 in all.
    case = train(load(out, "untied"), rows[:15], max_steps=axolotl_max_steps(15, 2), num_train_epochs=2,
                 dataloader_drop_last=False)
    case.update(examples=15, num_epochs=2)
    return {"partial_batch": case}


def weighted_loss(outputs, labels, num_items_in_batch, weight):
    """Each target's cross-entropy (from f32 logits) times weight(logits, token_loss) of its
    position, computed without gradient, summed over the step's num_items_in_batch (in evaluation,
    the batch's mean)."""
    vocab = outputs.logits.size(-1)
    logits = outputs.logits[..., :-1, :].reshape(-1, vocab)[(labels[..., 1:] != -100).reshape(-1)].float()
    targets = labels[..., 1:].reshape(-1)
    targets = targets[targets != -100]
    token_loss = torch.nn.functional.cross_entropy(logits, targets, reduction="none")
    with torch.no_grad():
        w = weight(logits, token_loss)
    token_loss = token_loss * w
    return token_loss.sum() / num_items_in_batch if num_items_in_batch is not None else token_loss.mean()


def eaft_loss(outputs, labels, num_items_in_batch=None, alpha=1.0, k=20):
    """Axolotl's use_eaft loss (monkeypatch/loss/eaft.py), which its builder hands the Trainer as
    compute_loss_func: each target's cross-entropy times H^alpha, H the entropy of the softmax over
    that position's k largest logits (no gradient through the weight)."""
    def weight(logits, token_loss):
        best = torch.topk(logits, k=min(k, logits.size(-1)), dim=-1).values
        p = torch.softmax(best, dim=-1)
        return (-(p * torch.log(p + 1e-10)).sum(dim=-1)) ** alpha
    return weighted_loss(outputs, labels, num_items_in_batch, weight)


def dft_loss(outputs, labels, num_items_in_batch=None):
    """Axolotl's DFT (integrations/dft: L_ce * exp(-L_ce.detach()), patched into the Trainer's
    compute_loss, which evaluation calls too)."""
    return weighted_loss(outputs, labels, num_items_in_batch, lambda logits, token_loss: torch.exp(-token_loss))


def eaft_cases(out, rows):
    # EAFT (alpha 0.5 over the 8 largest logits), evaluated too as the Trainer evaluates with it.
    alpha, k = 0.5, 8
    case = train(load(out, "untied"), rows, compute_loss_func=functools.partial(eaft_loss, alpha=alpha, k=k),
                 eval_rows=rows[:5], eval_strategy="steps", eval_steps=5, per_device_eval_batch_size=1)
    case.update(eaft_alpha=alpha, eaft_k=k, eval_examples=5, eval_steps=5, eval_batch_size=1)
    return {"eaft": case}


def dft_cases(out, rows):
    # DFT, evaluated too as the Trainer evaluates with it.
    case = train(load(out, "untied"), rows, compute_loss_func=dft_loss,
                 eval_rows=rows[:5], eval_strategy="steps", eval_steps=5, per_device_eval_batch_size=1)
    case.update(eval_examples=5, eval_steps=5, eval_batch_size=1)
    return {"dft": case}


MASK64 = (1 << 64) - 1


def counter_bits(seed, i):
    """engine/counter_random.h's counter_bits: splitmix64's finaliser of seed + golden x (i + 1)."""
    z = (seed + 0x9E3779B97F4A7C15 * (i + 1)) & MASK64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
    return z ^ (z >> 31)


def pose_position_ids(ids, example, seed, max_context_len, chunks=2):
    """Axolotl's add_pose_position_ids (no split tokens: `chunks` equal chunks) with llm_train's
    draws in place of random.randint (io/pose.h): draw k of example e is floor(u (m + 1)), u the
    top 53 bits of counter_bits(counter_bits(seed, e), k)."""
    stream, k = counter_bits(seed, example), 0
    n = len(ids)
    skips_left, skipped, previous, positions = max_context_len - n, 0, 0, []
    splits = [c * (n // chunks) for c in range(1, chunks)] + [n]
    if splits[0] < 2:
        splits = splits[1:]
    for split in splits:
        skip = 0
        if previous != 0 and skips_left:
            u = (counter_bits(stream, k) >> 11) * 2.0 ** -53
            k += 1
            skip = min(skips_left, int(u * (skips_left + 1)))
        skips_left -= skip
        skipped += skip
        positions += list(range(previous + skipped, split + skipped))
        previous = split
    return positions


def pose_cases(out, rows):
    # PoSE with a context of 4096 over the 64-token rows, the position ids in each row.
    context = 4096
    posed = [dict(r, position_ids=pose_position_ids(r["input_ids"], e, SETTINGS["seed"], context))
             for e, r in enumerate(rows)]
    posed.sort(key=lambda r: r["position_ids"][-1])  # Axolotl's train_dataset.sort("sequence_len"), stable
    case = train(load(out, "untied"), posed)
    case.update(pose_max_context_len=context)
    return {"pose": case}


def eval_loss_cases(out, rows):
    # The Trainer's eval_loss on rows 0-4 (of 20 to 64 ids) one at a time: the mean of their own
    # mean token losses, each example weighing the same.
    case = train(load(out, "untied"), rows, eval_rows=rows[:5], eval_strategy="steps", eval_steps=5,
                 per_device_eval_batch_size=1)
    case.update(eval_examples=5, eval_steps=5, eval_batch_size=1)
    return {"eval_loss": case}


def eval_batch_cases(out, rows):
    # The Trainer's eval loader over rows 0-4 two at a time, in their order (a SequentialSampler):
    # batches {0, 1}, {2, 3}, {4}, or with dataloader_drop_last (the eval loader's too) the first two.
    cases = {}
    for name, drop in (("eval_batches", False), ("eval_drop_last", True)):
        case = train(load(out, "untied"), rows, eval_rows=rows[:5], eval_strategy="steps", eval_steps=5,
                     per_device_eval_batch_size=2, dataloader_drop_last=drop)
        case.update(eval_examples=5, eval_steps=5, eval_batch_size=2, dataloader_drop_last=drop)
        cases[name] = case
    return cases


def shuffled_cases(out, rows):
    # Axolotl's data order under its defaults: the dataset shuffled as HF's Dataset.shuffle(seed)
    # shuffles it (numpy's default_rng(seed).permutation), its last 4 rows held out (Axolotl's
    # train_test_split(shuffle=False)), the rest served by the Trainer's own RandomSampler (which
    # accelerate's SeedableRandomSampler seeds with seed + epoch) for 2 epochs of 9 steps,
    # evaluated every 5 steps on the held-out rows two at a time, in their order.
    val = 4
    merged = [rows[i] for i in np.random.default_rng(SETTINGS["seed"]).permutation(len(rows))]
    case = train(load(out, "untied"), merged[:-val], eval_rows=merged[-val:], eval_strategy="steps", eval_steps=5,
                 per_device_eval_batch_size=2, max_steps=-1, num_train_epochs=2, train_sampling_strategy="random")
    case.update(val_set_size=val, num_epochs=2, eval_steps=5, eval_batch_size=2)
    return {"shuffled": case}


def next_fit_bins(lengths, capacity):
    """Axolotl's allocate_sequentially: examples in order, a new bin when one does not fit."""
    bins, room = [], 0
    for i, n in enumerate(lengths):
        if not bins or n > room:
            bins.append([])
            room = capacity
        bins[-1].append(i)
        room -= n
    return bins


def pack(full, capacity):
    """Next-fit bins of `capacity` tokens, in order, each a row of its examples end to end with
    their positions restarting."""
    bins = next_fit_bins([len(r["input_ids"]) for r in full], capacity)
    return [{"input_ids": sum((full[i]["input_ids"] for i in b), []),
             "labels": sum((full[i]["labels"] for i in b), []),
             "position_ids": sum((list(range(len(full[i]["input_ids"]))) for i in b), [])} for b in bins]


def collate_keeping_mask(rows):
    """Axolotl's packed batches when its attention does not keep the examples apart
    (sample_packing_drop_attention_mask false): the mask stays, so transformers' masks are
    causal over the whole row, padding aside."""
    batch = collate(rows)
    n = batch["input_ids"].shape[1]
    batch["attention_mask"] = torch.tensor([[1] * len(r["input_ids"]) + [0] * (n - len(r["input_ids"])) for r in rows])
    return batch


def packed_cases(out, rows):
    # Axolotl's sample_packing (multipack_real_batches false: one bin of MICRO_BATCH x SEQUENCE_LEN a
    # micro-batch) on the rows as a completion dataset labels them, every id a target.
    full = [{"input_ids": r["input_ids"], "labels": list(r["input_ids"])} for r in rows]
    with open(os.path.join(out, "data_completion.jsonl"), "w") as f:
        for r in full:
            f.write(json.dumps({"input_ids": r["input_ids"]}) + "\n")
    packed = pack(full, MICRO_BATCH * SEQUENCE_LEN)
    steps = len(packed) // ACCUMULATION
    case = train(load(out, "untied"), packed, per_device_train_batch_size=1, max_steps=steps)
    case.update(max_steps=steps, bins=len(packed))
    return {"packed": case}


def packed_across_cases(out, rows):
    # Axolotl's sample_packing with no attention key: bins of SEQUENCE_LEN (multipack_real_batches),
    # MICRO_BATCH of them a micro-batch, and transformers' default attention over each whole row
    # (Axolotl warns: no cross-sample decontamination), so an example attends to those before it.
    full = [{"input_ids": r["input_ids"], "labels": list(r["input_ids"])} for r in rows]
    packed = pack(full, SEQUENCE_LEN)
    steps = len(packed) // (MICRO_BATCH * ACCUMULATION)
    case = train(load(out, "untied"), packed, max_steps=steps, data_collator=collate_keeping_mask)
    case.update(max_steps=steps, bins=len(packed))
    return {"packed_across": case}


def group_by_length_cases(out, rows):
    # HF's group_by_length, which Axolotl's key sets: each epoch's rows grouped by length from a
    # permutation of torch's global generator (set_seed, then advanced by every DataLoader
    # iteration, evaluations' too), for 3 epochs, evaluated at the start and every 5 steps on rows
    # 0-8 two at a time in the eval LengthGroupedSampler's order (the last batch one row).
    case = train(load(out, "untied"), rows, eval_rows=rows[:9], eval_strategy="steps", eval_steps=5,
                 per_device_eval_batch_size=2, max_steps=-1, num_train_epochs=3, dataloader_drop_last=False,
                 train_sampling_strategy="group_by_length")
    case.update(num_epochs=3, eval_examples=9, eval_steps=5, eval_batch_size=2)
    return {"group_by_length": case}


def min_lr_schedule_cases(out, rows):
    # HF's schedules with a floor, through lr_scheduler_kwargs as Axolotl passes them on: the
    # min-lr cosines (min_lr as a rate of learning_rate or absolute, cycles, a warmup floor) and
    # warmup_stable_decay (its shapes, an explicit stable phase, the rate past the decay).
    schedules = {"cosine_min_lr": ("cosine_with_min_lr", {"min_lr": 2e-4, "num_cycles": 0.75}),
                 "cosine_warmup_min_lr": ("cosine_warmup_with_min_lr", {"min_lr_rate": 0.1, "warmup_lr_rate": 0.3}),
                 "wsd": ("warmup_stable_decay", {"num_decay_steps": 4, "min_lr_ratio": 0.05, "warmup_type": "cosine",
                                                 "decay_type": "1-sqrt"}),
                 "wsd_stable": ("warmup_stable_decay", {"num_stable_steps": 3, "num_decay_steps": 3, "decay_type": "linear"})}
    cases = {}
    for name, (schedule, kwargs) in schedules.items():
        cases[name] = train(load(out, "tied"), rows, lr_scheduler_type=schedule, lr_scheduler_kwargs=kwargs)
        cases[name].update(lr_scheduler=schedule, lr_scheduler_kwargs=kwargs)
    return cases


def trainer_adamw(model, args):
    """The AdamW the Trainer makes itself: its class and kwargs from the arguments, decay on the
    tensors get_decay_parameter_names keeps."""
    optimizer_cls, kwargs = transformers.Trainer.get_optimizer_cls_and_kwargs(args, model)
    decayed = set(transformers.Trainer.get_decay_parameter_names(None, model))
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    return optimizer_cls([{"params": [p for n, p in named if n in decayed], "weight_decay": args.weight_decay},
                          {"params": [p for n, p in named if n not in decayed], "weight_decay": 0.0}], **kwargs)


def one_cycle_cases(out, rows):
    # Axolotl's one_cycle (its SchedulerMixin): torch's OneCycleLR at learning_rate over the run's
    # steps, pct_start the warmup's share and cosine annealing unless lr_scheduler_kwargs says,
    # which cycles AdamW's beta1 (from max_momentum) against the rate. Defaults; every argument
    # (three phases, linear); and the rate alone (cycle_momentum false: beta1 stays adam_beta1).
    schedules = {"one_cycle": {},
                 "one_cycle_three_phase": {"three_phase": True, "anneal_strategy": "linear", "pct_start": 0.3,
                                           "div_factor": 10.0, "final_div_factor": 100.0, "base_momentum": 0.8,
                                           "max_momentum": 0.9},
                 "one_cycle_rate_only": {"cycle_momentum": False}}
    cases = {}
    for name, kwargs in schedules.items():
        def make_scheduler(optimizer, args, kwargs=kwargs):
            defaults = {"pct_start": args.get_warmup_steps(args.max_steps) / args.max_steps, "anneal_strategy": "cos"}
            return torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=args.learning_rate, total_steps=args.max_steps,
                                                       **dict(defaults, **kwargs))
        cases[name] = train(load(out, "tied"), rows, make_optimizer=trainer_adamw, make_scheduler=make_scheduler)
        cases[name].update(lr_scheduler="one_cycle", lr_scheduler_kwargs=kwargs)
    return cases


def plateau_cases(out, rows):
    # HF's reduce_lr_on_plateau: torch's ReduceLROnPlateau, stepped by the Trainer with eval_loss at
    # every evaluation (the one at the start too), the rate halved whenever an evaluation is not
    # 10% better than the best (patience 0), then a cooldown of one evaluation; evaluated every 2
    # steps on rows 0-3 two at a time.
    kwargs = {"factor": 0.5, "patience": 0, "threshold": 0.1, "cooldown": 1}
    case = train(load(out, "tied"), rows, eval_rows=rows[:4], eval_strategy="steps", eval_steps=2,
                 per_device_eval_batch_size=2, lr_scheduler_type="reduce_lr_on_plateau", lr_scheduler_kwargs=kwargs)
    case.update(lr_scheduler="reduce_lr_on_plateau", lr_scheduler_kwargs=kwargs, eval_examples=4, eval_steps=2,
                eval_batch_size=2)
    return {"plateau": case}


def adamw_on_bf16(p, g, m, v, step, lr, beta1, beta2, eps, weight_decay):
    """One AdamW update of bf16 weight p and bf16 moments m, v from gradient g, as llm_train's
    bfloat16 computes it: each element in f32 (decay, m, v, the bias-corrected step, in torch's
    order), the weight and moments each rounded back to bf16 once."""
    w = p.float() * (1 - lr * weight_decay)
    m32 = beta1 * m.float() + (1 - beta1) * g.float()
    v32 = beta2 * v.float() + (1 - beta2) * g.float() * g.float()
    step_size = lr / (1 - beta1 ** step)
    w = w - step_size * m32 / (v32.sqrt() / math.sqrt(1 - beta2 ** step) + eps)
    return w.bfloat16(), m32.bfloat16(), v32.bfloat16()


def check_adamw_on_bf16():
    """The arithmetic above against torch's own fused AdamW kernel on a bf16 tensor (which wants a
    bf16 gradient): 4 steps on 100000 elements, each step from the kernel's state; every element
    within one bf16 unit in the last place of the kernel's (or, where a moment's two terms cancel,
    a millionth of its largest), nearly all the same bits (its own f32 order of operations, fused
    multiply-adds, rounds a few the other way)."""
    g = torch.Generator().manual_seed(9)
    p = (0.05 * torch.randn(100000, generator=g)).bfloat16()
    theirs = [p, torch.zeros_like(p), torch.zeros_like(p)]
    args = dict(lr=3e-2, beta1=0.9, beta2=0.95, eps=1e-8, weight_decay=0.1)
    worst = 0.0
    for step in range(1, 5):
        grad = torch.randn(100000, generator=g).bfloat16()
        ours = adamw_on_bf16(*theirs[:1], grad, *theirs[1:], step, **args)
        torch._fused_adamw_([theirs[0]], [grad], [theirs[1]], [theirs[2]], [], [torch.tensor(float(step))],
                            amsgrad=False, maximize=False, **args)
        for a, b in zip(ours, theirs):
            # One unit in the last place, or (a moment whose two terms cancel, near zero) a
            # millionth of the tensor's largest value.
            ulp = torch.ldexp(torch.ones_like(b.float()), torch.frexp(b.float()).exponent - 8)
            assert ((a.float() - b.float()).abs() <= ulp + 1e-6 * b.float().abs().max()).all()
            worst = max(worst, (a != b).float().mean().item())
    assert worst < 0.01, worst
    print(f"adamw_on_bf16 vs torch._fused_adamw_: at most {100 * worst:.3f}% of a tensor one bf16 unit apart a step")


class AdamWOnBf16(torch.optim.Optimizer):
    """llm_train's bfloat16: true in torch: the modules stay f32 but hold bf16 values (so forward,
    backward and the gradients are f32, as on llm_train's CPU), and AdamW (adamw_on_bf16) keeps
    bf16 moments and writes each weight back rounded to bf16."""
    def __init__(self, params, lr, betas, eps):
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps))

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if not state:
                    state.update(step=0, m=torch.zeros_like(p, dtype=torch.bfloat16),
                                 v=torch.zeros_like(p, dtype=torch.bfloat16))
                state["step"] += 1
                w, state["m"], state["v"] = adamw_on_bf16(p.bfloat16(), p.grad, state["m"], state["v"], state["step"],
                                                          group["lr"], *group["betas"], group["eps"],
                                                          group["weight_decay"])
                p.copy_(w.float())


def qat_scheme_cases(out, rows):
    """Axolotl's other qat schemes as its _make_qat_config builds them from the two dtypes: int4
    weights for fp8 activations (Int4WeightFakeQuantizeConfig's default: e4m3 rows, then symmetric
    groups) alone (qat_int4, tied) or under e4m3 inputs per token (qat_fp8_int4, untied_pad_row);
    e4m3 inputs and weights per row (qat_fp8_fp8, untied_pad_row); mxfp4 inputs and weights
    (qat_mxfp4, untied: torchao's MXFakeQuantizedLinear, straight-through gradients)."""
    import torchao
    from torchao.quantization import quantize_
    from torchao.quantization.qat import QATConfig
    from torchao.quantization.qat.fake_quantize_config import Float8FakeQuantizeConfig, Int4WeightFakeQuantizeConfig
    from torchao.prototype.qat import MXFakeQuantizeConfig

    def prepare(model, activation, weight):
        if weight == "mxfp4":
            mx = MXFakeQuantizeConfig(dtype=torch.float4_e2m1fn_x2, block_size=32)
            quantize_(model, QATConfig(weight_config=mx, activation_config=mx))
            return model
        fp8 = Float8FakeQuantizeConfig(dtype=torch.float8_e4m3fn)
        quantize_(model, QATConfig(weight_config=Int4WeightFakeQuantizeConfig(group_size=QAT_GROUP) if weight == "int4" else fp8,
                                   activation_config=fp8 if activation else None))
        return model

    # fp8 inputs turn an all-zero row into NaN (its scale is 0), and the padding token's embedding
    # row is zero in these models (transformers zeroes padding_idx): untied with that row drawn.
    directory = os.path.join(out, "untied_pad_row")
    if not os.path.isdir(directory):
        model = load(out, "untied")
        with torch.no_grad():
            model.model.embed_tokens.weight[model.config.pad_token_id].normal_(0.0, 0.02, generator=torch.Generator().manual_seed(0))
        model.save_pretrained(directory)
    cases = {}
    for name, model, activation, weight in (("qat_int4", "tied", None, "int4"),
                                            ("qat_fp8_int4", "untied_pad_row", "float8_e4m3fn", "int4"),
                                            ("qat_fp8_fp8", "untied_pad_row", "float8_e4m3fn", "float8_e4m3fn"),
                                            ("qat_mxfp4", "untied", None, "mxfp4")):
        cases[name] = train(prepare(load(out, model), activation, weight), rows)
        cases[name].update(qat=dict(group_size=QAT_GROUP, activation_dtype=activation, weight_dtype=weight,
                                    torchao=torchao.__version__))
    return cases


def qat_ternary_cases(out, rows):
    """Axolotl 0.19's own ternary QAT (its prepare_model_for_ternary_qat, not torchao's: every
    linear but lm_head with BitNet b1.58 weights, and int8 inputs per token with activation_dtype
    int8): qat_ternary (untied, weights only) and qat_ternary_int8 (tied). Needs Axolotl importable
    (PYTHONPATH may name its unpacked wheel)."""
    from axolotl.utils.quantization_ternary import prepare_model_for_ternary_qat
    cases = {}
    for name, model_name, activation in (("qat_ternary", "untied", None), ("qat_ternary_int8", "tied", "int8")):
        model = load(out, model_name)
        prepare_model_for_ternary_qat(model, quantize_activations=activation is not None)
        cases[name] = train(model, rows)
        cases[name].update(qat=dict(activation_dtype=activation, weight_dtype="ternary"))
    return cases


def bfloat16_cases(out, rows):
    check_adamw_on_bf16()
    model = load(out, "untied")
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(p.bfloat16().float())  # the weights a bf16 model loads: round to nearest even

    def optimizer(model, args):  # the Trainer's decay groups, its betas and eps
        decayed = set(transformers.Trainer.get_decay_parameter_names(None, model))
        named = list(model.named_parameters())
        groups = [{"params": [p for n, p in named if n in decayed], "weight_decay": args.weight_decay},
                  {"params": [p for n, p in named if n not in decayed], "weight_decay": 0.0}]
        return AdamWOnBf16(groups, args.learning_rate, (args.adam_beta1, args.adam_beta2), args.adam_epsilon)
    return {"bfloat16": train(model, rows, make_optimizer=optimizer)}


EXTRA_CASES = {"plateau": plateau_cases, "one_cycle": one_cycle_cases, "min_lr_schedules": min_lr_schedule_cases, "shuffled": shuffled_cases, "packed": packed_cases, "packed_across": packed_across_cases, "group_by_length": group_by_length_cases, "epoch_end": epoch_end_cases, "dft": dft_cases, "linear_ratio": linear_ratio_cases, "eval_loss": eval_loss_cases, "eval_batches": eval_batch_cases, "eaft": eaft_cases, "pose": pose_cases, "partial_batch": partial_batch_cases, "unfrozen_rows": unfrozen_rows_cases, "qat": qat_cases, "lisa": lisa_cases, "sparse": sparse_cases,
               "fp8": fp8_cases, "bfloat16": bfloat16_cases, "qat_schemes": qat_scheme_cases, "qat_ternary": qat_ternary_cases,
               "optimizers": optimizer_cases, "muon": muon_cases,
               "optimi": optimi_cases, "adamc": adamc_cases, "came": came_cases,
               "schedule_free": schedule_free_cases, "torchao": torchao_cases,
               "torch_optim": torch_optim_cases, "token_rows": token_rows_cases,
               "ssmax": ssmax_cases, "layer_replication": layer_replication_cases,
               "shrink": shrink_cases, "lora_inits": lora_init_cases,
               "rmsprop_bnb": rmsprop_bnb_cases, "galore": galore_cases, "galore_layerwise": galore_layerwise_cases, "apollo": apollo_cases, "qgalore": qgalore_cases,
               "stable_adamw": stable_adamw_cases, "grokadamw": grokadamw_cases,
               "lomo": lomo_cases}
