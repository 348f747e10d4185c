// Quantisation-aware training (Axolotl's `qat`): the fake-quantisation ops against torchao 0.18's
// own quantisers and torch 2.15's autograd through them (tools/make_qat_reference.py), then
// llm_train runs with qat: what it changes, fake_quant_after_n_steps, an exact resume across the
// switch, the export, the refusals and a look-alike of Axolotl's 3b-qat.yaml. The trajectory against transformers' Trainer on a torchao
// model is test_hf_trajectory's.
#include <cstring>
#include <set>

#include "engine/autograd.h"
#include "engine/ops.h"
#include "io/safetensors.h"
#include "model/hf_checkpoint.h"
#include "model/hf_config.h"
#include "test/axolotl_example.h"
#include "test/reference_inputs.h"
#include "test/test_util.h"

using namespace llm;
using namespace llm::testing;

namespace {

const SafetensorsFile& reference() {
  static const SafetensorsFile file(LLM_QAT_REFERENCE_DIR "/ops.safetensors");
  return file;
}
Tensor ref(const std::string& what, const std::string& name) { return reference().read(what + "." + name, DType::f32); }

// The op's output and its input's gradient for upstream gradient dy.
std::pair<Tensor, Tensor> forward_backward(const std::string& name, const std::function<Tensor(const Tensor&)>& op) {
  Tensor x = ref("x", name);
  x.set_requires_grad(true);
  const Tensor y = op(x);
  backward(sum(mul(y, ref("dy", name))));
  return {y.detach(), x.grad()};
}

// Gradients: the same terms summed in another order than torch's (a group's min / max gradient
// sums 32 partials), so within a few f32 roundings of the largest.
void check_gradient(const Tensor& ours, const Tensor& theirs) {
  const std::vector<float> a = ours.to_floats(), b = theirs.to_floats();
  REQUIRE(a.size() == b.size());
  float scale = 0.0f;
  for (float v : b) scale = std::max(scale, std::fabs(v));
  for (size_t i = 0; i < a.size(); i++) {
    CAPTURE(i);
    CHECK(std::fabs(a[i] - b[i]) <= 2e-6f * scale);
  }
}

// Axolotl's examples/llama-3/3b-qat.yaml with a small model and the local alpaca sample: QAT
// under FSDP full_shard with packed rows and flex attention, Liger's switches beside it.
const std::string kQat3b = kModel + R"(load_in_8bit: false
load_in_4bit: false
strict: false
plugins:
  - axolotl.integrations.liger.LigerPlugin
liger_glu_activation: true
liger_rms_norm: true
liger_layer_norm: true
datasets:
  - path: ALPACA
    type: alpaca
output_dir: ./outputs/qat_out/
dataset_prepared_path: ./outputs/qat_out/dataset_prepared
sample_packing: true
flex_attention: true
pad_to_sequence_len: true
sequence_len: 512
flex_attn_compile_kwargs:
  dynamic: false
  mode: max-autotune-no-cudagraphs
qat:
  activation_dtype: int8
  weight_dtype: int4
  group_size: 32
wandb_project:
gradient_accumulation_steps: 1
micro_batch_size: 16
num_epochs: 1
optimizer: adamw_torch_fused
cosine_constant_lr_ratio: 0
cosine_min_lr_ratio: 1.0
learning_rate: 2e-5
save_only_model: true
bf16: true
resume_from_checkpoint:
logging_steps: 1
evals_per_epoch: 1
saves_per_epoch: 1
warmup_steps: 10
weight_decay: 0.0
fsdp:
  - full_shard
  - auto_wrap
fsdp_config:
  fsdp_version: 2
  fsdp_offload_params: false
  fsdp_cpu_ram_efficient_loading: true
  fsdp_auto_wrap_policy: TRANSFORMER_BASED_WRAP
  fsdp_transformer_layer_cls_to_wrap: LlamaDecoderLayer
  fsdp_state_dict_type: FULL_STATE_DICT
  fsdp_sharding_strategy: FULL_SHARD
  fsdp_reshard_after_forward: true
  fsdp_activation_checkpointing: true
special_tokens:
  pad_token: <|end_of_text|>
)";

