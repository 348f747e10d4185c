// LoRA adapters (model/lora.h, model/peft_adapter.h): step 0 is the base model, gradients of A
// and B against finite differences, learning with the base frozen bit for bit, PEFT's files both
// ways, the merged export, and llm_train with `adapter: lora` (exact resume, outputs, errors).
#include <algorithm>
#include <cmath>
#include <map>
#include <cstring>
#include <nlohmann/json.hpp>

#include "engine/ops.h"
#include "engine/optimizer.h"
#include "io/safetensors.h"
#include "model/hf_checkpoint.h"
#include "model/hf_config.h"
#include "model/peft_adapter.h"
#include "test/lora_fixture.h"
#include "test/test_util.h"
#include "test/train_fixture.h"

using namespace llm;
using namespace llm::testing;

TEST_CASE("step 0: an untrained adapter leaves the logits exactly as the base model's") {
  LlamaModel model(small_config(), Device::cpu(), 3);
  TokenBatch b = random_batch(2, 7, 19);
  const Tensor before = model.logits(b.ids, b.positions);
  model.add_lora(lora_config(0.2f), 3);
  CHECK(bit_identical(model.logits(b.ids, b.positions), before));
  {
    NoGradGuard no_grad;  // evaluation: no dropout either
    CHECK(bit_identical(model.logits(b.ids, b.positions), before));
  }
  // 2 layers x 7 linears x (A, B); every base weight frozen.
  CHECK(model.adapter_parameters().size() == 28);
  CHECK(model.trainable_parameters().size() == 28);
  for (const ParamRef& p : model.parameters()) CHECK_MESSAGE(!p.tensor->requires_grad(), p.name);
  // A as PEFT's kaiming_uniform_(a=sqrt(5)): within 1/sqrt(in), spread over it; B zero.
  for (const ParamRef& p : model.adapter_parameters()) {
    CAPTURE(p.name);
    const float bound = 1.0f / std::sqrt(float(p.tensor->size(1)));
    if (contains(p.name, "lora_A")) {
      CHECK(p.tensor->size(0) == 4);
      CHECK(max_abs(*p.tensor) <= bound);
      CHECK(max_abs(*p.tensor) > 0.5f * bound);
    } else {
      CHECK(p.tensor->size(1) == 4);
      CHECK(max_abs(*p.tensor) == 0.0f);
    }
  }
}

TEST_CASE("lora_linear: x W^T + scale * dropout(x) A^T B^T; gradients of x, W, A and B") {
  Tensor x = randn({6, 10}), w = randn({7, 10}), a = randn({3, 10}), b = randn({7, 3});
  std::vector<float> X = x.to_floats(), W = w.to_floats(), A = a.to_floats(), B = b.to_floats();
  std::vector<float> got = lora_linear(x, w, a, b, 0.5f, 0.0f, 1).to_floats();
  float err = 0.0f;
  for (int n = 0; n < 6; n++)
    for (int o = 0; o < 7; o++) {
      double y = 0.0;
      for (int i = 0; i < 10; i++) y += double(X[n * 10 + i]) * W[o * 10 + i];
      for (int j = 0; j < 3; j++) {
        double t = 0.0;
        for (int i = 0; i < 10; i++) t += double(X[n * 10 + i]) * A[j * 10 + i];
        y += 0.5 * t * B[o * 3 + j];
      }
      err = std::max(err, float(std::fabs(y - got[n * 7 + o])));
    }
  CHECK(err < 1e-5f);
  for (float p : {0.0f, 0.3f}) {
    CAPTURE(p);
    check_gradients([p](const std::vector<Tensor>& in) { return lora_linear(in[0], in[1], in[2], in[3], 0.5f, p, 9); },
                    {x, w, a, b});
  }
}

