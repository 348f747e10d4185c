// QLoRA (LlamaModel::quantize_frozen_linears, adapter: qlora): transformers + bitsandbytes + PEFT's
// own QLoRA step as the reference, the same model as LoRA on the dequantised weights bit for bit,
// learning with the NF4 base unchanged, and llm_train with `adapter: qlora` (summary, exact
// resume, PEFT files).
#include <cstring>
#include <nlohmann/json.hpp>

#include "engine/ops.h"
#include "engine/optimizer.h"
#include "io/safetensors.h"
#include "model/hf_checkpoint.h"
#include "model/hf_config.h"
#include "model/peft_adapter.h"
#include "test/lora_fixture.h"
#include "test/reference_inputs.h"
#include "test/test_util.h"
#include "test/train_fixture.h"

using namespace llm;
using namespace llm::testing;

namespace {
// A model with LoRA on every linear layer and random B (so that A's gradient is not zero).
std::unique_ptr<LlamaModel> lora_model(uint64_t seed) {
  auto model = std::make_unique<LlamaModel>(small_config(), Device::cpu(), seed);
  model->add_lora(lora_config(), seed);
  rng().seed(seed);
  randomise_b(*model);
  return model;
}

std::vector<std::vector<float>> adapter_grads(LlamaModel& model) {
  std::vector<std::vector<float>> out;
  for (const ParamRef& p : model.adapter_parameters()) out.push_back(p.tensor->grad().to_floats());
  return out;
}

// The eval losses a run's metrics.jsonl records, in order.
std::vector<double> eval_losses(const std::string& metrics_path) {
  std::vector<double> evals;
  std::ifstream metrics(metrics_path);
  for (std::string line; std::getline(metrics, line);)
    if (contains(line, "eval_loss")) evals.push_back(std::stod(line.substr(line.find("\"eval_loss\": ") + 13)));
  return evals;
}
}  // namespace

// tools/make_qlora_reference.py: a random Llama (hidden 64) loaded by transformers 5.24 with
// BitsAndBytesConfig nf4 + double quantisation (bitsandbytes 0.50.2 on the CPU, compute in f32),
// PEFT 0.21's LoRA on all seven linears. bnb's CPU Linear4bit dequantises the weight and runs an
// f32 GEMM, as we do: the comparison is f32 against f32 on the same dequantised weights (to one
// ulp of bnb's 8-bit map, test_nf4).
TEST_CASE("matches transformers + bitsandbytes + PEFT's QLoRA: NF4 weights, logits, loss, adapter gradients") {
  const std::string dir = LLM_QLORA_REFERENCE_DIR;
  const SafetensorsFile want(dir + "/reference.safetensors");
  auto check_close = [](const Tensor& got, const Tensor& expected_in, float tol) {
    const Tensor expected = expected_in.reshape(got.shape());  // HF's logits are (B, S, V)
    const float scale = std::max(1.0f, max_abs(expected)), err = max_abs_diff(got, expected);
    INFO("max |ours - bnb/PEFT| " << err << ", max |bnb/PEFT| " << scale);
    CHECK(err <= tol * scale);
  };
  LlamaModel model(read_hf_config(dir + "/base/config.json"), Device::cpu(), 0);
  load_hf_weights(model, dir + "/base");
  model.add_lora(lora_config(), 0);
  load_peft_adapter(model, dir + "/adapter");
  model.quantize_frozen_linears(QuantFormat::nf4, true);
  for (int64_t i = 0; i < model.config().num_hidden_layers; i++)
    for (int k = 0; k < kNumLinear; k++) {
      const std::string name = "model.layers." + std::to_string(i) + "." + linear_module_path(k) + ".weight";
      CAPTURE(name);
      CHECK(!model.layer(i).linear(k).defined());
      check_close(dequantize(model.layer(i).quant[k], DType::f32), want.read("dequant." + name, DType::f32), 1e-6f);
    }
  const TokenBatch in = reference_inputs(dir + "/reference.json");
  check_close(model.logits(in.ids, in.positions), want.read("logits", DType::f32), 2e-5f);
  Tensor loss = model.loss(in.ids, in.targets, in.positions);
  const nlohmann::json ref = nlohmann::json::parse(read_file(dir + "/reference.json"));
  CHECK(loss.item() == doctest::Approx(ref["loss"].get<double>()).epsilon(1e-6));
  backward(loss);
  const std::vector<ParamRef> trained = model.trainable_parameters();
  CHECK(trained.size() == 2 * 7 * 2);
  for (const ParamRef& p : trained) {
    CAPTURE(p.name);
    check_close(p.tensor->grad(), want.read("grad." + p.name, DType::f32), 2e-5f);
  }
}