std::string qat_yaml(int64_t group, int64_t after = 0) {
  return "qat:\n  activation_dtype: int8\n  weight_dtype: int4\n  group_size: " + std::to_string(group) +
         (after > 0 ? "\n  fake_quant_after_n_steps: " + std::to_string(after) : "") + "\n";
}

}  // namespace

// random: std 0.05 rows of 4 groups; ties: two maxima, three minima, a constant group, a group
// narrower than the 1e-6 clamp; halves: levels exactly between two codes (round half to even).
TEST_CASE("fake_quantize_int4: torchao's Int4WeightFakeQuantizer bit for bit, and torch's gradient through it") {
  for (const std::string name : {"int4_random", "int4_ties", "int4_halves"}) {
    CAPTURE(name);
    const auto [y, dx] = forward_backward(name, [](const Tensor& w) { return fake_quantize_int4(w, 32); });
    CHECK(max_abs_diff(y, ref("out", name)) == 0.0f);
    check_gradient(dx, ref("grad", name));
  }
}

// random rows; all positive, all negative, all zero, one non-zero element.
TEST_CASE("fake_quantize_int8_rows: torchao's per-token int8 IntxFakeQuantizer bit for bit, and its gradient") {
  for (const std::string name : {"int8_random", "int8_edges"}) {
    CAPTURE(name);
    const auto [y, dx] = forward_backward(name, fake_quantize_int8_rows);
    CHECK(max_abs_diff(y, ref("out", name)) == 0.0f);
    check_gradient(dx, ref("grad", name));
  }
}

// Axolotl's fp8 schemes' quantisers: random rows; a +-max tie, values in e4m3's subnormals, a
// single non-zero element, a ramp. The gradient through the cast is e4m3-rounded, as torch's.
TEST_CASE("fake_quantize_fp8_rows: torchao's per-row Float8FakeQuantizer bit for bit, and its gradient") {
  for (const std::string name : {"fp8_rows_random", "fp8_rows_edges"}) {
    CAPTURE(name);
    const auto [y, dx] = forward_backward(name, [](const Tensor& x) { return fake_quantize_fp8_rows(x); });
    CHECK(max_abs_diff(y, ref("out", name)) == 0.0f);
    check_gradient(dx, ref("grad", name));
  }
}

// int4 weights for fp8 activations (weight_dtype int4 alone, or with activation_dtype
// float8_e4m3fn): random rows; a +-max tie, a constant group, a group under the scale's 1e-6
// clamp, a ramp.
TEST_CASE("qat_weight int4 after fp8: torchao's Int4WeightFakeQuantizer (fp8 activations) bit for bit, and its gradient") {
  const QatScheme scheme{QatScheme::Input::none, QatScheme::Weight::int4_after_fp8, 32};
  for (const std::string name : {"int4fp8_random", "int4fp8_ties"}) {
    CAPTURE(name);
    const auto [y, dx] = forward_backward(name, [&](const Tensor& w) { return qat_weight(w, scheme); });
    CHECK(max_abs_diff(y, ref("out", name)) == 0.0f);
    check_gradient(dx, ref("grad", name));
  }
}

// Axolotl's mxfp4 scheme's quantiser: torchao's MXTensor (RCEIL scales) dequantised; random rows,
// an all-zero block, tiny values, e2m1's midpoints (ties to even), a scale of exactly 2.
TEST_CASE("fake_quantize_mxfp4: torchao's MX fake quantisation bit for bit; the gradient passes straight through") {
  for (const std::string name : {"mxfp4_random", "mxfp4_blocks"}) {
    CAPTURE(name);
    Tensor x = ref("x", name);
    x.set_requires_grad(true);
    const Tensor y = fake_quantize_mxfp4(x);
    CHECK(max_abs_diff(y, ref("out", name)) == 0.0f);
    const Tensor dy = randn(y.shape());
    backward(sum(mul(y, dy)));
    CHECK(max_abs_diff(x.grad(), dy) == 0.0f);
  }
}