TEST_CASE("add_dora_term: PEFT's DoRA output with and without dropout; gradients of x, A, B and m") {
  Tensor x = randn({6, 10}), w = randn({7, 10}), a = randn({3, 10}), b = randn({7, 3}), m = randn({7});
  const Tensor inverse_norms = row_inverse_norms(add_scaled(w, matmul(b, a), 0.5f));
  auto frozen = [&w](const Tensor& in) { return linear(in, w); };
  auto dora = [&](const std::vector<Tensor>& in, float p) {
    return add_dora_term(linear(in[0], w), in[0], frozen, in[1], in[2], in[3], inverse_norms, 0.5f, p, 9);
  };
  const std::vector<float> M = m.to_floats(), N = inverse_norms.to_floats();
  for (float p : {0.0f, 0.3f}) {
    CAPTURE(p);
    // PEFT: x W^T + (c - 1) xd W^T + c * scale * xd A^T B^T, c = m / ||W + scale B A|| per row.
    const Tensor xd = dropout(x, p, 9);
    const std::vector<float> base = linear(x, w).to_floats(), frozen_xd = linear(xd, w).to_floats(),
                             low = linear(linear(xd, a), b).to_floats(), got = dora({x, a, b, m}, p).to_floats();
    float err = 0.0f;
    for (int n = 0; n < 6; n++)
      for (int o = 0; o < 7; o++) {
        const int i = n * 7 + o;
        const double c = double(M[o]) * N[o];
        err = std::max(err, float(std::fabs(base[i] + (c - 1) * frozen_xd[i] + c * 0.5 * low[i] - got[i])));
      }
    CHECK(err < 1e-5f);
    check_gradients([&](const std::vector<Tensor>& in) { return dora(in, p); }, {x, a, b, m});
  }
}

TEST_CASE("the model's A and B gradients against finite differences of the loss") {
  LlamaModel model(small_config(), Device::cpu(), 4);
  model.add_lora(lora_config(), 4);
  randomise_b(model);
  TokenBatch b = random_batch(2, 5, 19);
  backward(model.loss(b.ids, b.targets, b.positions));
  for (const ParamRef& p : model.adapter_parameters()) {
    CAPTURE(p.name);
    REQUIRE(p.tensor->grad().defined());
    const std::vector<float> analytic = p.tensor->grad().to_floats();
    float* data = p.tensor->data<float>();
    NoGradGuard no_grad;
    for (int64_t j : {int64_t(0), p.tensor->numel() / 2, p.tensor->numel() - 1}) {
      const float saved = data[j], eps = 1e-2f;
      data[j] = saved + eps;
      const double plus = model.loss(b.ids, b.targets, b.positions).item();
      data[j] = saved - eps;
      const double minus = model.loss(b.ids, b.targets, b.positions).item();
      data[j] = saved;
      const double numeric = (plus - minus) / (2 * eps);
      CHECK(std::fabs(numeric - analytic[j]) <= 2e-3 + 2e-2 * std::fabs(numeric));
    }
  }
  for (const ParamRef& p : model.parameters()) CHECK_MESSAGE(!p.tensor->grad().defined(), p.name);
}

TEST_CASE("recompute segments with LoRA dropout: the same loss and bit-identical adapter gradients") {
  TokenBatch b = random_batch(2, 6, 19);
  std::vector<std::vector<float>> grads[2];
  float losses[2];
  for (int recompute = 0; recompute < 2; recompute++) {
    LlamaModel model(small_config(), Device::cpu(), 10);
    model.add_lora(lora_config(0.3f), 10);
    rng().seed(10);  // the same B in both
    randomise_b(model);
    ForwardOptions fo;
    fo.recompute_every_n_layers = recompute;
    fo.dropout_seed = 77;
    Tensor loss = model.loss(b.ids, b.targets, b.positions, fo);
    backward(loss);
    losses[recompute] = loss.item();
    for (const ParamRef& p : model.adapter_parameters()) grads[recompute].push_back(p.tensor->grad().to_floats());
  }
  CHECK(losses[0] == losses[1]);
  CHECK(grads[0] == grads[1]);
}

