// GPU (ctest label gpu): the small test model trained 50 steps on the GPU tracks the CPU's loss
// curve (f32 within 1e-3 relative, bf16 within 5e-2), DPO's, KTO's and SimPO's 20 steps too (and
// QLoRA's, qat's, fp8's and ReLoRA's, and the optimizers' with kernels of their own), also at
// head_dim 64 with flash attention,
// where the tensor-core attention kernels run (the variant chosen on the device, then v3 and v2 by
// LLM_ATTENTION_KERNEL); two GPU runs with the same seed give identical losses. Without a CUDA
// device it says so and exits 77 (skipped).
#define DOCTEST_CONFIG_IMPLEMENT
#include <cmath>
#include <cstdlib>
#include <cstdio>
#include <regex>
#include <string>

#include "cuda/device_allocator.h"
#include "test/train_fixture.h"

using namespace llm::testing;

namespace {
std::vector<double> losses(const std::string& metrics) {
  std::vector<double> out;
  for (const std::string& line : train_records(metrics)) {
    std::smatch m;
    REQUIRE(std::regex_search(line, m, std::regex("\"loss\": ([0-9.eE+-]+)")));
    out.push_back(std::stod(m[1]));
  }
  return out;
}

// `overrides`: command-line keys after the config (e.g. " --hidden_size 128").
std::vector<double> train(const std::string& name, const std::string& device, const std::string& bf16,
                          const std::string& overrides = "") {
  Workspace ws(name);
  Run r = run_train(ws.config("max_steps: 50\ndevice: " + device + "\nbf16: " + bf16 + "\n") + overrides);
  REQUIRE_MESSAGE(r.exit_code == 0, r.output);
  return losses(ws.out("metrics.jsonl"));
}

// One verdict per run: each of the first `per_step` steps within rel (relative) plus abs (nats)
// of the CPU's loss, the later ones by their means over windows of 10 steps (where a curve has
// reached memorisation, single batches' losses jump by chance); the worst step (a window's first)
// and both curves are printed when one is not.
void check_tracks(const std::vector<double>& gpu, const std::vector<double>& cpu, double rel,
                  double abs = 0.0, size_t per_step = 50) {
  REQUIRE(gpu.size() == cpu.size());
  REQUIRE(gpu.size() == 50);
  double worst = 0.0;  // the largest |gpu - cpu| / (rel |cpu| + abs): 1 is the limit
  size_t worst_step = 0;
  std::string curves;
  for (size_t i = 0; i < gpu.size(); i++)
    curves += " " + std::to_string(i) + ":" + std::to_string(gpu[i]) + "/" + std::to_string(cpu[i]);
  for (size_t i = 0; i < gpu.size();) {
    const size_t n = i < per_step ? 1 : std::min<size_t>(10, gpu.size() - i);
    double g = 0.0, c = 0.0;
    for (size_t j = i; j < i + n; j++) g += gpu[j] / n, c += cpu[j] / n;
    const double r = std::fabs(g - c) / (rel * std::fabs(c) + abs);
    if (r > worst) worst = r, worst_step = i;
    i += n;
  }
  INFO("losses, step:gpu/cpu:" << curves);
  CAPTURE(worst_step);
  CHECK(worst <= 1.0);
}

// 50 steps with `keys` on the CPU (f32), then on the GPU in f32 and in bf16: the GPU's losses
// track the CPU's within f32_rel and 5e-2 (relative). Workspaces gpu_<name>_cpu, _f32, _bf16.
void check_gpu_tracks_cpu(const std::string& name, const std::string& keys, double f32_rel) {
  const std::vector<double> cpu = train("gpu_" + name + "_cpu", "cpu", "false", keys);
  check_tracks(train("gpu_" + name + "_f32", "cuda", "false", keys), cpu, f32_rel);
  check_tracks(train("gpu_" + name + "_bf16", "cuda", "true", keys), cpu, 5e-2);
}
}  // namespace

TEST_CASE("50 steps on the GPU track the CPU: f32 within 1e-3, bf16 within 5e-2 (relative)") {
  check_gpu_tracks_cpu("ref", "", 1e-3);
}

