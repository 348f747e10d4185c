#!/usr/bin/env python3
"""Writes the training-trajectory fixture that test_hf_trajectory (and its _precision and
_optimizers siblings) checks llm_train against.

transformers' own Trainer (TrainingArguments, nothing overridden) trains small random
LlamaForCausalLMs in float32 on the CPU for STEPS optimizer steps, and its log (loss, grad_norm,
learning_rate per logged step) is recorded. 95 cases, one dataset (the ones --add computes are
in hf_trajectory_cases.py and the modules it imports):
  full_untied  full fine-tuning, GQA 2, untied embeddings
  full_tied    full fine-tuning, GQA 4, tied embeddings
  lora         PEFT LoRA (r 8, alpha 16, dropout 0, all seven linears) on full_untied's base,
               starting from the adapter PEFT initialised (saved before training: llm_train
               loads it through lora_model_dir, so both start from the same A and B)
  dora         lora with DoRA (use_dora), from the adapter PEFT initialised (OUT/dora_init: A
               drawn, B zero, each magnitude its base row's norm), magnitudes decayed as the
               Trainer decays every parameter but norms and biases
  loraplus     lora with LoRA+ as Axolotl builds it: PEFT's create_loraplus_optimizer (lora_B at
               LORAPLUS_RATIO x lr) with the Trainer's own optimizer kwargs (lr, betas, eps; no
               weight decay reaches it, so every group's is PEFT's loraplus_weight_decay, 0)
  lr_groups    full_untied with Axolotl's optimizer groups (embedding_lr_scale 0.5 and two
               lr_groups), the optimizer built as Axolotl's trainer builds it: embed_tokens and
               lm_head without decay at lr x 0.5, decayed tensors holding a group's module at
               that group's lr, the rest as the Trainer splits them; the Trainer logs the lr of
               the first group (the decayed tensors at learning_rate)
  unfrozen_rows
               full_untied with UNFROZEN_ROWS: Axolotl's row ranges, each tensor's rows outside them
               zeroed in its gradient by a hook (the union of its ranges trains)
  unfrozen     full_untied with Axolotl's unfrozen_parameters (UNFROZEN): only the weights a
               pattern matches train (Axolotl's freeze_layers_except: each "." not before "+"
               a literal dot, matched from the name's start); the rest keep no gradient
  epoch_end    full_untied's model on the first 18 rows for 2 epochs: 9 micro-batches an epoch,
               so each epoch ends with a step of one micro-batch (the Trainer counts ceil(9 / 2) =
               5 steps an epoch), and max_steps Axolotl's ceil(18 x 2 / 4) = 9, so the second
               epoch stops before its short step
  logging_3    full_untied with logging_steps 3: the Trainer logs steps 3, 6 and 9 only, each
               with the mean loss of its 3 steps and that step's own grad_norm and lr
  cosine_cycles, restarts_2, polynomial_power, inverse_sqrt_timescale
               full_tied with HF's scheduler arguments (lr_scheduler_kwargs): cosine num_cycles
               1.5, cosine_with_restarts num_cycles 2, polynomial power 2 to lr_end 1e-5,
               inverse_sqrt timescale 3
  cosine_min_lr, cosine_warmup_min_lr, wsd, wsd_stable
               full_tied with HF's cosine_with_min_lr (min_lr 2e-4, num_cycles 0.75),
               cosine_warmup_with_min_lr (min_lr_rate 0.1, warmup_lr_rate 0.3) and
               warmup_stable_decay (4 decay steps to 0.05, cosine warmup, 1-sqrt decay; 3 stable and
               3 linear decay steps, then the floor)
  one_cycle, one_cycle_three_phase, one_cycle_rate_only
               full_tied with Axolotl's one_cycle: torch's OneCycleLR (pct_start the warmup's share,
               cos) over the Trainer's own AdamW, its beta1 cycled; three phases, linear, every
               argument set; cycle_momentum false (the rate alone)
  plateau      full_tied with HF's reduce_lr_on_plateau (factor 0.5, patience 0, threshold 0.1,
               cooldown 1), evaluated at the start and every 2 steps on rows 0-3 two at a time: the
               Trainer steps it at every evaluation but the first
  quadratic_warmup
               full_tied with Axolotl's lr_quadratic_warmup (cosine, warmup 4 steps)
  polynomial, inverse_sqrt
               full_tied with these schedules, transformers' defaults (power 1 down to lr_end
               1e-7; timescale the warmup steps)
  dft          full_untied with Axolotl's DFT loss as the Trainer's compute_loss_func, evaluated
  eaft         full_untied with Axolotl's use_eaft loss as the Trainer's compute_loss_func (eaft_alpha
               0.5, eaft_k 8), evaluated as eval_loss
  pose         full_untied with PoSE (pose_max_context_len 4096, 2 chunks): each row's position_ids
               from Axolotl's add_pose_position_ids with llm_train's draws (io/pose.h) for its
               random.randint, so both sides train on the same positions; the rows sorted by their
               last position id as Axolotl sorts them (the sequential sampler then serves that order)
  eval_batches, eval_drop_last  the same two at a time, in order: batches {0, 1}, {2, 3}, {4}, the
               last dropped with dataloader_drop_last (the Trainer's eval loader drops it too)
  eval_loss    full_untied evaluated every 5 steps on the first 5 rows one at a time
               (per_device_eval_batch_size 1): the Trainer's eval_loss, each batch's mean token
               loss weighted by its rows
  partial_batch
               full_untied on the first 15 rows for 2 epochs without dataloader_drop_last: each
               epoch's last micro-batch holds one row, its step one whole micro-batch besides
  linear_ratio full_tied with the linear schedule and warmup_ratio 0.25 as Axolotl hands it on:
               warmup_steps int(0.25 x 10) = 2 (the Trainer's own ratio would round up to 3)
  qat_untied   full_untied with Axolotl's qat {activation_dtype: int8, weight_dtype: int4,
               group_size: 32}: torchao's quantize_ with Axolotl's QATConfig (every nn.Linear,
               lm_head too, a FakeQuantizedLinear: int8 per-token inputs, int4 weights per group)
  qat_tied_after
               full_tied with that qat and fake_quant_after_n_steps 4: Axolotl's QATCallback turns
               fake quantisation off before step 1 and on again before step 5
  qat_lora     lora (from lora_init) over the qat base, as Axolotl prepares QAT before the adapters
  qat_int4, qat_fp8_int4, qat_fp8_fp8, qat_mxfp4
               Axolotl's other qat schemes ({weight_dtype: int4} on full_tied; {activation_dtype:
               float8_e4m3fn} with weight_dtype int4 or float8_e4m3fn on OUT/untied_pad_row, untied
               with the padding token's zero embedding row drawn, as fp8 inputs turn a zero row NaN;
               {weight_dtype: mxfp4} on full_untied)
  lisa         OUT/deep (untied, 4 layers) with Axolotl's LISA callback (lisa_n_layers 2,
               lisa_step_interval 3): before training and every 3 steps it freezes every decoder
               layer and thaws the ones np.random.seed(global_step); np.random.choice picks; the
               Trainer's AdamW skips what has no gradient, keeping its state and step count
  sparse       OUT/sparse24 (untied's weights with 2 of every 4 of each block linear's row zeroed,
               the smallest in magnitude) with llmcompressor's ConstantPruningModifier as Axolotl's
               LLMCompressorPlugin runs it (targets the example's 're:.*q_proj.weight' ... ):
               masks |w| > 1e-8 at the start of training, w *= mask at each step's end
  fp8          full_untied converted as Axolotl's fp8: true converts it (accelerate's
               convert_model_to_fp8_ao: torchao Float8Linear on every linear but the first and last)
  bfloat16     full_untied's weights rounded to bf16, trained with f32 forward and backward by an
               AdamW keeping bf16 moments and writing each weight back in bf16 (llm_train's
               bfloat16: true on the CPU), its arithmetic first held to torch._fused_adamw_
  lion_32bit, lion_8bit, adamw_8bit, adafactor, ademamix, ademamix_8bit
               full_untied with the Trainer's optim naming bitsandbytes' optimizers (on its CPU
               kernels): Lion with the Adam betas (f32 or 8-bit momentum), 8-bit AdamW and
               AdEMAMix (8-bit with optim_args: beta3, alpha and their warmups), the token
               embedding's state f32 under 8 bits as the Trainer registers it; and transformers'
               Adafactor as the Trainer builds it
  packed       full_untied with Axolotl's sample_packing (sequentially, curriculum_sampling) on the
               rows as a completion dataset gives them (OUT/data_completion.jsonl: every id a
               label): packed by next fit in file order into bins of MICRO_BATCH x SEQUENCE_LEN, a
               bin a micro-batch, as its V2 collator concatenates them (ids, labels, positions
               restarting per example) and without an attention mask, from which transformers
               masks the examples apart by their positions; the labels shift along the whole bin,
               so an example's last token predicts the next one's first id
  group_by_length
               full_untied with HF's group_by_length for 3 epochs: each epoch's permutation from
               torch's global generator (seeded by set_seed, advanced by each DataLoader
               iteration, evaluations' included), grouped by length in megabatches; evaluated at
               the start and every 5 steps on rows 0-8 two at a time, in the eval
               LengthGroupedSampler's order
  shuffled     full_untied in Axolotl's order under its defaults: the rows in HF's
               Dataset.shuffle(seed) order, the last 4 held out, the rest in the Trainer's own
               random order (train_sampling_strategy "random") for 2 epochs, evaluated every 5
               steps two at a time
What the Trainer does here that llm_train must match: AdamW (betas, eps, bias correction,
decoupled decay only on what get_decay_parameter_names keeps: no norm weights), warmup + cosine
from get_scheduler with the lr of the step logged before the scheduler moves, clipping at
max_grad_norm with the norm logged before it, gradient accumulation with the loss summed over
the micro-batches and divided by num_items_in_batch (the step's target count).

Data order (but in `shuffled`): train_sampling_strategy "sequential" (a SequentialSampler, what Axolotl's
curriculum_sampling: true gives), so the Trainer reads data.jsonl in file order; llm_train reads
it in that order with curriculum_sampling: true and shuffle_merged_datasets: false. Examples are
pretokenized rows of input_ids and labels (-100 on a prompt prefix) of different lengths, so the
micro-batches hold different target counts and num_items_in_batch matters; the collator pads
right (pad id 0, labels -100, attention_mask 0).

Run from the repository root (needs torch, transformers, peft, safetensors; torchao for qat; bitsandbytes,
galore-torch, torch-optimi, grokadamw and lomo-optim for optimizers):
  tools/make_hf_trajectory.py [--out test/data/hf_trajectory] [--add unfrozen_rows|qat|qat_schemes|...]
Writes OUT/<model>/ (save_pretrained), OUT/lora_init/ and OUT/dora_init/ (PEFT's initial adapters), OUT/data.jsonl
and OUT/trajectory.json (the settings, the versions and each case's per-step log).
"""
import argparse
import functools
import json
import math
import os
import re
import tempfile