TEST_CASE("a LoRA model learns; its base weights stay bit-identical; AdamW holds only the adapters") {
  LlamaModel model(small_config(), Device::cpu(), 5);
  LoraConfig lora = lora_config(0.1f);
  lora.target_linear = false;
  lora.target_modules = {"q_proj", "v_proj", "down_proj"};
  model.add_lora(lora, 5);
  std::vector<Tensor> base;
  for (const ParamRef& p : model.parameters()) base.push_back(p.tensor->clone());
  std::vector<OptimParam> params;
  int64_t trainable = 0;
  for (const ParamRef& p : model.trainable_parameters()) {
    params.push_back({p.name, p.tensor});
    trainable += p.tensor->numel();
  }
  CHECK(params.size() == 2 * 3 * 2);
  AdamW opt(params, {});
  CHECK(opt.state_bytes() == size_t(8 * trainable));
  TokenBatch b = random_batch(2, 8, 19);
  float first = 0.0f, last = 0.0f;
  for (int step = 0; step < 30; step++) {
    for (const ParamRef& p : model.trainable_parameters()) p.tensor->zero_grad();
    ForwardOptions fo;
    fo.dropout_seed = step;
    Tensor loss = model.loss(b.ids, b.targets, b.positions, fo);
    backward(loss);
    opt.step(1e-2f);
    (step == 0 ? first : last) = loss.item();
  }
  CHECK(last < 0.8f * first);
  std::vector<ParamRef> now = model.parameters();
  for (size_t i = 0; i < now.size(); i++) {
    CHECK_MESSAGE(bit_identical(*now[i].tensor, base[i]), now[i].name);
    CHECK_MESSAGE(!now[i].tensor->grad().defined(), now[i].name);
  }
}