// The test model's head_dim is 8, which the tensor-core kernels do not take; these keys make it 64.
// This wider model memorises the corpus: from 5.57 nats to 0.1-0.3 by step 50. On an H200 its
// bf16 curves met the f32 CPU's within 1e-4 early and within 0.09 nats late, which near 0.1 nats
// is 43% relative (bench/results/2026-11-29-gpu-bringup.md); so 5e-2 relative plus 5e-2 nats. In
// the next run (2026-11-30) the CPU's step 46 alone jumped to 0.25 nats where all three variants
// gave 0.10 (its neighbours: 0.11-0.15): past step 20 the steps are compared in 10-step means.
TEST_CASE("flash attention at head_dim 64 on the tensor cores: each variant tracks the CPU in bf16") {
  const std::string head_dim_64 = " --hidden_size 128 --intermediate_size 256 --num_attention_heads 2"
                                  " --num_key_value_heads 1 --flash_attention true";
  std::vector<double> cpu = train("gpu_flash_cpu", "cpu", "false", head_dim_64);
  check_tracks(train("gpu_flash_chosen", "cuda", "true", head_dim_64), cpu, 5e-2, 5e-2, 20);
  for (const char* variant : {"v3", "v2"}) {
    setenv("LLM_ATTENTION_KERNEL", variant, 1);  // llm_train inherits it
    check_tracks(train(std::string("gpu_flash_") + variant, "cuda", "true", head_dim_64), cpu, 5e-2, 5e-2,
                 20);
  }
  unsetenv("LLM_ATTENTION_KERNEL");
}

// gradient_checkpointing: offload moves each segment's input to host memory until backward: the
// same losses, bit for bit, as recompute on the device.
TEST_CASE("gradient_checkpointing: offload gives recompute's losses on the GPU") {
  CHECK(train("gpu_offload", "cuda", "true", " --gradient_checkpointing offload") ==
        train("gpu_recompute", "cuda", "true", " --gradient_checkpointing true"));
}

TEST_CASE("two GPU runs with the same seed give identical losses") {
  CHECK(train("gpu_det_a", "cuda", "true") == train("gpu_det_b", "cuda", "true"));
}

// adapter: qlora. The NF4 base is quantised on the host and moved to the GPU as codes; its linears
// dequantise on the device (cuda/cuda_nf4.cu) and run cuBLASLt. At lr 0.01 the curve is nearly
// flat and noisy: on an H200 the f32 losses equalled the CPU's to 7 digits through step 12, then
// summation-order differences grew about 3x a step to 6.1e-3 relative, so f32 gets 1e-2.
TEST_CASE("QLoRA: 50 steps on the GPU track the CPU: f32 within 1e-2, bf16 within 5e-2 (relative)") {
  const std::string qlora = " --adapter qlora --load_in_4bit true --lora_r 4 --lora_target_linear true"
                            " --learning_rate 0.01";
  check_gpu_tracks_cpu("qlora", qlora, 1e-2);
}