// test_hf's transformers models prepared as Axolotl prepares them for QAT (torchao's quantize_ on
// every nn.Linear, lm_head included): our forward with the same scheme, same weights, same ids.
// Both sides are f32 in different summation orders, so a value that lands within an f32 rounding
// of the middle between two levels may round the other way; here none moves anything past test_hf's
// own tolerance, which a wrong formula (or a layer left out) would, in the order of OpenBLAS's AVX2
// kernels (ctest pins them: OPENBLAS_CORETYPE=Haswell; its AVX-512 kernels move one value of the
// int4-for-fp8 case across a level, 0.21 on a logit).
TEST_CASE("qat forward and backward match transformers + torchao: logits, loss and every gradient") {
  using In = QatScheme::Input;
  using Wt = QatScheme::Weight;
  const std::tuple<std::string, std::string, QatScheme> cases[] = {
      {"untied_gqa2", "untied_gqa2", {In::int8_per_token, Wt::int4_min_max, 32}},
      {"tied_gqa4", "tied_gqa4", {In::int8_per_token, Wt::int4_min_max, 16}},
      {"untied_gqa2", "untied_gqa2_fp8int4", {In::fp8_per_row, Wt::int4_after_fp8, 32}},
      {"tied_gqa4", "tied_gqa4_int4", {In::none, Wt::int4_after_fp8, 16}},
      {"untied_gqa2", "untied_gqa2_fp8fp8", {In::fp8_per_row, Wt::fp8_per_row, 32}},
      {"untied_gqa2", "untied_gqa2_mxfp4", {In::mxfp4, Wt::mxfp4, 32}}};
  for (const auto& [model_name, name, scheme] : cases) {
    CAPTURE(name);
    const std::string dir = LLM_HF_REFERENCE_DIR "/" + model_name;
    const nlohmann::json want_json = nlohmann::json::parse(read_file(LLM_QAT_REFERENCE_DIR "/" + name + ".json"));
    REQUIRE(want_json.at("group_size").get<int64_t>() == scheme.group);
    const SafetensorsFile want(LLM_QAT_REFERENCE_DIR "/" + name + ".safetensors");
    LlamaModel model(read_hf_config(dir + "/config.json"), Device::cpu(), 0);
    load_hf_weights(model, dir);
    ForwardOptions qat;
    qat.qat = scheme;
    check_against_reference(model, dir, want, want_json.at("loss").get<double>(), qat);
  }
}

TEST_CASE("fake_quantize_int4: each group takes at most 16 values; shapes the group does not divide are refused") {
  const Tensor w = ref("x", "int4_random");
  const std::vector<float> q = fake_quantize_int4(w, 32).to_floats();
  for (size_t g = 0; g < q.size(); g += 32) CHECK(std::set<float>(q.begin() + g, q.begin() + g + 32).size() <= 16);
  CHECK_THROWS_WITH_AS(fake_quantize_int4(w, 48), doctest::Contains("a multiple of the group size 48"), std::exception);
}

