#!/usr/bin/env python3
"""Times one HF LlamaForCausalLM training step (forward, loss, backward, clip_grad_norm_, fused
AdamW) at the shape `llm_bench step` uses, for the side-by-side tables in bench/results/. On a
GPU: bf16, sdpa attention; with --amp 1 PyTorch's mixed precision instead (f32 weights,
gradients and AdamW state, the forward under bf16 autocast: the state DESIGN.md has ours keep).
On the CPU (`--device cpu`): f32 eager PyTorch with --threads threads, the comparison for our
CPU backend. Needs torch and transformers; weights are random: no download.

usage: tools/bench_hf_step.py [--preset llama3-1b] [--layers N] [--dim N] [--seq 2048]
                              [--batch 1] [--steps 10] [--gradient-checkpointing 0|1]
                              [--device cuda|cpu] [--threads 2] [--attention sdpa|eager]
                              [--amp 0|1]
"""
import argparse
import contextlib
import time

LLAMA3_ROPE_X32 = {"rope_type": "llama3", "factor": 32.0, "low_freq_factor": 1.0,
                   "high_freq_factor": 4.0, "original_max_position_embeddings": 8192}
PRESETS = {  # the same shapes as model/llama_config.cpp
    "tiny": dict(hidden_size=256, intermediate_size=768, num_hidden_layers=4,
                 num_attention_heads=8, num_key_value_heads=4, tie_word_embeddings=True,
                 vocab_size=259, max_position_embeddings=2048, rope_theta=500000.0),
    "llama3-1b": dict(hidden_size=2048, intermediate_size=8192, num_hidden_layers=16,
                      num_attention_heads=32, num_key_value_heads=8, tie_word_embeddings=True,
                      rope_scaling=LLAMA3_ROPE_X32),
    "llama3-8b": dict(hidden_size=4096, intermediate_size=14336, num_hidden_layers=32,
                      num_attention_heads=32, num_key_value_heads=8, tie_word_embeddings=False,
                      rope_scaling=dict(LLAMA3_ROPE_X32, factor=8.0)),
}
LLAMA3_COMMON = dict(vocab_size=128256, rope_theta=500000.0, max_position_embeddings=131072)
H100_BF16_DENSE = 989e12


def model_config(args):
    shape = dict(LLAMA3_COMMON, **PRESETS[args.preset]) if args.preset != "tiny" \
        else dict(PRESETS["tiny"])
    if args.layers > 0:
        shape["num_hidden_layers"] = args.layers
    if args.dim > 0 and args.dim != shape["hidden_size"]:  # as llm_bench's --dim: MLP 3 x dim
        shape["hidden_size"], shape["intermediate_size"] = args.dim, 3 * args.dim
    return shape


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="llama3-1b", choices=sorted(PRESETS))
    parser.add_argument("--layers", type=int, default=0)
    parser.add_argument("--dim", type=int, default=0)
    parser.add_argument("--seq", type=int, default=2048)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--gradient-checkpointing", type=int, default=0)
    parser.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--attention", default="sdpa", choices=["sdpa", "eager"])
    parser.add_argument("--amp", type=int, default=0, choices=[0, 1])
    args = parser.parse_args()
    if args.amp and args.device != "cuda":
        parser.error("--amp 1 is the GPU's mixed precision; the CPU comparison runs in f32")

    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    gpu = args.device == "cuda"
    if not gpu:
        torch.set_num_threads(args.threads)
    dtype = torch.bfloat16 if gpu and not args.amp else torch.float32
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if args.amp else contextlib.nullcontext()
    sync = torch.cuda.synchronize if gpu else (lambda: None)
    config = LlamaConfig(rms_norm_eps=1e-5, attn_implementation=args.attention, **model_config(args))
    model = LlamaForCausalLM(config).to(device=args.device, dtype=dtype)
    if args.gradient_checkpointing:
        model.gradient_checkpointing_enable()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=True)
    ids = torch.randint(0, config.vocab_size, (args.batch, args.seq), device=args.device)

    def step():
        with autocast:
            loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    step()  # warm-up
    sync()
    if gpu:
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    for _ in range(args.steps):
        step()
    sync()
    seconds = (time.perf_counter() - start) / args.steps
    # As llm_bench step counts (model/llama.h): every parameter but an untied input embedding,
    # a lookup (model.parameters() lists a tied table once, as lm_head's weight).
    params = sum(p.numel() for p in model.parameters())
    if not config.tie_word_embeddings:
        params -= model.get_input_embeddings().weight.numel()
    flops = (6 * params + 12 * config.num_hidden_layers * config.hidden_size * args.seq) \
        * args.batch * args.seq
    where = ("amp (f32 master, bf16 autocast)" if args.amp else "bf16") if gpu \
        else f"f32 cpu, {torch.get_num_threads()} threads"
    print(f"hf step: {args.preset}, {config.num_hidden_layers} layers, dim {config.hidden_size}, "
          f"seq {args.seq}, batch {args.batch}, {params / 1e6:.1f}M parameters, {where}, "
          f"{args.attention}, fused AdamW, gradient_checkpointing {args.gradient_checkpointing}, "
          f"torch {torch.__version__}")
    line = f"step {seconds * 1e3:.2f} ms, tokens/s {args.batch * args.seq / seconds:.0f}"
    if gpu:
        line += (f", MFU {100 * flops / seconds / H100_BF16_DENSE:.1f}% of 989, "
                 f"peak memory {torch.cuda.max_memory_allocated() / 2**20:.1f} MiB "
                 f"(reserved {torch.cuda.max_memory_reserved() / 2**20:.1f})")  # as llm_bench step prints it
    else:
        line += f", model TFLOP/s {flops / seconds / 1e12:.3f}"
    print(line)


if __name__ == "__main__":
    main()