TEST_CASE("PEFT files: adapter_config.json and adapter_model.safetensors, saved and loaded back") {
  TempDir dir("lora_peft");
  LlamaModel model(small_config(), Device::cpu(), 6);
  LoraConfig lora = lora_config(0.05f);
  lora.modules_to_save = {"lm_head"};
  model.add_lora(lora, 6);
  randomise_b(model);
  save_peft_adapter(model, dir.path.string(), "/models/base", DType::f32);
  const nlohmann::json config = nlohmann::json::parse(read_file(dir.file(kPeftConfigFile)));
  CHECK(config["peft_type"] == "LORA");
  CHECK(config["task_type"] == "CAUSAL_LM");
  CHECK(config["r"] == 4);
  CHECK(config["lora_alpha"] == 8);
  CHECK(config["lora_dropout"].get<double>() == 0.05);  // as Python writes 0.05, not the float widened
  CHECK(config["target_modules"].size() == 7);
  CHECK(config["modules_to_save"] == nlohmann::json::array({"lm_head"}));
  CHECK(config["bias"] == "none");
  CHECK(config["fan_in_fan_out"] == false);
  CHECK(config["use_rslora"] == false);
  CHECK(config["base_model_name_or_path"] == "/models/base");
  // A snapshot of the hub cache is named by its hub id, as PEFT writes what from_pretrained was given.
  save_peft_adapter(model, dir.path.string(), "/cache/hub/models--meta-llama--Llama-3.2-1B/snapshots/0123abc", DType::f32);
  CHECK(nlohmann::json::parse(read_file(dir.file(kPeftConfigFile)))["base_model_name_or_path"] == "meta-llama/Llama-3.2-1B");
  const SafetensorsFile file(dir.file(kPeftWeightsFile));
  CHECK(file.entries().size() == 29);
  const SafetensorsEntry* a = file.find("base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight");
  const SafetensorsEntry* b = file.find("base_model.model.model.layers.1.mlp.down_proj.lora_B.weight");
  REQUIRE(a);
  REQUIRE(b);
  CHECK(a->shape == Shape{4, 16});   // (r, in)
  CHECK(b->shape == Shape{16, 4});   // (out, r)
  CHECK(file.find("base_model.model.lm_head.weight"));

  LlamaModel other(small_config(), Device::cpu(), 7);
  other.add_lora(lora, 7);
  load_peft_adapter(other, dir.path.string());
  std::vector<ParamRef> x = model.trainable_parameters(), y = other.trainable_parameters();
  REQUIRE(x.size() == y.size());
  for (size_t i = 0; i < x.size(); i++) CHECK_MESSAGE(bit_identical(*x[i].tensor, *y[i].tensor), x[i].name);

  LoraConfig wrong_r = lora;
  wrong_r.r = 2;
  LlamaModel third(small_config(), Device::cpu(), 7);
  third.add_lora(wrong_r, 7);
  const std::string e = error_of([&] { load_peft_adapter(third, dir.path.string()); });
  CHECK(e == dir.file(kPeftConfigFile) + ": r: expected 2 (lora_r) as the config asks, got 4");
  LoraConfig rslora = lora;
  rslora.use_rslora = true;
  LlamaModel rs(small_config(), Device::cpu(), 7);
  rs.add_lora(rslora, 7);
  CHECK(error_of([&] { load_peft_adapter(rs, dir.path.string()); }) ==
        dir.file(kPeftConfigFile) + ": use_rslora: expected true (peft_use_rslora) as the config asks, got false");
  LoraConfig one_block = lora;
  one_block.layers = {1};
  LlamaModel ob(small_config(), Device::cpu(), 7);
  ob.add_lora(one_block, 7);
  CHECK(error_of([&] { load_peft_adapter(ob, dir.path.string()); }) ==
        dir.file(kPeftConfigFile) + ": layers_to_transform: expected [1] (peft_layers_to_transform) as the config asks, got null");
  LoraConfig no_head = lora;
  no_head.modules_to_save.clear();
  LlamaModel fourth(small_config(), Device::cpu(), 7);
  fourth.add_lora(no_head, 7);
  CHECK(contains(error_of([&] { load_peft_adapter(fourth, dir.path.string()); }),
                 "tensor base_model.model.lm_head.weight is not a trainable tensor"));

  // A value of another JSON type is refused in one line, not thrown as nlohmann's type_error.
  const std::string path = dir.file(kPeftConfigFile);
  auto refusal = [&](const nlohmann::json& file) {
    write_file(path, file.dump());
    return error_of([&] { load_peft_adapter(other, dir.path.string()); });
  };
  auto with = [&](const char* key, const nlohmann::json& value) {
    nlohmann::json bad = config;
    bad[key] = value;
    return refusal(bad);
  };
  CHECK(refusal(nlohmann::json::array()) == path + ": expected a JSON object, got a JSON array");
  write_file(path, config.dump() + std::string(1, '\0') + "junk");  // nlohmann alone would stop at the NUL
  CHECK(error_of([&] { load_peft_adapter(other, dir.path.string()); }) ==
        path + ": expected PEFT's adapter_config.json, got invalid JSON (a NUL byte at byte " +
            std::to_string(config.dump().size() + 1) + ")");
  CHECK(with("peft_type", 5) == path + ": peft_type: expected LORA as the config asks, got 5");
  CHECK(with("r", "4") == path + ": r: expected 4 (lora_r) as the config asks, got \"4\"");
  CHECK(with("lora_alpha", "8") == path + ": lora_alpha: expected 8 as the config asks, got \"8\"");
  CHECK(with("use_rslora", 1) == path + ": use_rslora: expected true or false, got 1");
  CHECK(with("use_dora", "no") == path + ": use_dora: expected true or false, got \"no\"");
  CHECK(with("r", 4.0) == "");  // PEFT may write a whole number as a float
}