import numpy as np
import peft
import peft.optimizers
import torch
import transformers

STEPS = 10
MICRO_BATCH, ACCUMULATION = 2, 2
EXAMPLES = STEPS * MICRO_BATCH * ACCUMULATION  # one epoch, no partial step
SEQUENCE_LEN = 64
VOCAB = 272  # holds llm_train's byte tokenizer (259 ids); data ids stay below 256
SETTINGS = dict(learning_rate=1e-3, lr_scheduler_type="cosine", warmup_steps=2, weight_decay=0.1,
                max_grad_norm=1.0, adam_beta1=0.9, adam_beta2=0.999, adam_epsilon=1e-8,
                optim="adamw_torch", seed=11)
MODELS = {
    "untied": dict(hidden_size=64, intermediate_size=96, num_hidden_layers=2, num_attention_heads=4,
                   num_key_value_heads=2, tie_word_embeddings=False),
    "tied": dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                 num_key_value_heads=1, tie_word_embeddings=True),
    "deep": dict(hidden_size=32, intermediate_size=64, num_hidden_layers=4, num_attention_heads=4,
                 num_key_value_heads=2, tie_word_embeddings=False),
}
COMMON = dict(vocab_size=VOCAB, max_position_embeddings=128, rms_norm_eps=1e-5, rope_theta=500000.0,
              hidden_act="silu", attention_bias=False, mlp_bias=False, initializer_range=0.05,
              bos_token_id=1, eos_token_id=2, pad_token_id=0)
