// ReLoRA (Axolotl's relora and its jagged learning-rate restarts): the schedule against Axolotl's
// JaggedLRRestartScheduler, the pruning threshold against torch.quantile, and the runs: restarts
// at their steps, each merging the period's adapters into the base, checkpoints that keep the
// merged base, an exact resume across a restart (two ranks), the merged export, the refusals.
#include <cmath>

#include "engine/lr_schedule.h"
#include "engine/ops.h"
#include "engine/optimizer.h"
#include "io/safetensors.h"
#include "test/lora_fixture.h"
#include "test/train_fixture.h"
#include "train/relora.h"

using namespace llm;
using namespace llm::testing;

// Axolotl 0.19's JaggedLRRestartScheduler(restart 6, warmup 2, anneal 1, min_lr_scale 0.001)
// around transformers' get_cosine_schedule_with_warmup(base 1e-3, warmup 2, 20 steps): the rate of
// each of the 20 updates, as torch 2.15 stepped them (the wrapper's own initial step puts update k
// at the inner schedule's k + 1).
TEST_CASE("jagged restarts: Axolotl's schedule around HF's cosine, update by update") {
  const double axolotl[20] = {0.0005, 0.001, 0.000992403876506104, 0.0009698463103929542, 0.0009330127018922195,
                              8.83022221559489e-07, 0.0004111075993240564, 0.00075, 0.0006710100716628344,
                              0.0005868240888334653, 0.0005, 4.1317591116653487e-07, 0.0001646594591327514,
                              0.0002500000000000001, 0.0001786061951567303, 0.00011697777844051105,
                              6.698729810778065e-05, 3.0153689607045845e-08, 3.8018598086949425e-06, 0.0};
  LrSchedule s;
  s.kind = "cosine", s.base_lr = 1e-3, s.warmup_steps = 2, s.total_steps = 20;
  s.restart_steps = 6, s.restart_warmup = 2, s.restart_anneal = 1, s.restart_min_scale = 0.001;
  for (int k = 0; k < 20; k++) {
    CAPTURE(k);
    CHECK(s.lr(k) == doctest::Approx(axolotl[k]).epsilon(1e-12));
  }
  s.restart_steps = 0;  // off: the cosine itself
  CHECK(s.lr(0) == 0.0);
}

// torch.quantile(|v|, q) in f32 on v_i = ((37 i) mod 101) / 7 - 5 + i / 1000 (1000 values, as
// Python computes them in doubles, then f32), and how many values stay above it.
TEST_CASE("ReLoRA's magnitude pruning: torch.quantile's threshold bit for bit, values at or under it zeroed") {
  std::vector<float> v(1000);
  for (int i = 0; i < 1000; i++) v[i] = static_cast<float>(((i * 37) % 101) / 7.0 - 5.0 + i * 1e-3);
  const std::pair<float, float> quantiles[] = {{0.9f, 0x1.0d3fd6p+3f}, {0.999f, 0x1.43f64ep+3f}, {0.5f, 0x1.ce1224p+1f},
                                               {0.0f, 0x1.c163c4p-10f}, {1.0f, 0x1.4730dcp+3f}, {0.123f, 0x1.c6c894p-1f}};
  for (const auto& [ratio, threshold] : quantiles) {
    CAPTURE(ratio);
    CHECK(magnitude_threshold(v, ratio) == threshold);
  }
  std::vector<float> pruned = v;
  CHECK(prune_moment(pruned, "magnitude", 0.9f, 0) == 900);
  for (size_t i = 0; i < v.size(); i++) CHECK((pruned[i] == 0.0f || pruned[i] == v[i]));
  CHECK(magnitude_threshold({3.0f, -1.0f, 2.0f}, 0.9f) == 0x1.666666p+1f);
  // NaN in, NaN out (torch.quantile's): nothing compares above it, so every value is multiplied by
  // 0 as torch's mask does (a NaN stays NaN, a negative value becomes -0).
  CHECK(std::isnan(magnitude_threshold({3.0f, std::nanf(""), 2.0f}, 0.9f)));
  std::vector<float> broken = {-3.0f, std::nanf(""), 2.0f};
  CHECK(prune_moment(broken, "magnitude", 0.9f, 0) == 2);
  CHECK(std::signbit(broken[0]));
  CHECK(std::isnan(broken[1]));
  // random / reset: each value zeroed with probability ratio, a function of the seed.
  std::vector<float> a = v, b = v;
  const int64_t zeros = prune_moment(a, "random", 0.9f, 11);
  CHECK(zeros > 850);
  CHECK(zeros < 950);
  prune_moment(b, "random", 0.9f, 11);
  CHECK(a == b);
  CHECK(relora_prune_ratio("reset", -1) == 0.999f);
  CHECK(relora_prune_ratio("magnitude", -1) == 0.9f);
  CHECK(relora_prune_ratio("random", 0.5) == 0.5f);
}