namespace {

// r 4, alpha 8: scale alpha / r = 2, or with rsLoRA (PEFT's use_rslora) alpha / sqrt(r) = 4.
void check_merged_export(bool rslora) {
  const double scale = rslora ? 4.0 : 2.0;
  CAPTURE(rslora);
  TempDir dir("lora_merged");
  LlamaModel model(small_config(), Device::cpu(), 8);
  LoraConfig lora = lora_config();
  lora.use_rslora = rslora;
  lora.target_linear = false;
  lora.target_modules = {"k_proj", "o_proj", "up_proj"};
  model.add_lora(lora, 8);
  randomise_b(model);
  save_merged_model(model, dir.path.string(), DType::f32, {1, 2});
  const SafetensorsDir files(dir.path.string());
  for (int64_t layer = 0; layer < 2; layer++)
    for (int k = 0; k < kNumLinear; k++) {
      const std::string prefix = "model.layers." + std::to_string(layer) + "." + linear_module_path(k);
      CAPTURE(prefix);
      const std::vector<float> merged = files.read(prefix + ".weight", DType::f32).to_floats();
      Tensor w;
      for (const ParamRef& p : model.parameters())
        if (p.name == prefix + ".weight") w = *p.tensor;
      const std::vector<float> W = w.to_floats();
      if (!lora.targets(k)) {
        CHECK(merged == W);
        continue;
      }
      Tensor ta, tb;
      for (const ParamRef& p : model.adapter_parameters()) {
        if (p.name == prefix + ".lora_A.weight") ta = *p.tensor;
        if (p.name == prefix + ".lora_B.weight") tb = *p.tensor;
      }
      const std::vector<float> A = ta.to_floats(), B = tb.to_floats();
      const int64_t out = w.size(0), in = w.size(1);
      float err = 0.0f;
      for (int64_t o = 0; o < out; o++)
        for (int64_t i = 0; i < in; i++) {
          double ba = 0.0;
          for (int64_t j = 0; j < 4; j++) ba += double(B[o * 4 + j]) * A[j * in + i];
          err = std::max(err, float(std::fabs(W[o * in + i] + scale * ba - merged[o * in + i])));
        }
      CHECK(err < 1e-6f);
    }
  LlamaModel loaded(small_config(), Device::cpu(), 9);
  load_hf_weights(loaded, dir.path.string());
  TokenBatch b = random_batch(2, 6, 19);
  NoGradGuard no_grad;
  CHECK(max_abs_diff(loaded.logits(b.ids, b.positions), model.logits(b.ids, b.positions)) < 1e-5f);
}

}  // namespace

TEST_CASE("merged export: each weight is base + scale * B A, and its logits are the adapter model's") {
  check_merged_export(false);
  check_merged_export(true);
}