TEST_CASE("QLoRA is LoRA on the dequantised weights, bit for bit: loss and adapter gradients") {
  TokenBatch b = random_batch(2, 7, 19);
  auto qlora = lora_model(4), dense = lora_model(4);  // the same draw
  qlora->quantize_frozen_linears(QuantFormat::nf4, true);
  // The dense twin's linear weights become what the NF4 codes dequantise to (HF names are the
  // same; parameters() of the quantised model no longer lists them).
  for (const ParamRef& p : dense->parameters())
    for (int64_t i = 0; i < 2; i++)
      for (int k = 0; k < kNumLinear; k++)
        if (p.name == "model.layers." + std::to_string(i) + "." + linear_module_path(k) + ".weight")
          p.tensor->copy_from(dequantize(qlora->layer(i).quant[k], DType::f32));
  CHECK(qlora->parameters().size() == dense->parameters().size() - 2 * kNumLinear);
  Tensor lq = qlora->loss(b.ids, b.targets, b.positions);
  backward(lq);
  Tensor ld = dense->loss(b.ids, b.targets, b.positions);
  backward(ld);
  CHECK(bit_identical(lq, ld));
  CHECK(adapter_grads(*qlora) == adapter_grads(*dense));
}

// NF4 (QLoRA) and int8 (LoRA on a load_in_8bit base) alike.
TEST_CASE("a LoRA model on a quantised base learns; its codes, norms, embeddings and lm_head stay bit-identical") {
  for (QuantFormat format : {QuantFormat::nf4, QuantFormat::int8}) {
    CAPTURE(quant_format_name(format));
    auto model = lora_model(5);
    const size_t bytes = model->quantize_frozen_linears(format, false);
    // NF4 without double quantisation: half a byte per weight and an f32 absmax per 64 (or fewer);
    // int8: a byte per weight and an f32 scale per row.
    size_t expected = 0;
    for (int64_t i = 0; i < 2; i++)
      for (int k = 0; k < kNumLinear; k++) {
        const QuantWeight& w = model->layer(i).quant[k];
        const int64_t n = w.numel();
        CHECK(w.format == format);
        expected += format == QuantFormat::int8 ? n + 4 * w.shape[0] : (n + 1) / 2 + 4 * ((n + 63) / 64);
      }
    CHECK(bytes == expected);
    std::vector<Tensor> frozen, codes;
    for (const ParamRef& p : model->parameters()) frozen.push_back(p.tensor->clone());
    for (int64_t i = 0; i < 2; i++)
      for (int k = 0; k < kNumLinear; k++) codes.push_back(model->layer(i).quant[k].codes.clone());
    std::vector<OptimParam> params;
    for (const ParamRef& p : model->trainable_parameters()) params.push_back({p.name, p.tensor});
    CHECK(params.size() == 2 * 7 * 2);
    AdamW opt(params, {});
    TokenBatch b = random_batch(2, 8, 19);
    float first = 0.0f, last = 0.0f;
    for (int step = 0; step < 30; step++) {
      for (const ParamRef& p : model->trainable_parameters()) p.tensor->zero_grad();
      Tensor loss = model->loss(b.ids, b.targets, b.positions);
      backward(loss);
      opt.step(1e-2f);
      (step == 0 ? first : last) = loss.item();
    }
    CHECK(last < 0.8f * first);
    const std::vector<ParamRef> now = model->parameters();
    for (size_t i = 0; i < now.size(); i++) {
      CHECK_MESSAGE(bit_identical(*now[i].tensor, frozen[i]), now[i].name);
      CHECK_MESSAGE(!now[i].tensor->grad().defined(), now[i].name);
    }
    for (int64_t i = 0; i < 2; i++)
      for (int k = 0; k < kNumLinear; k++) CHECK(bit_identical(model->layer(i).quant[k].codes, codes[i * kNumLinear + k]));
  }
}