// rl: dpo / kto / simpo / orpo: the per-sequence log-likelihood op (its CUDA scale_rows and
// recomputed lm_head chunks), the reference log-likelihoods and the pair (row) losses on the GPU
// track the CPU's over 20 steps; "reward" (reward_model: true): the score head on the pooled rows;
// "prm" (process_reward_model: true): the token classifier's loss over the steps' last tokens.
std::vector<double> train_rl(const std::string& rl, const std::string& name, const std::string& device,
                             const std::string& bf16) {
  Workspace ws(name);
  std::string rows;
  for (int i = 0; i < 64; i++) {
    const std::string prompt = std::to_string(i) + " plus 1 is";
    if (rl == "kto")
      rows += "{\"prompt\": \"" + prompt + "\", \"completion\": \"" + std::to_string(i + 1 + 2 * (i % 3 == 0)) +
              "\", \"label\": " + (i % 3 == 0 ? "false" : "true") + "}\n";
    else if (rl == "prm")  // stepwise_supervised
      rows += "{\"prompt\": \"" + prompt + "\", \"completions\": [\"" + std::to_string(i) + " + 1\", \"= " +
              std::to_string(i + 1 + i % 3) + "\"], \"labels\": [true, " + (i % 3 ? "false" : "true") + "]}\n";
    else if (rl == "reward")  // bradley_terry.chat_template
      rows += "{\"input\": \"" + prompt + "\", \"chosen\": \"" + std::to_string(i + 1) + "\", \"rejected\": \"" +
              std::to_string(i + 3) + " or so\"}\n";
    else if (rl == "orpo")  // chat_template.argilla: two conversations
      rows += "{\"chosen\": [{\"role\": \"user\", \"content\": \"" + prompt + "\"}, {\"role\": \"assistant\", \"content\": \"" +
              std::to_string(i + 1) + "\"}], \"rejected\": [{\"role\": \"user\", \"content\": \"" + prompt +
              "\"}, {\"role\": \"assistant\", \"content\": \"" + std::to_string(i + 3) + " or so\"}]}\n";
    else
      rows += "{\"prompt\": \"" + prompt + "\", \"chosen\": \"" + std::to_string(i + 1) + "\", \"rejected\": \"" +
              std::to_string(i + 3) + " or so\"}\n";
  }
  write_file((ws.dir / "rows.jsonl").string(), rows);
  const std::string config = (ws.dir / "rl.yaml").string();
  // A reward model's conversations under a template of plain text (the byte tokenizer has no markers).
  const std::string reward = "\n    type: bradley_terry.chat_template\nchat_template: jinja\n"
                             "chat_template_jinja: \"{% for m in messages %}{{ m.role }}: {{ m.content }}\\n{% endfor %}\"\n";
  const std::string trainer = rl == "reward" ? "reward_model: true" : rl == "prm" ? "process_reward_model: true" : "rl: " + rl;
  write_file(config, kSmallModel + trainer + "\ndatasets:\n  - path: " + (ws.dir / "rows.jsonl").string() +
                         (rl == "orpo"     ? "\n    type: chat_template.argilla\nchat_template: chatml\n"
                          : rl == "reward" ? reward
                          : rl == "prm"    ? "\n    type: stepwise_supervised\n"
                                           : "\n    type: chatml.prompt_pairs\n") +
                         // chatml's markers are spelt out in the byte-level tokens: 256, as test_rl
                         "sequence_len: 256\n"
                         "micro_batch_size: 2\n"
                         "gradient_accumulation_steps: 2\nmax_steps: 20\nlearning_rate: 0.003\nlogging_steps: 1\n"
                         "val_set_size: 0\nseed: 7\noverwrite_output_dir: true\noutput_dir: " + ws.out() +
                         "\ndevice: " + device + "\nbf16: " + bf16 + "\n");
  Run r = run_train(config);
  REQUIRE_MESSAGE(r.exit_code == 0, r.output);
  return losses(ws.out("metrics.jsonl"));
}

TEST_CASE("rl: dpo, kto, simpo and orpo, reward_model and process_reward_model: 20 steps on the GPU track the CPU: "
          "f32 within 1e-3, bf16 within 5e-2 (relative)") {
  for (const std::string rl : {"dpo", "kto", "simpo", "orpo", "reward", "prm"}) {
    CAPTURE(rl);
    const std::vector<double> cpu = train_rl(rl, "gpu_" + rl + "_cpu", "cpu", "false");
    REQUIRE(cpu.size() == 20);
    for (const auto& [bf16, rel] : {std::pair<std::string, double>{"false", 1e-3}, {"true", 5e-2}}) {
      CAPTURE(bf16);
      const std::vector<double> gpu = train_rl(rl, "gpu_" + rl + "_" + bf16, "cuda", bf16);
      REQUIRE(gpu.size() == cpu.size());
      for (size_t i = 0; i < gpu.size(); i++) CHECK(std::fabs(gpu[i] - cpu[i]) <= rel * std::fabs(cpu[i]));
    }
  }
}