TEST_CASE("llm_train with adapter: lora: learns, resumes exactly, writes PEFT files and the merge") {
  Workspace straight("lora_straight"), resumed("lora_resumed");
  const std::string lora =
      "adapter: lora\nlora_r: 4\nlora_alpha: 8\nlora_dropout: 0.1\nlora_target_linear: true\n"
      "lora_modules_to_save: [embed_tokens]\nmerge_lora: true\nlearning_rate: 0.01\n";
  Run a = run_train(straight.config(lora + "max_steps: 8\nsave_steps: 4\n"));
  REQUIRE_MESSAGE(a.exit_code == 0, a.output);
  CHECK(contains(a.output, "adapter: lora r 4, alpha 8 (scale 2), dropout 0.1 on q_proj, k_proj, v_proj, "
                           "o_proj, gate_proj, up_proj, down_proj; trained whole: embed_tokens | trainable"));
  // Tied, lora_modules_to_save unties it as PEFT trains it: 26880 base parameters and lm_head's
  // copy of the table (259 x 32) x 8 bytes of AdamW moments = 0.268 MiB.
  CHECK(contains(a.output, "lora_modules_to_save on a tied model: embed_tokens and lm_head untied"));
  CHECK(contains(a.output, "MiB instead of 0.268 MiB for every weight"));
  CHECK(contains(a.output, "MiB saved)"));
  Run b1 = run_train(resumed.config(lora + "max_steps: 4\nsave_steps: 4\n"));
  REQUIRE_MESSAGE(b1.exit_code == 0, b1.output);
  Run b2 = run_train("--resume " + resumed.out("step_000004") + " --max_steps 8");
  REQUIRE_MESSAGE(b2.exit_code == 0, b2.output);
  std::vector<std::string> la = train_records(straight.out("metrics.jsonl"));
  std::vector<std::string> lb = train_records(resumed.out("metrics.jsonl"));
  REQUIRE(la.size() == 8);
  CHECK(la == lb);
  check_same_model(straight.out("step_000008"), resumed.out("step_000008"));
  // The checkpoint holds what resume needs and nothing of the frozen base.
  TensorFile model_bin = read_tensor_file(straight.out("step_000008/model.bin"));
  CHECK(model_bin.tensors.size() == 1 + 2 * 7 * 2);
  CHECK(model_bin.find("model.layers.1.mlp.up_proj.lora_B.weight"));
  CHECK(!model_bin.find("model.layers.0.self_attn.q_proj.weight"));
  // Loss falls.
  auto loss_of = [](const std::string& record) {
    return std::stod(record.substr(record.find("\"loss\": ") + 8));
  };
  CHECK(loss_of(la[7]) < loss_of(la[0]));
  CHECK(fs::exists(straight.out("adapter_config.json")));
  CHECK(fs::exists(straight.out("adapter_model.safetensors")));
  CHECK(fs::exists(straight.out("merged/model.safetensors")));
  CHECK(fs::exists(straight.out("merged/config.json")));
  CHECK(!fs::exists(straight.out("model.safetensors")));

  // lora_model_dir: a new run starts from the saved adapter; one that disagrees is refused.
  Workspace next("lora_next");
  Run c = run_train(next.config(lora + "max_steps: 1\nlora_model_dir: " + straight.out() + "\n"));
  REQUIRE_MESSAGE(c.exit_code == 0, c.output);
  CHECK(contains(c.output, "lora_model_dir: loaded the adapters of " + straight.out()));
  Run d = run_train(next.config(lora + "max_steps: 1\nlora_r: 2\nlora_model_dir: " + straight.out() + "\n"));
  CHECK(d.exit_code == 2);
  CHECK(error_text(d) == "error: " + straight.out("adapter_config.json") +
                             ": r: expected 2 (lora_r) as the config asks, got 4\n");
  // Only the adapter and its directory: r, alpha, dropout, targets and the modules trained whole
  // come from adapter_config.json, as PEFT's from_pretrained takes them.
  Run e = run_train(next.config("adapter: lora\nlearning_rate: 0.01\nmax_steps: 1\nlora_model_dir: " + straight.out() + "\n"));
  REQUIRE_MESSAGE(e.exit_code == 0, e.output);
  CHECK(contains(e.output, "adapter: lora r 4, alpha 8 (scale 2), dropout 0.1 on q_proj, k_proj, v_proj, "
                           "o_proj, gate_proj, up_proj, down_proj; trained whole: embed_tokens | trainable"));
  CHECK(contains(e.output, "lora_model_dir: loaded the adapters of " + straight.out()));

  // merge-lora, Axolotl's command: the adapter in output_dir (or lora_model_dir) merged onto the
  // base without training, the same weights as the run's own merged/.
  std::map<std::string, std::vector<float>> merged_by_run;
  const SafetensorsDir run_merge(straight.out("merged"));
  for (const std::string& name : run_merge.names()) merged_by_run[name] = run_merge.read(name, DType::f32).to_floats();
  Workspace merging("lora_merge");
  for (const std::string& extra : {std::string(), " --lora_model_dir " + straight.out() + " --output_dir " + merging.out()}) {
    Run m = run_train("merge-lora " + straight.config(lora + "max_steps: 8\n") + extra);
    REQUIRE_MESSAGE(m.exit_code == 0, m.output);
    const std::string out = extra.empty() ? straight.out() : merging.out();
    CHECK(contains(m.output, "done: merged the adapter of " + (straight.dir / "out").string()));
    CHECK(!contains(m.output, "step 1/"));
    const SafetensorsDir merged(out + "/merged");
    CHECK(merged.names().size() == merged_by_run.size());
    for (const auto& [name, values] : merged_by_run) {
      CAPTURE(name);
      CHECK(merged.read(name, DType::f32).to_floats() == values);
    }
  }
  Run none = run_train("merge-lora " + straight.config(lora) + " --output_dir " + (merging.dir / "empty").string());
  CHECK(none.exit_code == 2);
  CHECK_MESSAGE(contains(none.output, "merge-lora: expected a trained adapter (adapter_config.json) in output_dir " +
                                          (merging.dir / "empty").string() + ", got none"), none.output);
  // The config is read before the adapter is looked for: a config that is no file is refused as that.
  for (const std::string& config : {(merging.dir / "missing.yaml").string(), merging.dir.string()}) {
    const Run bad = run_train("merge-lora " + config + " --output_dir " + (merging.dir / "empty").string());
    CHECK(bad.exit_code == 2);
    CHECK_MESSAGE(contains(bad.output, config + ": expected a YAML config file, got "), bad.output);
  }
}