TEST_CASE("llm_train with adapter: qlora: NF4 summary, eval loss falls, resumes exactly, PEFT files") {
  Workspace straight("qlora_straight"), resumed("qlora_resumed");
  const std::string qlora =
      "adapter: qlora\nload_in_4bit: true\nlora_r: 4\nlora_alpha: 8\nlora_dropout: 0.1\n"
      "lora_target_linear: true\nlearning_rate: 0.01\neval_steps: 4\n"
      "bnb_config_kwargs: {bnb_4bit_quant_type: nf4, bnb_4bit_use_double_quant: true, "
      "bnb_4bit_quant_storage: bfloat16}\n";
  const std::string output = check_resume_exact(straight, resumed, qlora + "max_steps: 8\nsave_steps: 4\n", nullptr, "", 4);
  CHECK(contains(output, "adapter: qlora r 4, alpha 8 (scale 2), dropout 0.1 on q_proj, k_proj, v_proj, "
                           "o_proj, gate_proj, up_proj, down_proj | trainable"));
  CHECK(contains(output, "the base frozen in f32, its block linears in NF4"));
  // 2 layers x (2 x 32 x 32 + 2 x 16 x 32 + 3 x 64 x 32) = 18432 weights: 9216 bytes of codes,
  // 288 absmax codes, 2 x 7 x (one f32 scale + the f32 offset) = 9616 bytes.
  CHECK(contains(output, "qlora: 18432 block linear weights in 4-bit NF4 with double-quantised absmax: "
                           "0.009 MiB instead of 0.070 MiB in f32 (4.17 bits per weight)"));
  CHECK(contains(output, "keys not used by llm_train: bnb_config_kwargs.bnb_4bit_quant_storage"));
  REQUIRE(train_records(straight.out("metrics.jsonl")).size() == 8);
  // The checkpoint holds the adapters only: the NF4 base is re-quantised from base_model.
  TensorFile model_bin = read_tensor_file(straight.out("step_000008/model.bin"));
  CHECK(model_bin.tensors.size() == 2 * 7 * 2);
  // Evaluation at steps 4 and 8 (and the end): the loss falls.
  const std::vector<double> evals = eval_losses(straight.out("metrics.jsonl"));
  REQUIRE(evals.size() >= 2);
  CHECK(evals.back() < evals.front());
  CHECK(fs::exists(straight.out("adapter_config.json")));
  CHECK(fs::exists(straight.out("adapter_model.safetensors")));
  CHECK(!fs::exists(straight.out("model.safetensors")));
}

// DoRA on an NF4 base (PEFT's use_dora with QLoRA): the magnitudes start from the dequantised
// codes, train with dropout on the adapters' input, resume exactly and go into PEFT's files,
// from which a new run starts.
TEST_CASE("llm_train with adapter: qlora and peft_use_dora: learns, resumes exactly, PEFT files with the magnitudes") {
  Workspace straight("dora_straight"), resumed("dora_resumed");
  const std::string lora =
      "adapter: qlora\nload_in_4bit: true\nlora_r: 4\nlora_alpha: 8\nlora_dropout: 0.1\n"
      "lora_target_modules: [q_proj, v_proj, down_proj]\nlearning_rate: 0.01\neval_steps: 4\n";
  const std::string dora = lora + "peft_use_dora: true\n";
  const std::string output = check_resume_exact(straight, resumed, dora + "max_steps: 8\nsave_steps: 4\n", nullptr, "", 4);
  // 2 layers x (4 x (32 + 32) + 4 x (16 + 32) + 4 x (32 + 64) + 32 + 16 + 32 magnitudes) = 1824.
  CHECK(contains(output, "adapter: qlora (DoRA) r 4, alpha 8 (scale 2), dropout 0.1 on q_proj, v_proj, down_proj | trainable 1824 of"));
  REQUIRE(train_records(straight.out("metrics.jsonl")).size() == 8);
  // A, B and a magnitude per target and layer.
  TensorFile model_bin = read_tensor_file(straight.out("step_000008/model.bin"));
  CHECK(model_bin.tensors.size() == 2 * 3 * 3);
  const std::vector<double> evals = eval_losses(straight.out("metrics.jsonl"));
  REQUIRE(evals.size() >= 2);
  CHECK(evals.back() < evals.front());
  const SafetensorsFile adapter(straight.out("adapter_model.safetensors"));
  const SafetensorsEntry* magnitude =
      adapter.find("base_model.model.model.layers.1.mlp.down_proj.lora_magnitude_vector");
  REQUIRE(magnitude);
  CHECK(magnitude->shape == Shape{32});
  const auto config = nlohmann::json::parse(read_file(straight.out("adapter_config.json")));
  CHECK(config["use_dora"] == true);
  // lora_model_dir: a new DoRA run starts from them, and so does a LoRA config that leaves
  // peft_use_dora unset (the file's use_dora, as PEFT's from_pretrained); one that says false is refused.
  Workspace next("dora_next");
  Run c = run_train(next.config(dora + "max_steps: 1\nlora_model_dir: " + straight.out() + "\n"));
  REQUIRE_MESSAGE(c.exit_code == 0, c.output);
  CHECK(contains(c.output, "lora_model_dir: loaded the adapters of " + straight.out()));
  Run adopted = run_train(next.config(lora + "max_steps: 1\nlora_model_dir: " + straight.out() + "\n"));
  REQUIRE_MESSAGE(adopted.exit_code == 0, adopted.output);
  CHECK(contains(adopted.output, "lora_model_dir: loaded the adapters of " + straight.out()));
  Run d = run_train(next.config(lora + "max_steps: 1\npeft_use_dora: false\nlora_model_dir: " + straight.out() + "\n"));
  CHECK(d.exit_code == 2);
  CHECK(contains(d.output, "use_dora: expected false (peft_use_dora) as the config asks, got true"));
}