int main(int argc, char** argv) {
  if (llm::cuda_device_count() == 0) {
    std::printf("skipped: no CUDA device visible\n");
    return 77;
  }
  return doctest::Context(argc, argv).run();
}

// qat: fake quantisation (cuda/cuda_fake_quantize.cu) on every linear. Rounding to levels makes
// two f32 runs that differ in summation order part by whole levels now and then, so f32 tracks the
// CPU within 2e-2 here. At the fixture's learning rate (3e-3) the quantised curves amplify any
// such difference: changing the rate by one part in a million moved the CPU's own curve by 1.7e-2
// by step 50 (int8 / int4; fp8: 5e-3; the other schemes 4e-3 to 8e-3), and an H200 parted from it
// by 2.07e-2 (2026-12-04). At 1e-3 that change moves them by 1.8e-3 or less: kQuantisedLr.
const std::string kQuantisedLr = " --learning_rate 1e-3";
TEST_CASE("qat: 50 steps on the GPU track the CPU: f32 within 2e-2, bf16 within 5e-2 (relative)") {
  const std::string qat = " --qat '{activation_dtype: int8, weight_dtype: int4, group_size: 32}'";
  check_gpu_tracks_cpu("qat", qat + kQuantisedLr, 2e-2);
}

// qat's fp8 schemes (e4m3 rows of inputs and weights; int4 groups after e4m3 rows), mxfp4
// (blocks of 32) and Axolotl's ternary: the same rounding to levels as above, with the same bounds.
TEST_CASE("qat fp8 / int4, fp8 / fp8, mxfp4 and ternary: 50 steps on the GPU track the CPU") {
  check_gpu_tracks_cpu("qat_fp8_int4",
                       " --qat '{activation_dtype: float8_e4m3fn, weight_dtype: int4, group_size: 32}'" + kQuantisedLr,
                       2e-2);
  check_gpu_tracks_cpu("qat_fp8_fp8", " --qat '{activation_dtype: float8_e4m3fn, weight_dtype: float8_e4m3fn}'" + kQuantisedLr,
                       2e-2);
  check_gpu_tracks_cpu("qat_mxfp4", " --qat '{weight_dtype: mxfp4}'" + kQuantisedLr, 2e-2);
  check_gpu_tracks_cpu("qat_ternary", " --qat '{weight_dtype: ternary, activation_dtype: int8}'" + kQuantisedLr, 2e-2);
}

// fp8: every block linear but block 0's q_proj on fp8-cast operands (cuda/cuda_fake_quantize.cu's
// device-side amax and cast); rounding to fp8 codes parts two f32 runs now and then, as for qat
// (an H200 parted by 2.7e-2 at 3e-3 on 2026-12-04; a 1e-6 change of that rate alone, 5e-3).
TEST_CASE("fp8: 50 steps on the GPU track the CPU: f32 within 1e-2, bf16 within 5e-2 (relative)") {
  check_gpu_tracks_cpu("fp8", " --fp8 true" + kQuantisedLr, 1e-2);
}

// ReLoRA (train/relora.h): its merges into the GPU's base (bf16 there with bf16), redraws and
// moment pruning (a host round trip) every 10 steps, under the jagged schedule. The magnitude
// pruning's threshold moves with the last bits of the moments, so f32 gets qat's 1e-2.
TEST_CASE("ReLoRA: 50 steps on the GPU track the CPU: f32 within 1e-2, bf16 within 5e-2 (relative)") {
  const std::string relora = " --adapter lora --lora_target_linear true --relora true --jagged_restart_steps 10"
                             " --jagged_restart_warmup_steps 2";
  check_gpu_tracks_cpu("relora", relora, 1e-2);
}

// PEFT's trainable token rows beside LoRA: replace_rows' copies of the tied table (bf16 from the
// frozen bf16 embedding with bf16) and their gradient rows gathered back.
TEST_CASE("trainable token rows: 50 steps on the GPU track the CPU: f32 within 1e-3, bf16 within 5e-2 (relative)") {
  check_gpu_tracks_cpu("token_rows", " --adapter lora --lora_target_linear true --peft_trainable_token_indices '[5, 9, 40]'",
                       1e-3);
}

