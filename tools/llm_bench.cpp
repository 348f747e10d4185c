// llm_bench: the benchmark harness. Benchmarks print tables (and JSON on request); they never
// gate CI. Subcommands: step (a training step split by kernel), attention (the attention kernels),
// kernel (every other op of a step against its roofline), memory (the memory planner's per-rank
// bytes).
#include <fmt/core.h>

#include <string>

#include "engine/cpu/openmp_wait.h"

namespace llm {
int bench_step(int argc, char** argv);
int bench_attention(int argc, char** argv);
int bench_kernel(int argc, char** argv);
int bench_memory(int argc, char** argv);
}

int main(int argc, char** argv) {
  llm::use_short_openmp_spins(argv);  // may start the program again, so before anything else
  const std::string usage =
      "usage: llm_bench step [--preset tiny] [--layers N] [--dim N] [--seq 256] [--batch 4]\n"
      "                      [--steps 5] [--recompute 0] [--device cpu|cuda] [--bf16 0|1]\n"
      "                      [--attention eager|flash|mem_efficient|s2|cudnn] [--json FILE]\n"
      "                      [--optimizer adamw_torch|adamw_8bit]\n"
      "                      [--loss-chunk-rows 0]  (the fused lm_head loss's rows per chunk; 0: default)\n"
      "       llm_bench attention [--impl flash,mem_efficient,s2,cudnn,eager] [--seq 256,1024]\n"
      "                      [--head-dim 64,128] [--causal 0,1] [--pass fwd,fwd_bwd] [--batch 1]\n"
      "                      [--heads 16] [--kv-heads 16] [--repeats 5] [--json FILE]\n"
      "                      (s2 runs causal only, groups of seq/4; --seq defaults to\n"
      "                      512,...,16384 on a GPU)\n"
      "       llm_bench kernel [all|matmul,rmsnorm,rope,swiglu,embedding,...] (or --name: the kernels)\n"
      "                      [--preset llama3-1b] [--tokens 4096] [--pass fwd,fwd_bwd]\n"
      "                      [--repeats 5] [--tolerance 0.02] [--check auto|0|1] [--json FILE]\n"
      "                      [--offset 0,1]  (1: inputs off the aligned words, rows \"@+1\":\n"
      "                      the element-wise form of the wide kernels)\n"
      "                      [--loss-chunks 0,1024] (the fused loss's rows per chunk; 0: default)\n"
      "       llm_bench memory [--preset llama3-8b | --config FILE] [--layers N] [--dim N]\n"
      "                      [--seq 2048] [--micro-batch 1]\n"
      "                      [--accumulation 1] [--ranks 1] [--zero 0|1|2|3] [--recompute 0|N]\n"
      "                      [--optimizer adamw_torch|adamw_8bit] [--bf16 1] [--attention flash]\n"
      "                      [--adapter lora|qlora] [--lora-r 16]   (adapters on every linear)\n"
      "                      [--offload 0|1] (ZeRO-3 adapter runs: frozen slices in host memory)\n"
      "                      [--cpu 0|1]     (the device is the host: start-up's build counts)\n"
      "                      [--gpu-gib 80]   (--config: the model and keys of a config file)\n";
  if (argc < 2 || std::string(argv[1]) == "--help") {
    fmt::print("{}", usage);
    return argc < 2 ? 2 : 0;
  }
  try {
    if (std::string(argv[1]) == "step") return llm::bench_step(argc, argv);
    if (std::string(argv[1]) == "attention") return llm::bench_attention(argc, argv);
    if (std::string(argv[1]) == "kernel") return llm::bench_kernel(argc, argv);
    if (std::string(argv[1]) == "memory") return llm::bench_memory(argc, argv);
    fmt::print(stderr, "llm_bench: unknown benchmark '{}'\n{}", argv[1], usage);
  } catch (const std::exception& e) {
    fmt::print(stderr, "llm_bench: {}\n", e.what());
  }
  return 2;
}