// Axolotl's lora-8b.yml: adapter: lora on a load_in_8bit base, here with recompute and merge_lora.
TEST_CASE("llm_train with load_in_8bit: int8 summary, eval loss falls, resumes exactly, PEFT files, merge onto the unquantised base") {
  Workspace straight("int8_straight"), resumed("int8_resumed");
  const std::string lora8 =
      "adapter: lora\nload_in_8bit: true\nlora_r: 4\nlora_alpha: 8\nlora_dropout: 0.1\n"
      "lora_target_linear: true\nlearning_rate: 0.01\neval_steps: 4\ngradient_checkpointing: true\n";
  const std::string output = check_resume_exact(
      straight, resumed, lora8 + "max_steps: 8\nsave_steps: 4\nmerge_lora: true\n", nullptr, "", 4);
  CHECK(contains(output, "the base frozen in f32, its block linears in int8"));
  // 18432 weights in 2 x 256 rows: 18432 code bytes and 512 f32 scales = 20480 bytes.
  CHECK(contains(output, "load_in_8bit: 18432 block linear weights in 8-bit int8 with an f32 scale per row: "
                           "0.020 MiB instead of 0.070 MiB in f32 (8.89 bits per weight)"));
  CHECK(read_tensor_file(straight.out("step_000008/model.bin")).tensors.size() == 2 * 7 * 2);  // adapters only
  const std::vector<double> evals = eval_losses(straight.out("metrics.jsonl"));
  REQUIRE(evals.size() >= 2);
  CHECK(evals.back() < evals.front());
  CHECK(fs::exists(straight.out("adapter_model.safetensors")));
  // merge_lora: the unquantised base + scale x B A, as Axolotl's merge reloads the base, as an HF
  // model, its block linears included: the same seeded base and the exported adapters merged here.
  LlamaModel reference(read_hf_config(straight.out("merged/config.json")), Device::cpu(), 7);
  LoraConfig lora = lora_config(0.1f);
  lora.r = 4;
  reference.add_lora(lora, 7);
  load_peft_adapter(reference, straight.out());
  const SafetensorsFile merged(straight.out("merged/model.safetensors"));
  CHECK(merged.entries().size() == reference.base_weights().size());
  for (int64_t layer = 0; layer < 2; layer++)
    for (int kind = 0; kind < kNumLinear; kind++) {
      CAPTURE(linear_module_name(layer, kind));
      const Tensor got = merged.read(linear_module_name(layer, kind) + ".weight", DType::f32);
      CHECK(max_abs_diff(got, reference.merged_weight(layer, kind)) == 0.0f);
    }
}