namespace {
const std::string kRelora =
    "adapter: lora\nlora_r: 4\nlora_alpha: 8\nlora_target_linear: true\nrelora: true\njagged_restart_steps: 4\n"
    "jagged_restart_warmup_steps: 2\nlearning_rate: 0.01\n";

Tensor read(const std::string& file, const std::string& name) {
  const TensorFile f = read_tensor_file(file);
  const Tensor* t = f.find(name);
  REQUIRE_MESSAGE(t, name);
  return *t;
}

// base + (alpha / r) B A of one linear, from a checkpoint's model.bin.
std::vector<float> merged(const std::string& checkpoint, const std::string& linear) {
  const std::string model = checkpoint + "/model.bin";
  const std::vector<float> w = read(model, linear + ".weight").to_floats();
  const Tensor a = read(model, linear + ".lora_A.weight"), b = read(model, linear + ".lora_B.weight");
  const std::vector<float> av = a.to_floats(), bv = b.to_floats();
  const int64_t r = a.size(0), in = a.size(1), out = b.size(0);
  std::vector<float> result(w);
  for (int64_t o = 0; o < out; o++)
    for (int64_t i = 0; i < in; i++) {
      double sum = 0;
      for (int64_t k = 0; k < r; k++) sum += double(bv[o * r + k]) * av[k * in + i];
      result[o * in + i] += static_cast<float>(2.0 * sum);  // alpha 8 / r 4
    }
  return result;
}

void check_close(const std::vector<float>& got, const std::vector<float>& want) {
  REQUIRE(got.size() == want.size());
  float worst = 0.0f, scale = 0.0f;
  for (size_t i = 0; i < got.size(); i++) {
    worst = std::max(worst, std::fabs(got[i] - want[i]));
    scale = std::max(scale, std::fabs(want[i]));
  }
  CHECK(worst <= 1e-6f * scale);
}
}  // namespace

TEST_CASE("ReLoRA runs: restarts every period, the merged base in checkpoints and export, an exact resume") {
  Workspace straight("relora_straight"), resumed("relora_resumed");
  const std::string cfg = kRelora + "max_steps: 8\nsave_steps: 4\n";
  const std::string out = check_resume_exact(straight, resumed, cfg, nullptr, mpirun(2), 4);
  CHECK(out.find("ReLoRA: restart 1 before step 5: the adapters merged into the base and drawn afresh") != std::string::npos);
  CHECK(out.find("restart 2") == std::string::npos);  // the run ends at step 8: no step follows it
  const std::string q = "model.layers.1.self_attn.q_proj", down = "model.layers.0.mlp.down_proj";
  for (const std::string& linear : {q, down}) {
    CAPTURE(linear);
    // Steps 1-4 trained adapters on the initial base; the restart merged them, so step 8's base is
    // step 4's base + scale B A, and the export is step 8's base + its own adapters.
    check_close(read(straight.out("step_000008/model.bin"), linear + ".weight").to_floats(),
                merged(straight.out("step_000004"), linear));
    const SafetensorsFile exported(straight.out("model.safetensors"));
    check_close(exported.read(linear + ".weight", DType::f32).to_floats(), merged(straight.out("step_000008"), linear));
  }
  CHECK(!fs::exists(straight.out("adapter_config.json")));  // Axolotl saves ReLoRA's merged model only
}

