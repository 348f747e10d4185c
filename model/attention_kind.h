// AttentionKind and its table: every place that names an attention implementation (the YAML
// config, the start-up summary, the model's dispatch, llm_bench) reads this one table.
#pragma once

namespace llm {

// Which attention the layers use. S2 evaluates with its groups too, as Axolotl's and LongLoRA's
// patched attention does (it has no training switch); sampling attends through its key/value
// cache (ForwardOptions::attend), full causal.
enum class AttentionKind { eager, flash, mem_efficient, s2, cudnn };

struct AttentionInfo {
  AttentionKind kind;
  const char* config_key;      // the YAML boolean that selects it; nullptr: eager (none set)
  const char* implementation;  // its attn_implementation spelling (HF's where HF has one)
  const char* short_name;      // Axolotl's newer `attention:` key
  const char* bench_name;      // llm_bench step --attention
  const char* label;           // the start-up summary's words
  bool document_masks;         // can mask across packed documents (sample_packing)
};

inline constexpr AttentionInfo kAttentionKinds[] = {
    {AttentionKind::eager, nullptr, "eager", "eager", "eager", "eager", false},
    {AttentionKind::flash, "flash_attention", "flash_attention_2", "flash", "flash",
     "flash (tiled, FlashAttention-2 algorithm)", true},
    {AttentionKind::mem_efficient, "xformers_attention", "xformers", "xformers", "mem_efficient",
     "memory-efficient (xformers_attention)", true},
    {AttentionKind::s2, "s2_attention", "s2", "s2", "s2", "s2 (LongLoRA shifted sparse)", false},
    {AttentionKind::cudnn, "sdp_attention", "sdpa", "sdpa", "cudnn",
     "cuDNN fused attention (sdp_attention)", false},
};

inline const AttentionInfo& attention_info(AttentionKind kind) {
  for (const AttentionInfo& info : kAttentionKinds)
    if (info.kind == kind) return info;
  return kAttentionKinds[0];  // unreachable: every kind has a row
}

}  // namespace llm