QAT_GROUP, QAT_AFTER = 32, 4
LISA_LAYERS, LISA_INTERVAL = 2, 3
LORAPLUS_RATIO = 16.0
EMBEDDING_LR_SCALE = 0.5
UNFROZEN = ["^lm_head.weight$", "model.layers.1.mlp.+", "model.layers.0.self_attn.q_proj"]
# Row ranges (Axolotl's "pattern[start:end]"): lm_head's two overlap (merged to rows 100..260),
# embed_tokens from row 250 on; a tensor matched only by patterns without a range trains whole.
UNFROZEN_ROWS = ["^lm_head.weight$[100:200]", "^model.embed_tokens.weight$[250:]", "^lm_head.weight$[150:260]",
                 "model.layers.1.mlp.+"]
LR_GROUPS = [{"name": "attention", "modules": ["self_attn"], "lr": 2e-3},
             {"name": "up", "modules": ["mlp.up_proj"], "lr": 5e-4}]
LORA = dict(r=8, lora_alpha=16, lora_dropout=0.0, bias="none", task_type="CAUSAL_LM",
            target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"])


def make_data(path):
    """EXAMPLES rows of 20 to 64 random ids, the first 2 to len/2 of them a prompt (-100)."""
    g = torch.Generator().manual_seed(5)
    rows = []
    for _ in range(EXAMPLES):
        n = int(torch.randint(20, SEQUENCE_LEN + 1, (1,), generator=g))
        prompt = int(torch.randint(2, n // 2 + 1, (1,), generator=g))
        ids = torch.randint(3, 256, (n,), generator=g).tolist()
        rows.append({"input_ids": ids, "labels": [-100] * prompt + ids[prompt:]})
    with open(path, "w") as f:
        for r in rows:
            f.write(json.dumps(r) + "\n")
    return rows


def collate(rows):
    """Right padding as DataCollatorForSeq2Seq pads: pad id 0, label -100, attention_mask 0."""
    n = max(len(r["input_ids"]) for r in rows)
    def pad(key, value):
        return torch.tensor([r[key] + [value] * (n - len(r[key])) for r in rows])
    mask = torch.tensor([[1] * len(r["input_ids"]) + [0] * (n - len(r["input_ids"])) for r in rows])
    batch = {"input_ids": pad("input_ids", 0), "labels": pad("labels", -100), "attention_mask": mask}
    if "position_ids" in rows[0]:  # PoSE's or packed rows', the padding at 0 as Axolotl pads them
        batch["position_ids"] = pad("position_ids", 0)
        # Packed rows (positions restarting; PoSE's only skip ahead) go without a mask, from which
        # transformers masks the examples apart by their positions. (A key marking them would not
        # reach here: the Trainer drops what the model's forward does not take.)
        if any(0 in r["position_ids"][1:] for r in rows):
            del batch["attention_mask"]
    return batch


def make_model(name, out_dir):
    torch.manual_seed(sum(map(ord, name)))
    config = transformers.LlamaConfig(**MODELS[name], **COMMON)
    model = transformers.LlamaForCausalLM._from_config(config, attn_implementation="eager",
                                                       dtype=torch.float32)
    # Norm weights away from 1, so that decay wrongly applied to them, or a swapped norm, shows.
    with torch.no_grad():
        for pname, p in model.named_parameters():
            if pname.endswith("norm.weight"):
                p.copy_(1.0 + 0.1 * torch.randn_like(p))
    model.save_pretrained(os.path.join(out_dir, name))


def train(model, rows, make_optimizer=None, make_scheduler=None, callbacks=None, eval_rows=None,
          compute_loss_func=None, data_collator=collate, **run):
    """The Trainer's run (max_steps STEPS and logging_steps 1 unless `run` says otherwise), with
    the optimizer make_optimizer(model, args) builds when given, and the schedule
    make_scheduler(optimizer, args) builds (then make_optimizer must be given), evaluating on
    eval_rows when given, with compute_loss_func as the Trainer's loss when given, batching rows by
    data_collator; returns its log (and its eval_loss records) and what it decided about the loss."""
    run = dict(dict(max_steps=STEPS, logging_steps=1, dataloader_drop_last=True, per_device_train_batch_size=MICRO_BATCH,
                    train_sampling_strategy="sequential"), **run)
    if eval_rows is not None:  # Axolotl's builder sets it beside eval_steps
        run.setdefault("eval_on_start", True)
    with tempfile.TemporaryDirectory() as tmp:
        args = transformers.TrainingArguments(
            output_dir=tmp, save_strategy="no", report_to="none", use_cpu=True,
            **dict(dict(SETTINGS, gradient_accumulation_steps=ACCUMULATION), **run))
        optimizer = make_optimizer(model, args) if make_optimizer else None
        optimizers = (optimizer, make_scheduler(optimizer, args) if make_scheduler else None)
        trainer = transformers.Trainer(model=model, args=args, train_dataset=rows, eval_dataset=eval_rows,
                                       data_collator=data_collator, optimizers=optimizers, callbacks=callbacks,
                                       compute_loss_func=compute_loss_func)
        trainer.train()
    steps = [{"step": h["step"], "loss": h["loss"], "grad_norm": h["grad_norm"], "lr": h["learning_rate"]}
             for h in trainer.state.log_history if "loss" in h]
    assert steps, trainer.state.log_history
    decay = trainer.get_decay_parameter_names(trainer.model)
    no_decay = sorted(n for n, p in trainer.model.named_parameters() if p.requires_grad and n not in decay)
    evals = [{"step": h["step"], "eval_loss": h["eval_loss"]} for h in trainer.state.log_history if "eval_loss" in h]
    return {"steps": steps, "model_accepts_loss_kwargs": trainer.model_accepts_loss_kwargs,
            "no_decay": no_decay, **({"evals": evals} if evals else {})}


def axolotl_groups(model, args):
    """AdamW over the parameter groups Axolotl's trainer makes when embedding_lr_scale or
    lr_groups is set: decayed tensors; embed_tokens / lm_head (no decay, lr x scale); the other
    undecayed tensors; then one group per lr_groups entry for the decayed tensors whose name holds
    one of its modules (each module mapped to the last entry that lists it, tried in the order
    modules were first listed)."""
    optimizer_cls, kwargs = transformers.Trainer.get_optimizer_cls_and_kwargs(args, model)
    decayed = set(transformers.Trainer.get_decay_parameter_names(None, model))
    module_group = {}
    for g in LR_GROUPS:
        for m in g["modules"]:
            module_group[m] = g["name"]
    lr = kwargs["lr"]
    groups = {"decay": [], "embeddings": [], "no_decay": [], **{g["name"]: [] for g in LR_GROUPS}}
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        if "embed_tokens" in name or "lm_head" in name:
            groups["embeddings"].append(p)
        elif name in decayed:
            hit = [m for m in module_group if m in name]
            groups[module_group[hit[0]] if hit else "decay"].append(p)
        else:
            groups["no_decay"].append(p)
    params = [{"params": groups["decay"], "weight_decay": args.weight_decay, "lr": lr},
              {"params": groups["embeddings"], "weight_decay": 0.0, "lr": lr * EMBEDDING_LR_SCALE},
              {"params": groups["no_decay"], "weight_decay": 0.0, "lr": lr}]
    params += [{"params": groups[g["name"]], "weight_decay": args.weight_decay, "lr": g["lr"]} for g in LR_GROUPS]
    return optimizer_cls([g for g in params if g["params"]], **kwargs)


def freeze_all_but(model, patterns):
    """Axolotl's freeze_layers_except: a pattern may end in a row range, [i], [a:b], [a:] or [:b];
    a tensor matched by ranged patterns trains only the union of their rows (a gradient hook zeroes
    the others, which weight decay still reaches)."""
    parsed = []
    for p in patterns:
        m = re.match(r"^(.+)\[([0-9]*)(?::([0-9]*))?\]$", p)
        rows = None
        if m:
            p, start, end = m.groups()
            rows = (int(start), int(start) + 1) if end is None and start.isdecimal() else \
                (int(start) if start else 0, int(end) if end else None)
        parsed.append((re.compile(re.sub(r"\.(?!\+)", "\\.", p)), rows))
    for name, p in model.named_parameters():
        matched = [rows for c, rows in parsed if c.match(name)]
        p.requires_grad = bool(matched)
        ranges = sorted((a, len(p) if b is None else b) for a, b in (r for r in matched if r is not None))
        if not ranges:
            continue
        keep = torch.zeros(len(p), dtype=torch.bool)
        for a, b in ranges:
            keep[a:b] = True
        p.register_hook(lambda g, keep=keep: g * keep.view(-1, *([1] * (g.dim() - 1))).to(g.dtype))
    return model


def unfrozen_rows_cases(out, rows):
    case = train(freeze_all_but(load(out, "untied"), UNFROZEN_ROWS), rows)
    case.update(unfrozen_parameters=UNFROZEN_ROWS)
    return {"unfrozen_rows": case}


def prepare_qat(model):
    """Axolotl's prepare_model_for_qat for {activation_dtype: int8, weight_dtype: int4, group_size}:
    its QATConfig of torchao fake quantisers on every nn.Linear."""
    from torchao.quantization import quantize_
    from torchao.quantization.qat import QATConfig
    from torchao.quantization.qat.fake_quantize_config import Int4WeightFakeQuantizeConfig, IntxFakeQuantizeConfig
    weight = Int4WeightFakeQuantizeConfig(group_size=QAT_GROUP, activation_dtype=torch.bfloat16)
    activation = IntxFakeQuantizeConfig(dtype=torch.int8, granularity="per_token", is_symmetric=False)
    quantize_(model, QATConfig(weight_config=weight, activation_config=activation))
    return model


class QatCallback(transformers.TrainerCallback):
    """Axolotl's QATCallback: fake quantisation off before the first step, on again before the
    step whose global_step is fake_quant_after_n_steps."""
    def __init__(self, after):
        self.after = after

    def on_step_begin(self, args, state, control, model=None, **kwargs):
        if state.global_step in (0, self.after):
            for m in model.modules():
                for q in (getattr(m, "activation_fake_quantizer", None), getattr(m, "weight_fake_quantizer", None)):
                    if q is not None:
                        q.enabled = state.global_step == self.after


def qat_cases(out, rows):
    import torchao
    qat = dict(group_size=QAT_GROUP, torchao=torchao.__version__)
    cases = {"qat_untied": train(prepare_qat(load(out, "untied")), rows),
             "qat_tied_after": train(prepare_qat(load(out, "tied")), rows, callbacks=[QatCallback(QAT_AFTER)]),
             "qat_lora": train(peft.PeftModel.from_pretrained(prepare_qat(load(out, "untied")),
                                                              os.path.join(out, "lora_init"), is_trainable=True), rows)}
    for name, case in cases.items():
        case.update(qat=dict(qat, fake_quant_after_n_steps=QAT_AFTER if name == "qat_tied_after" else 0))
    return cases


def adamw(model, args):
    """The Trainer's own AdamW, built beforehand so that a schedule can be given with it."""
    trainer = transformers.Trainer(model=model, args=args)
    return trainer.create_optimizer()


def quadratic_warmup_cosine(optimizer, args):
    """Axolotl's lr_quadratic_warmup schedule: (step / warmup)^2 during warmup, then one cosine
    half-wave to 0."""
    warmup = args.warmup_steps

    def factor(step):
        if step < warmup:
            return (step / max(1, warmup)) ** 2
        progress = (step - warmup) / max(1, args.max_steps - warmup)
        return max(0.0, 0.5 * (1.0 + math.cos(math.pi * progress)))
    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def load(out_dir, name):
    return transformers.LlamaForCausalLM.from_pretrained(os.path.join(out_dir, name), dtype=torch.float32,
                                                         attn_implementation="eager")


def main():
    from hf_trajectory_cases import EXTRA_CASES  # its cases use this module's helpers
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="test/data/hf_trajectory")
    parser.add_argument("--add", choices=sorted(EXTRA_CASES),
                        help="only compute these cases and add them to OUT/trajectory.json")
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    torch.set_num_threads(1)  # one thread's reduction order, the same on any machine
    if args.add:
        path = os.path.join(args.out, "trajectory.json")
        with open(path) as f:
            meta = json.load(f)
        rows = [json.loads(line) for line in open(os.path.join(args.out, "data.jsonl"))]
        meta["cases"].update(EXTRA_CASES[args.add](args.out, rows))
        with open(path, "w") as f:
            json.dump(meta, f, indent=1)
        return
    rows = make_data(os.path.join(args.out, "data.jsonl"))
    for name in MODELS:
        make_model(name, args.out)
    cases = {"full_untied": train(load(args.out, "untied"), rows),
             "full_tied": train(load(args.out, "tied"), rows)}
    torch.manual_seed(3)  # PEFT's kaiming_uniform_ draws A from torch's global generator
    lora_model = peft.get_peft_model(load(args.out, "untied"), peft.LoraConfig(**LORA))
    lora_model.save_pretrained(os.path.join(args.out, "lora_init"))
    cases["lora"] = train(lora_model, rows)

    torch.manual_seed(4)
    dora_model = peft.get_peft_model(load(args.out, "untied"), peft.LoraConfig(**LORA, use_dora=True))
    dora_model.save_pretrained(os.path.join(args.out, "dora_init"))
    cases["dora"] = train(dora_model, rows)

    def loraplus(model, args):  # Axolotl's create_optimizer with loraplus_lr_ratio set
        optimizer_cls, optimizer_kwargs = transformers.Trainer.get_optimizer_cls_and_kwargs(args, model)
        return peft.optimizers.create_loraplus_optimizer(model, optimizer_cls, loraplus_lr_ratio=LORAPLUS_RATIO,
                                                         loraplus_lr_embedding=1e-6, **optimizer_kwargs)
    plus_model = peft.PeftModel.from_pretrained(load(args.out, "untied"), os.path.join(args.out, "lora_init"),
                                                is_trainable=True)
    cases["loraplus"] = train(plus_model, rows, make_optimizer=loraplus)
    cases["loraplus"].update(loraplus_lr_ratio=LORAPLUS_RATIO)
    cases["lr_groups"] = train(load(args.out, "untied"), rows, make_optimizer=axolotl_groups)
    cases["lr_groups"].update(embedding_lr_scale=EMBEDDING_LR_SCALE, lr_groups=LR_GROUPS)
    cases["unfrozen"] = train(freeze_all_but(load(args.out, "untied"), UNFROZEN), rows)
    cases["unfrozen"].update(unfrozen_parameters=UNFROZEN)
    for make in EXTRA_CASES.values():
        cases.update(make(args.out, rows))
    cases["logging_3"] = train(load(args.out, "untied"), rows, logging_steps=3)
    cases["logging_3"].update(logging_steps=3)
    scheduler_kwargs = {"cosine_cycles": ("cosine", {"num_cycles": 1.5}),
                        "restarts_2": ("cosine_with_restarts", {"num_cycles": 2}),
                        "polynomial_power": ("polynomial", {"power": 2.0, "lr_end": 1e-5}),
                        "inverse_sqrt_timescale": ("inverse_sqrt", {"timescale": 3})}
    for name, (schedule, kwargs) in scheduler_kwargs.items():
        cases[name] = train(load(args.out, "tied"), rows, lr_scheduler_type=schedule, lr_scheduler_kwargs=kwargs)
        cases[name].update(lr_scheduler=schedule, lr_scheduler_kwargs=kwargs)
    warmup_4 = dict(warmup_steps=4)
    cases["quadratic_warmup"] = train(load(args.out, "tied"), rows, make_optimizer=adamw,
                                      make_scheduler=quadratic_warmup_cosine, **warmup_4)
    cases["quadratic_warmup"].update(lr_quadratic_warmup=True, **warmup_4)
    for schedule in ("polynomial", "inverse_sqrt"):
        cases[schedule] = train(load(args.out, "tied"), rows, lr_scheduler_type=schedule)
        cases[schedule].update(lr_scheduler=schedule)
    meta = {"versions": {"torch": torch.__version__, "transformers": transformers.__version__,
                         "peft": peft.__version__},
            "settings": dict(SETTINGS, max_steps=STEPS, micro_batch_size=MICRO_BATCH,
                             gradient_accumulation_steps=ACCUMULATION, sequence_len=SEQUENCE_LEN,
                             lora=LORA),
            "cases": cases}
    with open(os.path.join(args.out, "trajectory.json"), "w") as f:
        json.dump(meta, f, indent=1)
    for name, case in cases.items():
        print(name, "accepts loss kwargs:", case["model_accepts_loss_kwargs"])
        for s in case["steps"]:
            print(f"  step {s['step']:2d}  loss {s['loss']:.6f}  grad_norm {s['grad_norm']:.6f}  lr {s['lr']:.6e}")


if __name__ == "__main__":
    main()