// Axolotl's examples/llama-2/relora.yml is a QLoRA run: its merges add to the last full-weight
// save (the base's own values first), save the sum in fp16, and quantise the layer afresh from it.
TEST_CASE("ReLoRA on a quantised base: merges into the full values, rounds them to fp16, quantises afresh") {
  for (const QuantFormat format : {QuantFormat::nf4, QuantFormat::int8}) {
    CAPTURE(quant_format_name(format));
    LlamaModel model(small_config(), Device::cpu(), 3);
    model.add_lora(lora_config(), 3);
    std::vector<Tensor> base;
    for (int64_t i = 0; i < 2; i++)
      for (int k = 0; k < kNumLinear; k++) base.push_back(model.layer(i).linear(k).clone());
    model.keep_full_linears();
    model.quantize_frozen_linears(format, format == QuantFormat::nf4);
    rng().seed(3);
    randomise_b(model);
    std::vector<Tensor> want;
    for (int64_t i = 0; i < 2; i++)
      for (int k = 0; k < kNumLinear; k++) {
        const LoraPair& pair = model.layer(i).lora[k];
        std::vector<float> sum = add_scaled(base[want.size()], matmul(pair.b, pair.a), pair.scale).to_floats();
        for (float& v : sum) v = round_to_f16(v);
        want.push_back(Tensor::from_floats(sum, base[want.size()].shape()));
      }
    model.merge_and_redraw_adapters(11);
    for (int64_t i = 0; i < 2; i++)
      for (int k = 0; k < kNumLinear; k++) {
        CAPTURE(linear_module_name(i, k));
        const LlamaLayer& l = model.layer(i);
        const Tensor& expected = want[static_cast<size_t>(i * kNumLinear + k)];
        CHECK(bit_identical(l.full[k], expected));
        CHECK(bit_identical(l.quant[k].codes, quantize_weight(expected, format, format == QuantFormat::nf4).codes));
        CHECK(max_abs_diff(l.full[k], base[static_cast<size_t>(i * kNumLinear + k)]) > 0.0f);  // it moved
        CHECK(max_abs_diff(l.lora[k].b, Tensor::zeros(l.lora[k].b.shape(), DType::f32, Device::cpu())) == 0.0f);
        CHECK(bit_identical(model.merged_weight(i, k), expected));  // B is zero: the full value itself
      }
  }
}

TEST_CASE("ReLoRA with adapter: qlora: full values in checkpoints, an exact resume after a restart, the export") {
  Workspace straight("relora_q_straight"), resumed("relora_q_resumed");
  const std::string cfg =
      "adapter: qlora\nload_in_4bit: true\nlora_r: 4\nlora_alpha: 8\nlora_target_linear: true\nrelora: true\n"
      "jagged_restart_steps: 3\njagged_restart_warmup_steps: 1\nlearning_rate: 0.01\nmax_steps: 8\nsave_steps: 4\n";
  // Restarts before steps 4 and 7: the resume at step 4 starts from a restart's full values.
  const std::string out = check_resume_exact(straight, resumed, cfg, nullptr, "", 4);
  CHECK(contains(out, "relora: the block linears also kept in f32 in host memory"));
  CHECK(contains(out, "ReLoRA: restart 2 before step 7"));
  const std::string q = "model.layers.1.self_attn.q_proj", down = "model.layers.0.mlp.down_proj";
  for (const std::string& linear : {q, down}) {
    CAPTURE(linear);
    // Step 4's full value is the restart's fp16 sum: every value an fp16 one.
    const std::vector<float> full = read(straight.out("step_000004/model.bin"), linear + ".weight").to_floats();
    for (float v : full) REQUIRE(v == round_to_f16(v));
    const SafetensorsFile exported(straight.out("model.safetensors"));
    check_close(exported.read(linear + ".weight", DType::f32).to_floats(), merged(straight.out("step_000008"), linear));
  }
}

TEST_CASE("ReLoRA refusals: its period, a LoRA adapter, unsharded AdamW state") {
  Workspace ws("relora_refused");
  check_refused_run(ws, "max_steps: 1\nadapter: lora\nlora_target_linear: true\nrelora: true\n",
                    "relora: expected jagged_restart_steps with it (ReLoRA's period), got none");
  check_refused_run(ws, "max_steps: 1\nrelora: true\njagged_restart_steps: 4\n",
                    "relora: expected adapter: lora or qlora with ReLoRA, got no adapter");
  check_refused_run(ws, kRelora + "max_steps: 1\nzero_stage: 1\n", "relora: expected zero_stage 0 with ReLoRA");
  check_refused_run(ws, kRelora + "max_steps: 1\noptimizer: adamw_bnb_8bit\n",
                    "relora: expected AdamW with f32 moments with ReLoRA, got optimizer: adamw_bnb_8bit");
  check_refused_run(ws, "max_steps: 1\nrelora_steps: 100\n", "relora_steps: not supported, Axolotl's older ReLoRA key");
}
