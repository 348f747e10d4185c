// defines: llm_bench memory — the memory planner's per-rank bytes by category for a model (a
// preset, or a config file's model and keys) at a world size, ZeRO stage and optimizer, and
// whether the peak fits a GPU's memory (train/memory_plan.h).
#include <fmt/core.h>

#include <algorithm>

#include "engine/optimizer.h"
#include "tools/bench_args.h"
#include "train/config.h"
#include "train/memory_plan.h"

namespace llm {

int bench_memory(int argc, char** argv) {
  BenchArgs args(argc, argv, 2,
                 {{"preset", "llama3-8b"}, {"layers", "0"}, {"dim", "0"}, {"config", ""}, {"seq", "2048"}, {"micro-batch", "1"},
                  {"accumulation", "1"}, {"ranks", "1"}, {"zero", "0"}, {"recompute", "0"},
                  {"optimizer", "adamw_torch"}, {"bf16", "1"}, {"attention", "flash"}, {"gpu-gib", "80"},
                  {"adapter", ""}, {"lora-r", "16"}, {"offload", "0"}, {"cpu", "0"}, {"bfloat16", "0"}});
  const bool bf16 = args.num("bf16") != 0, on_cpu = args.num("cpu") != 0;
  MemoryPlanInput in;
  std::string what, optimizer;
  if (!args.str("config").empty()) {
    const TrainConfig c = load_config(args.str("config"));
    in = memory_plan_input(c, args.num("ranks"), bf16, on_cpu);
    what = c.source;
    optimizer = c.optimizer;
  } else {  // the keys a config would give, from the options
    TrainConfig c;
    c.model = bench_model(args);
    c.data.sequence_len = args.num("seq");
    c.micro_batch_size = args.num("micro-batch");
    c.gradient_accumulation_steps = args.num("accumulation");
    c.zero_stage = args.num("zero");
    c.gradient_checkpointing = args.num("recompute") > 0;
    c.gradient_checkpointing_every_n_layers = std::max<int64_t>(args.num("recompute"), 1);
    c.optimizer = args.str("optimizer");
    c.attention = attention_named(args.str("attention"));
    c.adapter = args.str("adapter");  // as Axolotl's QLoRA examples: every linear layer
    if (!c.adapter.empty() && c.adapter != "lora" && c.adapter != "qlora")
      throw std::invalid_argument("--adapter expects lora or qlora, got '" + c.adapter + "'");
    c.load_in_4bit = c.adapter == "qlora";
    c.lora.r = args.num("lora-r");
    c.lora.target_linear = true;
    c.offload_params = args.num("offload") != 0;  // FSDP's offload_params (adapter, ZeRO-3)
    c.bfloat16 = args.num("bfloat16") != 0;         // bf16 weights and moments, no master copy
    if (!c.optimizer_adamw() && c.zero_stage > 0)
      throw std::invalid_argument("--optimizer " + c.optimizer + " is not sharded: --zero 0, as the config key");
    if (c.bfloat16 && (!c.adapter.empty() || c.zero_stage > 0 || c.optimizer_8bit() || !c.optimizer_adamw()))
      throw std::invalid_argument("--bfloat16 1 is full fine-tuning with AdamW's full moments and --zero 0, as the config key");
    in = memory_plan_input(c, args.num("ranks"), bf16, on_cpu);
    optimizer = c.optimizer;
    what = args.str("preset") + (c.adapter.empty() ? "" : ", " + c.adapter + " r " + std::to_string(c.lora.r));
  }
  const MemoryPlan plan = plan_memory(in);
  fmt::print("llm_bench memory: {} | {:.2f}B parameters | seq {} x micro-batch {} x accumulation {} | "
             "{} rank(s), ZeRO {} | {} | {} | recompute {}\n",
             what, in.model.num_parameters() / 1e9, in.sequence_len, in.micro_batch_size,
             in.gradient_accumulation_steps, in.ranks, in.zero_stage,
             "optimizer " + optimizer,
             std::string(in.bf16 ? "bf16" : "f32") + (in.bf16_weights ? " (bfloat16: bf16 weights and moments)" : ""),
             in.recompute_every_n_layers > 0 ? fmt::format("every {} layer(s)", in.recompute_every_n_layers) : "off");
  if (in.zero_stage < 0 || in.zero_stage > 3)
    throw std::invalid_argument("--zero: 0, 1, 2 or 3, got " + std::to_string(in.zero_stage));
  fmt::print("{}", format_memory_plan(plan, args.num("gpu-gib") * 1073741824.0,
                                      fmt::format("per GPU", args.num("gpu-gib"))));
  return 0;
}

}  // namespace llm