// PEFT wraps each modules_to_save entry in a copy of its own: on a tied model the listed module
// trains apart from the other, which keeps the base's table, and the adapter holds the listed
// module's tensor (PEFT looks up each listed one on load). peft_ensure_weight_tying keeps one table.
TEST_CASE("lora_modules_to_save on a tied model: PEFT's copies, untied; peft_ensure_weight_tying: one table") {
  const std::string lora = "adapter: lora\nlora_r: 4\nlora_alpha: 8\nlora_target_modules: [q_proj]\nmerge_lora: true\n"
                           "learning_rate: 0.01\nmax_steps: 3\nval_set_size: 0\n";
  struct Case {
    std::string extra;
    std::vector<std::string> keys;  // the adapter's tensors besides the LoRA pairs
    bool merged_tied;
  };
  std::vector<std::vector<float>> base_tables;
  for (const Case& k : {Case{"lora_modules_to_save: [lm_head]\n", {"base_model.model.lm_head.weight"}, false},
                        Case{"lora_modules_to_save: [embed_tokens]\n", {"base_model.model.model.embed_tokens.weight"}, false},
                        Case{"lora_modules_to_save: [embed_tokens, lm_head]\n",
                             {"base_model.model.lm_head.weight", "base_model.model.model.embed_tokens.weight"}, false},
                        Case{"lora_modules_to_save: [embed_tokens]\npeft_ensure_weight_tying: true\n",
                             {"base_model.model.model.embed_tokens.weight"}, true}}) {
    CAPTURE(k.extra);
    Workspace ws("lora_tied");
    Run r = run_train(ws.config(lora + k.extra));
    REQUIRE_MESSAGE(r.exit_code == 0, r.output);
    CHECK(contains(r.output, "embed_tokens and lm_head untied") == !k.merged_tied);
    CHECK(contains(r.output, "tied embeddings, untied for lora_modules_to_save") == !k.merged_tied);
    const SafetensorsFile adapter(ws.out("adapter_model.safetensors"));
    std::vector<std::string> whole;
    for (const SafetensorsEntry& e : adapter.entries())
      if (!contains(e.name, "lora_")) whole.push_back(e.name);
    std::sort(whole.begin(), whole.end());
    CHECK(whole == k.keys);
    const nlohmann::json config = nlohmann::json::parse(read_file(ws.out("adapter_config.json")));
    CHECK(config.contains("ensure_weight_tying") == k.merged_tied);
    CHECK(read_hf_config(ws.out("merged/config.json")).tie_word_embeddings == k.merged_tied);
    const SafetensorsDir merged(ws.out("merged"));
    if (k.merged_tied) {
      CHECK(merged.find("lm_head.weight") == nullptr);
      continue;
    }
    // The listed module trained away from the other; an unlisted one is still the base's table.
    const std::vector<float> embed = merged.read("model.embed_tokens.weight", DType::f32).to_floats(),
                             head = merged.read("lm_head.weight", DType::f32).to_floats();
    CHECK(embed != head);
    if (k.keys.size() == 1) base_tables.push_back(k.keys[0] == "base_model.model.lm_head.weight" ? embed : head);
  }
  REQUIRE(base_tables.size() == 2);  // the frozen embedding of the first run, the frozen lm_head of the second
  CHECK(base_tables[0] == base_tables[1]);
  // From a tied HF directory on an 8-bit base, whose merge reads the base's files again: lm_head is
  // the base's table there too, and the merged lm_head is it unchanged.
  Workspace base("lora_tied_base"), eight("lora_tied_8bit");
  Run full = run_train(base.config("max_steps: 1\nval_set_size: 0\n"));
  REQUIRE_MESSAGE(full.exit_code == 0, full.output);
  REQUIRE(read_hf_config(base.out("config.json")).tie_word_embeddings);
  Run q = run_train(eight.config(lora + "load_in_8bit: true\nlora_modules_to_save: [embed_tokens]\n",
                                 "base_model: " + base.out() + "\n"));
  REQUIRE_MESSAGE(q.exit_code == 0, q.output);
  CHECK(SafetensorsDir(eight.out("merged")).read("lm_head.weight", DType::f32).to_floats() ==
        SafetensorsDir(base.out()).read("model.embed_tokens.weight", DType::f32).to_floats());

  // A listed lm_head is refused under ZeRO-3 on a tied model, where its copy is not built.
  Workspace ws("lora_tied_zero3");
  Run z = run_train(ws.config(lora + "lora_modules_to_save: [lm_head]\nzero_stage: 3\n"));
  CHECK(z.exit_code == 2);
  CHECK(contains(z.output, "lora_modules_to_save"));
}

