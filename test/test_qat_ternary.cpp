// Axolotl's ternary QAT (`qat: {weight_dtype: ternary}`, BitNet b1.58; its own quantisers, not
// torchao's): the two quantisers and the weights a finished run bakes in against Axolotl 0.19's
// own functions, a whole model against transformers with Axolotl's swap
// (tools/make_ternary_reference.py), then llm_train runs: lm_head left in full precision, the
// export ternary, a resume across fake_quant_after_n_steps, LoRA beside it, and the refusals.
#include <set>

#include "engine/autograd.h"
#include "engine/ops.h"
#include "io/safetensors.h"
#include "model/hf_checkpoint.h"
#include "model/hf_config.h"
#include "test/reference_inputs.h"
#include "test/test_util.h"
#include "test/train_fixture.h"

using namespace llm;
using namespace llm::testing;

namespace {

const SafetensorsFile& reference() {
  static const SafetensorsFile file(LLM_QAT_REFERENCE_DIR "/ternary_ops.safetensors");
  return file;
}
Tensor ref(const std::string& what, const std::string& name) { return reference().read(what + "." + name, DType::f32); }

// The same levels as torch's: each value's sign (or 0) the same, and its magnitude within
// `tolerance` of it relative to the largest. int8 inputs' scales come from a row's largest
// magnitude, found exactly (tolerance 0); ternary's from its mean, whose sum torch takes in the
// order of its vectorised kernel (the CPU's vector width decides it): within a rounding or two.
void check_levels(const Tensor& ours, const Tensor& theirs, float tolerance) {
  const std::vector<float> a = ours.to_floats(), b = theirs.to_floats();
  REQUIRE(a.size() == b.size());
  for (size_t i = 0; i < a.size(); i++) {
    CAPTURE(i);
    CHECK((a[i] > 0) == (b[i] > 0));
    CHECK((a[i] < 0) == (b[i] < 0));
  }
  CHECK(max_abs_diff(ours, theirs) <= tolerance * max_abs(theirs));
}

// The quantiser's output and its input's gradient for the reference's upstream gradient.
void check_straight_through(const std::string& name, Tensor (*quantise)(const Tensor&), float tolerance) {
  Tensor x = ref("x", name);
  x.set_requires_grad(true);
  const Tensor y = quantise(x);
  backward(sum(mul(y, ref("dy", name))));
  check_levels(y.detach(), ref("out", name), tolerance);
  CHECK(max_abs_diff(x.grad(), ref("grad", name)) == 0.0f);  // straight through: dy itself
}

const std::string kTernary = "qat:\n  weight_dtype: ternary\n";
const std::string kTernaryInt8 = "qat:\n  weight_dtype: ternary\n  activation_dtype: int8\n";

}  // namespace

// random rows; an all-zero row, one under the 1e-5 clamp, a constant row, values at the middle
// between levels (round half to even), an outlier, a ramp.
TEST_CASE("fake_quantize_ternary: Axolotl's ternarize as x + (q - x), its levels; ternarize is convert's bake") {
  for (const std::string name : {"ternary_random", "ternary_edges"}) {
    CAPTURE(name);
    check_straight_through(name, fake_quantize_ternary, 3e-7f);
    const Tensor baked = ternarize(ref("x", name));
    check_levels(baked, ref("baked", name), 3e-7f);
    const std::vector<float> q = baked.to_floats();
    const int64_t width = baked.size(1);
    for (size_t row = 0; row < q.size(); row += width) {  // {-s, 0, s}: three values at most
      const std::set<float> levels(q.begin() + row, q.begin() + row + width);
      CHECK(levels.size() <= 3);
    }
  }
}

// random rows; an all-zero row, one non-zero element, a row under the clamp, values at the middle
// between levels with a scale of exactly 1, a ramp.
TEST_CASE("fake_quantize_int8_absmax: Axolotl's quantize_activation as x + (q - x) bit for bit") {
  for (const std::string name : {"int8_absmax_random", "int8_absmax_edges"}) {
    CAPTURE(name);
    check_straight_through(name, fake_quantize_int8_absmax, 0.0f);
  }
}

