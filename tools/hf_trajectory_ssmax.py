"""SSMax (Axolotl's scaling_softmax), the fixture cases make_hf_trajectory.py --add ssmax computes.

Axolotl 0.19's patch (axolotl.monkeypatch.scaled_softmax_attn) runs on FlexAttention, whose
backward torch 2.11 does not run on the CPU. So the Trainer here trains with transformers' eager
attention carrying Axolotl's score_mod: each score (q k^T x scaling) times s * log(n) + b, n the
query's entry of position_ids.reshape(-1) + 1, at least 2, before the mask. Before training,
that attention is held to Axolotl's own ssmax_flex_attention_forward (forward, GQA, positions
restarting as packed rows have them) within 2e-6.
  ssmax         the untied model, Axolotl's defaults (s 0.43, b 0), rows padded two a micro-batch,
                evaluated at the start and every 5 steps on rows 0-4 one at a time
  ssmax_packed  the tied model, s 0.6 and b 0.1, on the packed case's bins (one a micro-batch,
                positions restarting per example, so n counts within each example)
Needs Axolotl 0.19 (PYTHONPATH may name an unpacked wheel) and a C++ compiler (FlexAttention's
forward compiles on the CPU)."""
import types

import torch
import transformers.models.llama.modeling_llama as modeling_llama
from axolotl.monkeypatch import scaled_softmax_attn
from transformers.models.llama.modeling_llama import repeat_kv

from make_hf_trajectory import ACCUMULATION, MICRO_BATCH, SEQUENCE_LEN, load, train


def eager_with_score_mod(s, b):
    """transformers' eager_attention_forward with Axolotl's SSMax score_mod."""
    def attention(module, query, key, value, attention_mask, scaling, dropout=0.0, **kwargs):
        key = repeat_kv(key, module.num_key_value_groups)
        value = repeat_kv(value, module.num_key_value_groups)
        scores = torch.matmul(query, key.transpose(2, 3)) * scaling
        T = query.shape[-2]
        position_ids = kwargs.get("position_ids")
        n = (position_ids.reshape(-1)[:T] + 1).float() if position_ids is not None else \
            torch.arange(1, T + 1, dtype=torch.float32)
        scores = scores * (s * torch.log(torch.clamp(n, min=2.0)) + b)[:, None]
        if attention_mask is not None:
            scores = scores + attention_mask[:, :, :, : key.shape[-2]]
        probs = torch.softmax(scores, dim=-1, dtype=torch.float32).to(query.dtype)
        return torch.matmul(probs, value).transpose(1, 2).contiguous(), probs
    return attention


def check_against_axolotl(s, b):
    """Axolotl's own FlexAttention forward and the eager one, unmasked, on packed positions (64
    of them: torch 2.11's compiled CPU FlexAttention without a block mask computes garbage at 24)."""
    g = torch.Generator().manual_seed(7)
    q, k, v = (torch.randn(1, h, 64, 16, generator=g) for h in (4, 2, 2))
    positions = torch.tensor([list(range(40)) + list(range(24))])
    module = types.SimpleNamespace(num_key_value_groups=2, training=False)
    torch._dynamo.reset()  # a second compile of it in one process fails in torch 2.11's inductor
    scaled_softmax_attn.patch_scaled_softmax_attention(scaling_factor_init=s, bias=b)
    try:
        theirs, _ = scaled_softmax_attn.ssmax_flex_attention_forward(module, q, k, v, None, scaling=0.25,
                                                                     position_ids=positions)
    finally:
        scaled_softmax_attn.unpatch_scaled_softmax_attention()
    ours, _ = eager_with_score_mod(s, b)(module, q, k, v, None, 0.25, position_ids=positions)
    error = (theirs - ours).abs().max().item()
    assert error < 2e-6, f"SSMax eager attention {error} from Axolotl's"
    return error


def with_ssmax(s, b, run):
    error = check_against_axolotl(s, b)
    original = modeling_llama.eager_attention_forward
    modeling_llama.eager_attention_forward = eager_with_score_mod(s, b)
    try:
        case = run()
    finally:
        modeling_llama.eager_attention_forward = original
    case.update(scaling_softmax_factor=s, scaling_softmax_bias=b, error_vs_axolotl_flex=error)
    return case


def ssmax_cases(out, rows):
    from hf_trajectory_cases import pack  # that module imports this one
    cases = {"ssmax": with_ssmax(0.43, 0.0, lambda: train(
        load(out, "untied"), rows, eval_rows=rows[:5], eval_strategy="steps", eval_steps=5,
        per_device_eval_batch_size=1))}
    cases["ssmax"].update(eval_examples=5, eval_steps=5, eval_batch_size=1)
    full = [{"input_ids": r["input_ids"], "labels": list(r["input_ids"])} for r in rows]
    packed = pack(full, MICRO_BATCH * SEQUENCE_LEN)
    steps = len(packed) // ACCUMULATION
    cases["ssmax_packed"] = with_ssmax(0.6, 0.1, lambda: train(
        load(out, "tied"), packed, per_device_train_batch_size=1, max_steps=steps))
    cases["ssmax_packed"].update(max_steps=steps)
    return cases
