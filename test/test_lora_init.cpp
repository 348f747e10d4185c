// PEFT's LoRA inits from the base weight (peft_init_lora_weights: pissa, pissa_niter_K, olora):
// the adapter and residual PEFT 0.21 makes of a weight (test/data/lora_init_reference, written by
// tools/make_lora_init_reference.py), the model they leave computing as before, and llm_train with
// them (exact resume, the adapter's files, a loaded adapter of another init refused). The
// Trainer's trajectory from PEFT's own inits: test_hf_trajectory.
#include <nlohmann/json.hpp>

#include <cmath>

#include "engine/autograd.h"
#include "io/safetensors.h"
#include "model/lora_init.h"
#include "test/lora_fixture.h"
#include "test/train_fixture.h"

using namespace llm;
using namespace llm::testing;

namespace {

HostMatrix matrix_of(const Tensor& t) { return {t.size(0), t.size(1), t.to_floats()}; }

double max_difference(const std::vector<float>& a, const std::vector<float>& b) {
  REQUIRE(a.size() == b.size());
  double worst = 0;
  for (size_t i = 0; i < a.size(); i++) worst = std::max(worst, double(std::fabs(a[i] - b[i])));
  return worst;
}

// Ours against PEFT's: the residual, and A's rows with B's columns up to one sign per rank
// component (a singular pair is (u, v) or (-u, -v); B A, the residual and training are the same).
// The factors to `tolerance`, the residual to `residual_tolerance` (default: the same).
void check_factors(const LoraFromBase& ours, const SafetensorsFile& file, const std::string& key, double tolerance,
                   double residual_tolerance = 0) {
  CAPTURE(key);
  const HostMatrix a = matrix_of(file.read(key + ".a", DType::f32)), b = matrix_of(file.read(key + ".b", DType::f32));
  REQUIRE(ours.a.rows == a.rows);
  REQUIRE(ours.b.cols == b.cols);
  HostMatrix signed_a = ours.a, signed_b = ours.b;
  for (int64_t j = 0; j < a.rows; j++) {
    double dot = 0;
    for (int64_t i = 0; i < a.cols; i++) dot += double(ours.a.at(j, i)) * a.at(j, i);
    if (dot >= 0) continue;
    for (int64_t i = 0; i < a.cols; i++) signed_a.values[j * a.cols + i] *= -1;
    for (int64_t i = 0; i < b.rows; i++) signed_b.values[i * b.cols + j] *= -1;
  }
  CHECK(max_difference(signed_a.values, a.values) <= tolerance);
  CHECK(max_difference(signed_b.values, b.values) <= tolerance);
  CHECK(max_difference(ours.residual.values, file.read(key + ".residual", DType::f32).to_floats()) <=
        (residual_tolerance > 0 ? residual_tolerance : tolerance));
}

}  // namespace

TEST_CASE("pissa, pissa_niter_2 and olora: PEFT's adapter and residual from the same weight, tall and wide") {
  const SafetensorsFile file(std::string(LLM_LORA_INIT_REFERENCE_DIR) + "/reference.safetensors");
  const float scale = 8.0f / 4;  // the fixture's lora_alpha / r
  for (const char* shape : {"tall", "wide"}) {
    const HostMatrix w = matrix_of(file.read(std::string(shape) + ".w", DType::f32));
    const std::string key = shape;
    // A singular vector of f32's SVD is fixed to about eps x sigma_1 / gap: the wide fixture's 4th
    // and 5th values (0.912, 0.871) leave about 3e-6, and OpenBLAS's kernels for another CPU (an
    // AMD EPYC) moved A and B by 4.3e-6 and 5.3e-6 there. The residual, W - B A, is not so sensitive.
    check_factors(pissa_init(w, 4, scale, -1, {}), file, key + ".pissa", 1e-5, 2e-6);
    // The same draws as torch's: the randomised SVD's basis, iterations and small SVD as torch's.
    const HostMatrix draws = matrix_of(file.read(key + ".pissa_niter_2.draws", DType::f32));
    check_factors(pissa_init(w, 4, scale, 2, draws), file, key + ".pissa_niter_2", 2e-5);
    // Householder QR has one sign per column (LAPACK's and torch's the same): checked as is.
    const LoraFromBase olora = olora_init(w, 4, scale);
    CHECK(max_difference(olora.a.values, file.read(key + ".olora.a", DType::f32).to_floats()) <= 2e-6);
    CHECK(max_difference(olora.b.values, file.read(key + ".olora.b", DType::f32).to_floats()) <= 2e-6);
    CHECK(max_difference(olora.residual.values, file.read(key + ".olora.residual", DType::f32).to_floats()) <= 2e-6);
  }
  CHECK(pissa_power_iterations("pissa") == -1);
  CHECK(pissa_power_iterations("pissa_niter_16") == 16);
  CHECK_FALSE(lora_init_from_base("gaussian"));
}