TEST_CASE("qat: every step trains on fake-quantised layers; fake_quant_after_n_steps keeps the first steps plain") {
  Workspace plain("qat_plain"), qat("qat_on"), late("qat_late");
  const std::string steps = "max_steps: 4\n";
  Run a = run_train(plain.config(steps));
  REQUIRE_MESSAGE(a.exit_code == 0, a.output);
  Run b = run_train(qat.config(steps + qat_yaml(32)));
  REQUIRE_MESSAGE(b.exit_code == 0, b.output);
  CHECK(b.output.find("qat: every linear layer and lm_head compute on int8 inputs (per token) and int4 weights "
                      "(groups of 32)") != std::string::npos);
  Run c = run_train(late.config(steps + qat_yaml(32, 2)));
  REQUIRE_MESSAGE(c.exit_code == 0, c.output);
  CHECK(c.output.find(", from step 3 on") != std::string::npos);
  const std::vector<std::string> p = train_records(plain.out("metrics.jsonl")), q = train_records(qat.out("metrics.jsonl")),
                                 l = train_records(late.out("metrics.jsonl"));
  REQUIRE(p.size() == 4);
  REQUIRE(q.size() == 4);
  REQUIRE(l.size() == 4);
  for (int i = 0; i < 4; i++) {
    CAPTURE(i);
    CHECK(p[i] != q[i]);               // fake quantisation changes every step's loss
    CHECK((p[i] == l[i]) == (i < 2));  // plain until step 2, as Axolotl's callback switches it
  }
  // The export holds the trained weights, not their quantisation: a group of 32 has more than 16 values.
  const SafetensorsDir exported(qat.out());
  const std::vector<float> w = exported.read("model.layers.0.mlp.down_proj.weight", DType::f32).to_floats();
  CHECK(std::set<float>(w.begin(), w.begin() + 32).size() > 16);
}

TEST_CASE("qat: a resume across fake_quant_after_n_steps continues exactly") {
  Workspace straight("qat_straight"), resumed("qat_resumed");
  // 3 steps, a resume, 3 more: fake quantisation starts at step 5, inside the resumed run.
  check_resume_exact(straight, resumed, "max_steps: 6\nsave_steps: 3\n" + qat_yaml(32, 4), nullptr, "");
}

// Axolotl's other schemes (mxfp4 too): each trains, on its own quantisers (the summary line says which), and
// differently from the others; group_size left null is torchao's 128, as Axolotl hands it None.
TEST_CASE("qat: int4 weights alone, fp8 inputs with int4 weights, fp8 inputs and weights") {
  const std::pair<std::string, std::string> schemes[] = {
      {"qat:\n  weight_dtype: int4\n  group_size: 16\n",
       "their own inputs and int4 weights (e4m3 per row, then symmetric groups of 16)"},
      {"qat:\n  activation_dtype: fp8\n  weight_dtype: int4\n  group_size: 16\n",
       "e4m3 inputs (per token) and int4 weights (e4m3 per row, then symmetric groups of 16)"},
      {"qat:\n  activation_dtype: float8\n  weight_dtype: float8_e4m3fn\n", "e4m3 inputs (per token) and e4m3 weights"},
      {"qat:\n  weight_dtype: mxfp4\n", "mxfp4 inputs (blocks of 32) and mxfp4 weights"},
      {qat_yaml(16), "int8 inputs (per token) and int4 weights (groups of 16)"}};
  std::vector<std::vector<std::string>> losses;
  int i = 0;
  for (const auto& [yaml, summary] : schemes) {
    CAPTURE(yaml);
    Workspace ws("qat_scheme_" + std::to_string(i++));
    Run r = run_train(ws.config("max_steps: 2\n" + yaml));
    REQUIRE_MESSAGE(r.exit_code == 0, r.output);
    CHECK_MESSAGE(r.output.find("compute on " + summary) != std::string::npos, r.output);
    losses.push_back(train_records(ws.out("metrics.jsonl")));
  }
  for (size_t a = 0; a < losses.size(); a++)
    for (size_t b = a + 1; b < losses.size(); b++) CHECK(losses[a][0] != losses[b][0]);
  const std::string scheme = "qat:\n  activation_dtype: int8\n  weight_dtype: int4\n  group_size: 32\n";
  CHECK_THROWS_WITH_AS(parse_example(replaced(kQat3b, scheme, "qat:\n  weight_dtype: int4\n  group_size:\n")),
                       doctest::Contains("(hidden_size 32), got 128"), std::exception);
  CHECK(parse_example(replaced(kQat3b, scheme, "qat:\n  weight_dtype: int4\n")).qat.group == 32);
}