// EAFT (use_eaft): the top-k entropy weights from the GPU's chunk logits (bf16 ones with bf16),
// scaling the loss and the gradient rows.
TEST_CASE("use_eaft: 50 steps on the GPU track the CPU: f32 within 1e-3, bf16 within 5e-2 (relative)") {
  check_gpu_tracks_cpu("eaft", " --use_eaft true --eaft_alpha 0.5 --eaft_k 20", 1e-3);
}

// Diffusion (the DiffusionPlugin): its masks are drawn on the host from the seed, so the GPU's
// bidirectional memory-efficient attention and its gathered lm_head rows see the CPU's draws.
TEST_CASE("diffusion: 50 steps on the GPU track the CPU: f32 within 1e-3, bf16 within 5e-2 (relative)") {
  check_gpu_tracks_cpu("diffusion", " --plugins '[axolotl.integrations.diffusion.DiffusionPlugin]' --diffusion '{eps: 0.001}'",
                       1e-3);
}

// bfloat16: bf16 weights and moments; the GPU computes in bf16, the CPU in f32 from the same
// bf16 weights, so bf16 compute's 5e-2 holds.
TEST_CASE("bfloat16: 50 steps on the GPU track the CPU's bfloat16 run within 5e-2 (relative)") {
  const std::vector<double> cpu = train("gpu_bfloat16_cpu", "cpu", "false", " --bfloat16 true");
  check_tracks(train("gpu_bfloat16_cuda", "cuda", "false", " --bfloat16 true"), cpu, 5e-2);
}

// The optimizers with CUDA update kernels of their own (Lion's and AdEMAMix's 8-bit blockwise
// state and torchao's, Adafactor's and CAME's factored moments, ADOPT, Schedule-Free's z and its
// switches to x for evaluation) or composed of bf16 GEMMs on the GPU (Muon's Newton-Schulz), and AdamC's decay
// through AdamW's kernel, StableAdamW's per-tensor RMS reduction, LOMO's axpby and AdaLomo's Adafactor kernel in backward, end to end: each tracks the CPU's run
// of the same optimizer. 8-bit codes and Muon's bf16 rounding part two f32 runs by a level now and
// then, as qat's levels do: qat's 2e-2 for f32. CAME and RMSprop at 3e-3 bounce (a 1e-6 change of
// the rate moved the CPU's own curves by 9.8e-2 and 1.6e-2 by step 50; an H200's matched the CPU's
// to 1e-6 for 12 steps, then parted by as much, 2026-12-04): 1e-3, where that change moves them
// by 6.5e-4 and 3.8e-5.
TEST_CASE("optimizers: Lion 8-bit, AdEMAMix 8-bit, Adafactor, CAME, ADOPT, Muon, AdamC, Schedule-Free and torchao's "
          "8- and 4-bit AdamW, torch's RMSprop and StableAdamW on the GPU track the CPU") {
  for (const std::string optimizer : {"lion_8bit", "ademamix_8bit", "adafactor", "came_pytorch", "adopt_adamw", "muon",
                                      "adamc", "schedule_free_adamw", "adamw_torch_8bit", "adamw_torch_4bit", "ao_adamw_fp8",
                                      "rmsprop", "stable_adamw", "grokadamw", "lomo", "adalomo"}) {
    CAPTURE(optimizer);
    const std::string lr = optimizer.find("lion") == 0                              ? " --learning_rate 1e-4"  // Lion's steps are lr whole
                           : optimizer == "came_pytorch" || optimizer == "rmsprop" ? " --learning_rate 1e-3"
                                                                                   : "";
    check_gpu_tracks_cpu("optimizer_" + optimizer, " --optimizer " + optimizer + lr, 2e-2);
  }
}

