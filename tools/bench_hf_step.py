#!/usr/bin/env python3
"""Times one HF LlamaForCausalLM training step (bf16, sdpa attention, fused AdamW) at the shape
`llm_bench step` uses, for the side-by-side table in bench/results/. Needs torch and
transformers (installed on the GPU machine, not here); weights are random: no download.

usage: tools/bench_hf_step.py [--preset llama3-1b] [--seq 2048] [--batch 1] [--steps 10]
                              [--gradient-checkpointing 0|1]
"""
import argparse
import time

PRESETS = {  # the same shapes as model/llama_config.cpp
    "llama3-1b": dict(hidden_size=2048, intermediate_size=8192, num_hidden_layers=16,
                      num_attention_heads=32, num_key_value_heads=8, tie_word_embeddings=True,
                      rope_scaling={"rope_type": "llama3", "factor": 32.0, "low_freq_factor": 1.0,
                                    "high_freq_factor": 4.0,
                                    "original_max_position_embeddings": 8192}),
    "llama3-8b": dict(hidden_size=4096, intermediate_size=14336, num_hidden_layers=32,
                      num_attention_heads=32, num_key_value_heads=8, tie_word_embeddings=False,
                      rope_scaling={"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                                    "high_freq_factor": 4.0,
                                    "original_max_position_embeddings": 8192}),
}
H100_BF16_DENSE = 989e12


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="llama3-1b", choices=sorted(PRESETS))
    parser.add_argument("--seq", type=int, default=2048)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--gradient-checkpointing", type=int, default=0)
    args = parser.parse_args()

    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(vocab_size=128256, rope_theta=500000.0, rms_norm_eps=1e-5,
                         max_position_embeddings=131072, attn_implementation="sdpa",
                         **PRESETS[args.preset])
    model = LlamaForCausalLM(config).to(device="cuda", dtype=torch.bfloat16)
    if args.gradient_checkpointing:
        model.gradient_checkpointing_enable()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=True)
    ids = torch.randint(0, config.vocab_size, (args.batch, args.seq), device="cuda")

    def step():
        loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    step()  # warm-up
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    for _ in range(args.steps):
        step()
    torch.cuda.synchronize()
    seconds = (time.perf_counter() - start) / args.steps
    params = sum(p.numel() for p in model.parameters())
    flops = (6 * params + 12 * config.num_hidden_layers * config.hidden_size * args.seq) \
        * args.batch * args.seq
    print(f"hf step: {args.preset}, seq {args.seq}, batch {args.batch}, bf16, sdpa, fused AdamW, "
          f"gradient_checkpointing {args.gradient_checkpointing}")
    print(f"step {seconds * 1e3:.2f} ms, tokens/s {args.batch * args.seq / seconds:.0f}, "
          f"MFU {100 * flops / seconds / H100_BF16_DENSE:.1f}% of 989, "
          f"peak memory {torch.cuda.max_memory_allocated() / 2**20:.1f} MiB")


if __name__ == "__main__":
    main()