TEST_CASE("add_lora with pissa, pissa_niter_4 or olora: the model computes as before, the base holds the residual") {
  TokenBatch batch = random_batch(2, 7, 19);
  for (const char* init : {"pissa", "pissa_niter_4", "olora"}) {
    CAPTURE(init);
    LlamaModel base(small_config(), Device::cpu(), 5), adapted(small_config(), Device::cpu(), 5);
    LoraConfig lora = lora_config();
    lora.init = init;
    lora.use_dora = true;  // its magnitudes start from base + B A: the original rows' norms
    adapted.add_lora(lora, 3);
    adapted.init_dora_magnitudes();
    const std::vector<float> before = base.logits(batch.ids, batch.positions).to_floats();
    CHECK(max_difference(adapted.logits(batch.ids, batch.positions).to_floats(), before) <= 2e-5);
    for (int k = 0; k < kNumLinear; k++) {
      CAPTURE(k);
      const LoraPair& pair = adapted.layer(1).lora[k];
      const HostMatrix w = matrix_of(base.layer(1).linear(k)), residual = matrix_of(adapted.layer(1).linear(k));
      CHECK(max_difference(residual.values, w.values) > 1e-3);  // the principal part moved to the adapter
      const HostMatrix ba = host_matmul(matrix_of(pair.b), matrix_of(pair.a));
      for (size_t i = 0; i < ba.values.size(); i++) CHECK(std::fabs(residual.values[i] + 2 * ba.values[i] - w.values[i]) <= 1e-5);
      const std::vector<float> magnitude = pair.magnitude.to_floats();
      for (int64_t row = 0; row < w.rows; row++) {
        double norm = 0;
        for (int64_t col = 0; col < w.cols; col++) norm += double(w.at(row, col)) * w.at(row, col);
        CHECK(std::fabs(magnitude[row] - std::sqrt(norm)) <= 1e-5);
      }
    }
  }
}

// A bf16 base (a GPU run's): PEFT decomposes the bf16 model's weights, so the adapter and residual
// come from W rounded to bf16, the residual rounded again when the base is stored.
TEST_CASE("add_lora with pissa over a bf16 base: the decomposition of the bf16-rounded weight") {
  LlamaModel base(small_config(), Device::cpu(), 5), adapted(small_config(), Device::cpu(), 5);
  LoraConfig lora = lora_config();
  lora.init = "pissa";
  adapted.add_lora(lora, 3, DType::bf16);
  for (int k = 0; k < kNumLinear; k++) {
    CAPTURE(k);
    HostMatrix w = matrix_of(base.layer(1).linear(k));
    for (float& v : w.values) v = bf16_to_f32(f32_to_bf16(v));
    const LoraFromBase want = pissa_init(w, lora.r, adapted.layer(1).lora[k].scale, -1, {});
    const LoraPair& pair = adapted.layer(1).lora[k];
    CHECK(max_difference(matrix_of(pair.a).values, want.a.values) == 0);
    CHECK(max_difference(matrix_of(pair.b).values, want.b.values) == 0);
    CHECK(max_difference(matrix_of(adapted.layer(1).linear(k)).values, want.residual.values) == 0);
  }
}

TEST_CASE("llm_train with pissa: resumes exactly, writes PEFT's init name, refuses an adapter of another init") {
  Workspace straight("pissa_straight"), resumed("pissa_resumed");
  const std::string cfg = "adapter: lora\nlora_r: 4\nlora_alpha: 8\nlora_target_linear: true\n"
                          "peft_init_lora_weights: pissa_niter_2\nmax_steps: 6\nsave_steps: 3\n";
  check_resume_exact(straight, resumed, cfg, nullptr, "");
  const nlohmann::json adapter_config = nlohmann::json::parse(read_file(straight.out("adapter_config.json")));
  CHECK(adapter_config.at("init_lora_weights") == "pissa_niter_2");
  // Loading it asks for the residual of its own init (PEFT's loading makes it afresh from that init).
  Workspace reload("pissa_reload");
  fs::copy(straight.out(), reload.dir / "adapter", fs::copy_options::recursive);
  const std::string from = "adapter: lora\nlora_r: 4\nlora_alpha: 8\nlora_target_linear: true\nmax_steps: 1\n"
                           "lora_model_dir: " + (reload.dir / "adapter").string() + "\n";
  check_refused_run(reload, from + "peft_init_lora_weights: true\n",
                    "adapter_config.json: init_lora_weights: expected true (peft_init_lora_weights) as the config "
                    "asks, got \"pissa_niter_2\"");
  Run run = run_train(reload.config(from + "peft_init_lora_weights: pissa_niter_2\n"));
  CHECK_MESSAGE(run.exit_code == 0, run.output);
  // Unset, the init is the file's (PEFT's from_pretrained reads it there).
  Run adopted = run_train(reload.config(from));
  CHECK_MESSAGE(adopted.exit_code == 0, adopted.output);
}