TEST_CASE("adapter config errors: one line naming the file and key, exit 2") {
  Workspace ws("lora_bad");
  struct Case {
    std::string extra, expect;
  };
  for (const Case& c : {Case{"adapter: qlora\nlora_target_linear: true\n", "adapter: expected load_in_4bit: true with qlora, got load_in_4bit false"},
                        Case{"adapter: lora\nlora_target_linear: true\nload_in_4bit: true\n", "load_in_4bit: expected adapter: qlora with it"},
                        Case{"adapter: qlora\nload_in_4bit: true\nlora_target_linear: true\nmerge_lora: true\n", "merge_lora: expected false with adapter: qlora"},
                        Case{"adapter: qlora\nload_in_4bit: true\nlora_target_linear: true\nbnb_config_kwargs: {bnb_4bit_quant_type: fp4}\n", "bnb_config_kwargs.bnb_4bit_quant_type: expected nf4 (bitsandbytes' fp4 4-bit type is not built), got fp4"},
                        Case{"load_in_8bit: true\n", "load_in_8bit: expected adapter: lora with it (an 8-bit base is frozen: only adapters train on it), got no adapter"},
                        Case{"adapter: qlora\nload_in_4bit: true\nload_in_8bit: true\nlora_target_linear: true\n", "load_in_8bit: expected either load_in_8bit or load_in_4bit, got both"},
                        Case{"adapter: qlora\nload_in_8bit: true\nlora_target_linear: true\n", "adapter: expected load_in_4bit: true with qlora"},
                        Case{"adapter: lora\n", "adapter: expected lora_target_modules or lora_target_linear: true with it"},
                        Case{"adapter: lora\nlora_target_modules: [q_proj, w_proj]\n", "lora_target_modules: expected a list of q_proj"},
                        Case{"adapter: lora\nlora_target_linear: true\nlora_dropout: 1\n", "lora_dropout"},
                        Case{"merge_lora: true\n", "merge_lora: expected adapter: lora with it"},
                        Case{"adapter: lora\nlora_target_linear: true\nlora_model_dir: /no/such\n", "lora_model_dir: expected a PEFT adapter directory"}}) {
    CAPTURE(c.extra);
    Run r = run_train(ws.config(c.extra));
    CHECK(r.exit_code == 2);
    CHECK(contains(r.output, "config.yaml:"));
    CHECK(contains(r.output, c.expect));
    CHECK(std::count(r.output.begin(), r.output.end(), '\n') == 1);
  }
}