TEST_CASE("qat: what it does not combine with, and torchao's other schemes, are refused in one line") {
  Workspace ws("qat_refused");
  const std::pair<std::string, std::string> cases[] = {
      {"qat:\n  activation_dtype: int8\n",
       "qat: expected one of the pairs torchao's QAT builds (activation_dtype / weight_dtype): unset / int4, int8 / "
       "int4, float8_e4m3fn / int4, float8_e4m3fn / float8_e4m3fn, or weight_dtype mxfp4, got int8 / int8"},
      {"qat:\n  group_size: 16\n", "got unset / int8 (Axolotl's default weight_dtype; torchao has no int8 weight-only QAT)"},
      {"qat:\n  weight_dtype: float8_e4m3fn\n", "got unset / float8_e4m3fn"},
      {"qat:\n  weight_dtype: int4\n  activation_dtype: int16\n", "qat.activation_dtype: expected one of"},
      {"qat:\n  weight_dtype: nvfp4\n  activation_dtype: int8\n", "qat with weight_dtype nvfp4"},
      {"qat:\n  weight_dtype: mxfp4\n  group_size: 16\n",
       "qat.group_size: expected a group_size of 32 with weight_dtype mxfp4 (its MX blocks, as Axolotl requires), got 16"},
      {qat_yaml(32) + "  quantize_embedding: true\n", "qat: not supported, qat's quantize_embedding"},
      {qat_yaml(32) + "  bits: 4\n", "got the key bits"},
      {qat_yaml(64), "qat: expected a group_size that divides every linear layer's input width (hidden_size 32), got 64"},
      {qat_yaml(32) + "adapter: qlora\nload_in_4bit: true\nlora_target_linear: true\n",
       "qat: expected no qat over a bitsandbytes base"},
      {qat_yaml(32) + "adapter: lora\npeft_use_dora: true\nlora_target_linear: true\n",
       "qat: expected no qat with peft_use_dora"},
  };
  for (const auto& [yaml, message] : cases) check_refused_run(ws, "max_steps: 1\n" + yaml, message);
}

// LoRA on a QAT base, as Axolotl prepares QAT before loading adapters: the pairs train on the
// unquantised input beside the fake-quantised base layer.
TEST_CASE("qat with LoRA: the adapters train over fake-quantised base layers") {
  Workspace plain("qat_lora_plain"), qat("qat_lora");
  const std::string lora = "max_steps: 3\nadapter: lora\nlora_r: 4\nlora_alpha: 8\nlora_target_linear: true\n";
  Run a = run_train(plain.config(lora));
  REQUIRE_MESSAGE(a.exit_code == 0, a.output);
  Run b = run_train(qat.config(lora + qat_yaml(32)));
  REQUIRE_MESSAGE(b.exit_code == 0, b.output);
  const std::vector<std::string> p = train_records(plain.out("metrics.jsonl")), q = train_records(qat.out("metrics.jsonl"));
  REQUIRE(p.size() == q.size());
  for (size_t i = 0; i < p.size(); i++) CHECK(p[i] != q[i]);
}

TEST_CASE("3b-qat: Axolotl's QAT example trains (FSDP full_shard, packed rows, Liger's switches)") {
  const TrainConfig c = parse_example(kQat3b);
  CHECK(c.qat == QatScheme{QatScheme::Input::int8_per_token, QatScheme::Weight::int4_min_max, 32});
  CHECK(c.qat_fake_quant_after_n_steps == 0);
  CHECK(c.zero_stage == 3);
  // The local sample packs into 3 rows of 256 tokens: micro-batches of 1 instead of 16.
  const std::string out = train_2_steps(replaced(kQat3b, "micro_batch_size: 16", "micro_batch_size: 1"), "axolotl_qat");
  CHECK_MESSAGE(out.find("qat: every linear layer and lm_head compute on int8 inputs") != std::string::npos, out);
}