// test_hf's transformers models with Axolotl's prepare_model_for_ternary_qat: every nn.Linear but
// lm_head swapped (weights only on the untied model, int8 inputs too on the tied one).
TEST_CASE("ternary qat forward and backward match transformers with Axolotl's swap: logits, loss, every gradient") {
  using In = QatScheme::Input;
  const std::tuple<std::string, std::string, QatScheme> cases[] = {
      {"untied_gqa2", "untied_gqa2_ternary", {In::none, QatScheme::Weight::ternary, 0}},
      {"tied_gqa4", "tied_gqa4_ternary_int8", {In::int8_absmax, QatScheme::Weight::ternary, 0}}};
  for (const auto& [model_name, name, scheme] : cases) {
    CAPTURE(name);
    const std::string dir = LLM_HF_REFERENCE_DIR "/" + model_name;
    const nlohmann::json want_json = nlohmann::json::parse(read_file(LLM_QAT_REFERENCE_DIR "/" + name + ".json"));
    REQUIRE(want_json.at("weight_dtype") == "ternary");
    const SafetensorsFile want(LLM_QAT_REFERENCE_DIR "/" + name + ".safetensors");
    LlamaModel model(read_hf_config(dir + "/config.json"), Device::cpu(), 0);
    load_hf_weights(model, dir);
    ForwardOptions qat;
    qat.qat = scheme;
    check_against_reference(model, dir, want, want_json.at("loss").get<double>(), qat);
  }
}

// A full fine-tune: the steps differ from a plain run's; the export holds each block linear's
// ternary values (three per row) and lm_head and the embedding as trained.
TEST_CASE("qat ternary: trains on ternary block linears and exports them ternary, lm_head as trained") {
  Workspace plain("ternary_plain"), ternary("ternary_on");
  const std::string untied = kSmallModel + "tie_word_embeddings: false\n";
  Run a = run_train(plain.config("max_steps: 3\n", untied));
  REQUIRE_MESSAGE(a.exit_code == 0, a.output);
  Run b = run_train(ternary.config("max_steps: 3\n" + kTernaryInt8, untied));
  REQUIRE_MESSAGE(b.exit_code == 0, b.output);
  CHECK_MESSAGE(b.output.find("qat: every block linear layer computes on int8 inputs (symmetric per token, "
                              "straight-through) and ternary weights") != std::string::npos, b.output);
  CHECK(b.output.find("the final model is saved with them ternary") != std::string::npos);
  const std::vector<std::string> p = train_records(plain.out("metrics.jsonl")), q = train_records(ternary.out("metrics.jsonl"));
  REQUIRE(p.size() == 3);
  REQUIRE(q.size() == 3);
  for (size_t i = 0; i < 3; i++) CHECK(p[i] != q[i]);
  const SafetensorsDir exported(ternary.out());
  const Tensor down = exported.read("model.layers.1.mlp.down_proj.weight", DType::f32);
  const std::vector<float> w = down.to_floats();
  for (size_t row = 0; row < w.size(); row += down.size(1))
    CHECK(std::set<float>(w.begin() + row, w.begin() + row + down.size(1)).size() <= 3);
  for (const char* name : {"lm_head.weight", "model.embed_tokens.weight"}) {
    CAPTURE(name);
    const std::vector<float> v = exported.read(name, DType::f32).to_floats();
    CHECK(std::set<float>(v.begin(), v.begin() + 32).size() > 3);
  }
}

TEST_CASE("qat ternary: a resume across fake_quant_after_n_steps continues exactly") {
  Workspace straight("ternary_straight"), resumed("ternary_resumed");
  check_resume_exact(straight, resumed, "max_steps: 6\nsave_steps: 3\n" + kTernary + "  fake_quant_after_n_steps: 4\n",
                     nullptr, "");
}

// LoRA over ternary base layers: the pairs train (on the unquantised input), and the adapter is
// what is saved, as Axolotl's PEFT save.
TEST_CASE("qat ternary with LoRA: the adapters train over ternary base layers") {
  Workspace plain("ternary_lora_plain"), ternary("ternary_lora");
  const std::string lora = "max_steps: 3\nadapter: lora\nlora_r: 4\nlora_alpha: 8\nlora_target_linear: true\n";
  Run a = run_train(plain.config(lora));
  REQUIRE_MESSAGE(a.exit_code == 0, a.output);
  Run b = run_train(ternary.config(lora + kTernary));
  REQUIRE_MESSAGE(b.exit_code == 0, b.output);
  CHECK(b.output.find("the adapters are saved as trained") != std::string::npos);
  const std::vector<std::string> p = train_records(plain.out("metrics.jsonl")), q = train_records(ternary.out("metrics.jsonl"));
  REQUIRE(p.size() == q.size());
  for (size_t i = 0; i < p.size(); i++) CHECK(p[i] != q[i]);
}

TEST_CASE("qat ternary: other activation dtypes are refused in one line, as Axolotl's validator") {
  Workspace ws("ternary_refused");
  check_refused_run(ws, "max_steps: 1\n" + kTernary + "  activation_dtype: float8_e4m3fn\n",
                    "qat: expected activation_dtype int8 or unset with weight_dtype ternary (Axolotl's ternary QAT), got "
                    "float8_e4m3fn");
}