// GaLore: the projections are cuBLASLt GEMMs on the GPU around the AdamW, 8-bit AdamW and Adafactor
// kernels, the bases from the host's SVD of the downloaded gradient (bases every 5 updates, so the
// state crosses recomputations); layer-wise, each update made in backward as its gradient completes.
// APOLLO: the same GEMMs and AdamW kernel, its channel norms by GEMM and column_dot, its scaling by
// scale_rows / scale_columns, its random bases drawn on the host and uploaded.
TEST_CASE("optimizers: GaLore's AdamW, 8-bit AdamW and Adafactor, APOLLO and Q-GaLore on the GPU track the CPU") {
  for (const std::string optimizer : {"galore_adamw", "galore_adamw_8bit", "galore_adafactor",
                                      "galore_adamw_layerwise --gradient_accumulation_steps 1", "apollo_adamw",
                                      "apollo_adamw_layerwise --gradient_accumulation_steps 1"}) {
    CAPTURE(optimizer);
    check_gpu_tracks_cpu("optimizer_" + optimizer.substr(0, optimizer.find(' ')),
                         " --optimizer " + optimizer + " --optim_target_modules all_linear --optim_args rank=8,update_proj_gap=5",
                         2e-2);
  }
  // Q-GaLore: its 4-bit bases dequantised on the device (a cast, a rank-1 GEMM and scale_rows).
  check_gpu_tracks_cpu("optimizer_q_galore_adamw8bit",
                       " --optimizer q_galore_adamw8bit --optim_target_modules '[proj]' --qgalore_rank 8 "
                       "--qgalore_update_proj_gap 2 --qgalore_proj_group_size 64",
                       2e-2);
}

// DFT (use_dft): each row's target probability from the GPU's chunk logits and lse.
TEST_CASE("use_dft: 50 steps on the GPU track the CPU: f32 within 1e-3, bf16 within 5e-2 (relative)") {
  check_gpu_tracks_cpu("dft", " --use_dft true", 1e-3);
}

// The start-up memory plan (train/memory_plan.cpp) against the CUDA caching allocator's peak since
// start-up (the last step line's "(peak N)"): bf16 casts per use, kept for backward, flash
// attention on the tensor cores (head_dim 64), with and without recompute, bfloat16 and QLoRA.
// Rows fill sequence_len (each line of the corpus is longer), as the plan assumes. cuBLASLt's
// workspace and the CUDA context are outside the allocator and the plan alike.
TEST_CASE("the start-up memory plan is within 10% of the CUDA allocator's peak") {
  const std::string wide = " --hidden_size 512 --intermediate_size 1536 --num_hidden_layers 4 --num_attention_heads 8"
                           " --num_key_value_heads 4 --sequence_len 512 --micro_batch_size 4"
                           " --flash_attention true --max_steps 3 --val_set_size 0";
  for (const char* variant : {" --bf16 true", " --bf16 true --gradient_checkpointing true", " --bfloat16 true",
                              " --bf16 true --adapter qlora --load_in_4bit true --lora_target_linear true"}) {
    Workspace ws("gpu_memory_plan");
    std::string text;
    for (int i = 0; i < 64; i++) {
      text += "line " + std::to_string(i) + ":";
      for (int j = 0; j < 12; j++) text += " the quick brown fox jumps over the lazy dog.";
      text += "\n";
    }
    write_file((ws.dir / "corpus.txt").string(), text);
    Run r = run_train(ws.config("device: cuda\n") + wide + variant);
    REQUIRE_MESSAGE(r.exit_code == 0, r.output);
    std::smatch plan;
    REQUIRE(std::regex_search(r.output, plan, std::regex("peak per rank\\s+([0-9.]+) (MiB|GiB)")));
    const double planned = std::stod(plan[1]) * (plan[2] == "GiB" ? 1024 : 1);
    double measured = 0;  // MiB, the last step line's
    const std::regex peak("\\(peak ([0-9.]+)");
    for (auto it = std::sregex_iterator(r.output.begin(), r.output.end(), peak); it != std::sregex_iterator(); ++it)
      measured = std::stod((*it)[1]);
    MESSAGE(std::string(variant) << ": planned " << planned << " MiB, the allocator's peak " << measured << " MiB");
    CHECK_MESSAGE(std::fabs(planned - measured) <= 0.10 * measured, r.output);
  }
}
