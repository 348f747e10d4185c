// HF interop: config.json both ways (llama3 rope_scaling, transformers 5's rope_parameters, tied
// embeddings, a real Llama-3.2 config), logits, loss and gradients equal to transformers' own
// LlamaForCausalLM (test/data/hf_reference), model export -> load with identical logits, weight
// mismatches refused by name, base_model as a directory in the YAML config, and a training run
// that starts from an exported directory and exports its own final model.
#include <doctest/doctest.h>

#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "train/config.h"
#include "io/safetensors.h"
#include "engine/user_error.h"
#include "model/hf_checkpoint.h"
#include "test/reference_inputs.h"
#include "test/test_files.h"
#include "test/test_util.h"
#include "test/llama_config_check.h"
#include "test/train_fixture.h"

using namespace llm;
using namespace llm::testing;

namespace {

constexpr HfTokenIds kByteIds{256, 257};  // the byte tokenizer's bos and eos

LlamaConfig small_config(bool tied) {
  LlamaConfig c;
  c.hidden_size = 16, c.intermediate_size = 24, c.num_hidden_layers = 2;
  c.num_attention_heads = 4, c.num_key_value_heads = 2, c.vocab_size = 19;
  c.max_position_embeddings = 64, c.rms_norm_eps = 1e-5f;
  c.rope = {500000.0f, 8.0f, 1.0f, 4.0f, 16};
  c.tie_word_embeddings = tied;
  c.initializer_range = 0.2f;
  return c;
}


// Llama-3.2-1B's config.json as published.
const char* kLlama32Config = R"({
  "architectures": ["LlamaForCausalLM"], "attention_bias": false, "attention_dropout": 0.0,
  "bos_token_id": 128000, "eos_token_id": 128001, "head_dim": 64, "hidden_act": "silu",
  "hidden_size": 2048, "initializer_range": 0.02, "intermediate_size": 8192,
  "max_position_embeddings": 131072, "mlp_bias": false, "model_type": "llama",
  "num_attention_heads": 32, "num_hidden_layers": 16, "num_key_value_heads": 8, "pretraining_tp": 1,
  "rms_norm_eps": 1e-05,
  "rope_scaling": {"factor": 32.0, "high_freq_factor": 4.0, "low_freq_factor": 1.0,
                   "original_max_position_embeddings": 8192, "rope_type": "llama3"},
  "rope_theta": 500000.0, "tie_word_embeddings": true, "torch_dtype": "bfloat16",
  "transformers_version": "4.45.0.dev0", "use_cache": true, "vocab_size": 128256
})";

struct ModelInputs {
  Tensor ids, positions;  // i32 (B, S)
};

ModelInputs make_inputs(int64_t B, int64_t S, int64_t V) {
  std::vector<int32_t> pos(B * S);
  for (int64_t i = 0; i < B * S; i++) pos[i] = static_cast<int32_t>(i % S);
  return {randint({B, S}, 0, int(V)), Tensor::from_ints(pos, {B, S})};
}

}  // namespace

TEST_CASE("config.json round trip: llama3 rope_scaling, tied and untied, HF's field names") {
  Workspace ws("hf_config");
  for (bool tied : {true, false}) {
    const LlamaConfig c = small_config(tied);
    const std::string text = hf_config_json(c, DType::bf16, {5, 6});
    const std::string path = (ws.dir / "config.json").string();
    write_file(path, text);
    check_same_llama_config(read_hf_config(path), c);
    nlohmann::json j = nlohmann::json::parse(text);
    CHECK(j["model_type"] == "llama");
    CHECK(j["architectures"] == nlohmann::json{"LlamaForCausalLM"});
    CHECK(j["torch_dtype"] == "bfloat16");
    CHECK(j["bos_token_id"] == 5);
    CHECK(j["eos_token_id"] == 6);
    CHECK(j["head_dim"] == 4);
    CHECK(j["tie_word_embeddings"] == tied);
    CHECK(j["rope_scaling"]["rope_type"] == "llama3");
    CHECK(j["rope_scaling"]["original_max_position_embeddings"] == 16);
    CHECK(contains(text, "\"rms_norm_eps\": 1e-05"));  // the decimal, not the f32's nearest double
  }
  LlamaConfig plain = small_config(true);
  plain.rope.factor = 0.0f;
  nlohmann::json j =
      nlohmann::json::parse(hf_config_json(plain, DType::f32, kByteIds));
  CHECK(j["rope_scaling"].is_null());
  CHECK(j["torch_dtype"] == "float32");
  CHECK(j["bos_token_id"] == 256);
}

TEST_CASE("a published Llama-3.2-1B config.json reads as the llama3-1b preset; defaults are HF's") {
  Workspace ws("hf_real");
  const std::string path = (ws.dir / "config.json").string();
  write_file(path, kLlama32Config);
  check_same_llama_config(read_hf_config(path), *llama_preset("llama3-1b"));

  write_file(path, R"({"model_type": "llama", "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
                       "num_attention_heads": 4, "vocab_size": 300, "rope_scaling": null})");
  LlamaConfig c = read_hf_config(path);
  CHECK(c.num_key_value_heads == 4);  // as many as the query heads
  CHECK(c.rope.theta == 10000.0f);
  CHECK(c.rope.factor == 0.0f);
  CHECK(c.rms_norm_eps == 1e-6f);
  CHECK(c.max_position_embeddings == 2048);
  CHECK_FALSE(c.tie_word_embeddings);

  // transformers 5 writes rope_parameters, rope_theta inside; "default" is no scaling.
  write_file(path, R"({"model_type": "llama", "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
                       "num_attention_heads": 4, "vocab_size": 300,
                       "rope_parameters": {"rope_type": "default", "rope_theta": 250000.0}})");
  c = read_hf_config(path);
  CHECK(c.rope.theta == 250000.0f);
  CHECK(c.rope.factor == 0.0f);

  // Both: transformers 5 takes `rope_scaling or rope_parameters`, so the legacy one wins; swish is
  // transformers' other name of SiLU.
  write_file(path, R"({"model_type": "llama", "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
                       "num_attention_heads": 4, "vocab_size": 300, "hidden_act": "swish",
                       "rope_scaling": {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                                        "high_freq_factor": 4.0, "original_max_position_embeddings": 16},
                       "rope_parameters": {"rope_type": "default", "rope_theta": 250000.0}})");
  c = read_hf_config(path);
  CHECK(c.rope.factor == 8.0f);
  CHECK(c.rope.theta == 10000.0f);
  // llama3 without original_max_position_embeddings: max_position_embeddings, as transformers 5's
  // standardize_rope_params fills it in (before 2026-12-06 refused, as transformers 4's KeyError).
  write_file(path, R"({"model_type": "llama", "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
                       "num_attention_heads": 4, "vocab_size": 300, "max_position_embeddings": 512,
                       "rope_scaling": {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                                        "high_freq_factor": 4.0}})");
  CHECK(read_hf_config(path).rope.original_max_position_embeddings == 512);
  // YaRN (its options read, written back) and linear.
  write_file(path, R"({"model_type": "llama", "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
                       "num_attention_heads": 4, "vocab_size": 300, "max_position_embeddings": 1024,
                       "rope_scaling": {"type": "yarn", "factor": 4.0, "beta_fast": 16, "mscale": 0.5,
                                        "mscale_all_dim": 1.0, "truncate": false}})");
  c = read_hf_config(path);
  CHECK(c.rope.type == RopeType::yarn);
  CHECK(c.rope.original_max_position_embeddings == 1024);
  CHECK((c.rope.beta_fast == 16.0f && c.rope.beta_slow == 1.0f && !c.rope.truncate));
  CHECK((c.rope.mscale == 0.5f && c.rope.mscale_all_dim == 1.0f && c.rope.attention_factor == 0.0f));
  write_file(path, hf_config_json(c, DType::f32, {1, 2}));
  const LlamaConfig back = read_hf_config(path);
  CHECK(rope_inv_freq(back.rope, 16) == rope_inv_freq(c.rope, 16));
  CHECK(rope_attention_factor(back.rope) == rope_attention_factor(c.rope));
  write_file(path, R"({"model_type": "llama", "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
                       "num_attention_heads": 4, "vocab_size": 300, "rope_scaling": {"rope_type": "linear", "factor": 2}})");
  CHECK(read_hf_config(path).rope.type == RopeType::linear);
  // Dynamic NTK: unscaled frequencies below max_position_embeddings (all training reaches), and
  // written back for inference past it.
  write_file(path, R"({"model_type": "llama", "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
                       "num_attention_heads": 4, "vocab_size": 300, "rope_scaling": {"type": "dynamic", "factor": 2}})");
  const LlamaConfig dynamic = read_hf_config(path);
  CHECK((dynamic.rope.type == RopeType::dynamic && dynamic.rope.factor == 2.0f));
  RopeConfig unscaled = dynamic.rope;
  unscaled.factor = 0.0f;
  CHECK(rope_inv_freq(dynamic.rope, 16) == rope_inv_freq(unscaled, 16));
  CHECK(rope_attention_factor(dynamic.rope) == 1.0f);
  write_file(path, hf_config_json(dynamic, DType::f32, {1, 2}));
  const nlohmann::json written = nlohmann::json::parse(read_file(path)).at("rope_scaling");
  CHECK(written == nlohmann::json({{"rope_type", "dynamic"}, {"factor", 2.0}}));
  CHECK(read_hf_config(path).rope.type == RopeType::dynamic);
  write_file(path, R"({"model_type": "llama", "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
                       "num_attention_heads": 4, "vocab_size": 300, "rope_scaling": {"rope_type": "longrope", "factor": 2}})");
  CHECK_THROWS_WITH_AS(read_hf_config(path), doctest::Contains("longrope is not"), UserError);
}

// transformers' own LlamaForCausalLM in f32 (tools/make_hf_reference.py wrote its save_pretrained
// files, logits, loss and gradients): loaded from those files, our model must give the same
// numbers, which pins RMSNorm, RoPE and its scaling, GQA, SwiGLU and tied embeddings to HF's.
static void check_matches_transformers(const std::string& dir) {
  LlamaModel model(read_hf_config(dir + "/config.json"), Device::cpu(), 0);
  load_hf_weights(model, dir);
  const nlohmann::json ref = nlohmann::json::parse(read_file(dir + "/reference.json"));
  const TokenBatch in = reference_inputs(dir + "/reference.json");
  const SafetensorsFile want(dir + "/reference.safetensors");

  // Tolerance: both sides are f32 with different summation orders.
  auto check_close = [](const Tensor& got, const Tensor& expected) {
    const float scale = std::max(1.0f, max_abs(expected));
    INFO("max |ours - HF| " << max_abs_diff(got, expected) << ", max |HF| " << scale);
    CHECK(max_abs_diff(got, expected) <= 2e-5f * scale);
  };
  const Tensor expected_logits = want.read("logits", DType::f32);
  check_close(model.logits(in.ids, in.positions).reshape(expected_logits.shape()), expected_logits);
  Tensor loss = model.loss(in.ids, in.targets, in.positions);
  CHECK(loss.item() == doctest::Approx(ref["loss"].get<double>()).epsilon(1e-6));
  backward(loss);
  for (const ParamRef& p : model.parameters()) {
    CAPTURE(p.name);
    check_close(p.tensor->grad(), want.read("grad." + p.name, DType::f32));
  }
}

TEST_CASE("matches transformers' LlamaForCausalLM: logits, loss and every gradient, tied and untied") {
  for (const std::string name : {"untied_gqa2", "tied_gqa4"}) {
    CAPTURE(name);
    check_matches_transformers(LLM_HF_REFERENCE_DIR "/" + name);
  }
}

// The other scalings, each on the untied model, from transformers (`make_hf_reference.py --only
// ...`, made with torch on the CPU).
TEST_CASE("matches transformers' LlamaForCausalLM under YaRN, linear and dynamic NTK RoPE scaling") {
  for (const std::string name : {"yarn_gqa2", "linear_gqa2", "dynamic_gqa2"}) {
    CAPTURE(name);
    const std::string dir = LLM_HF_REFERENCE_DIR "/" + name;
    REQUIRE_MESSAGE(fs::exists(dir + "/reference.json"),
                    dir << " is missing: run tools/make_hf_reference.py --only " << name);
    check_matches_transformers(dir);
  }
}

TEST_CASE("config.json that llm_train cannot honour: one line naming the file and the key") {
  Workspace ws("hf_bad_config");
  const std::string path = (ws.dir / "config.json").string();
  const nlohmann::json real = nlohmann::json::parse(kLlama32Config);
  struct Case {
    nlohmann::json patch;
    std::string expect;
  };
  for (const Case& c :
       {Case{{{"head_dim", 128}}, "head_dim: expected hidden_size / num_attention_heads"},
        Case{{{"rope_scaling", {{"rope_type", "longrope"}, {"factor", 4.0}}}},
             "rope_scaling.rope_type: expected llama3, linear, yarn or dynamic (the scalings built; longrope is not), or default"},
        Case{{{"rope_scaling", nullptr}, {"rope_parameters", {{"rope_type", "dynamic"}, {"rope_theta", 1e4}}}},
             "rope_parameters.factor: expected a number (dynamic's scaling needs factor, as transformers), got none"},
        Case{{{"rope_scaling", {{"rope_type", "llama3"}}}},
             "rope_scaling.factor: expected a number (llama3's scaling needs factor, low_freq_factor and "
             "high_freq_factor, as transformers), got none"},
        Case{{{"rope_scaling", {{"rope_type", "yarn"}, {"factor", 0.5}}}}, "rope_scaling.factor: expected a number >= 1"},
        Case{{{"rope_scaling", {{"rope_type", "llama3"}, {"factor", 8.0}, {"low_freq_factor", 1.0}}}},
             "rope_scaling.high_freq_factor: expected a number (llama3's scaling needs factor, low_freq_factor and "
             "high_freq_factor, as transformers), got none"},
        Case{{{"model_type", "mistral"}}, "model_type: expected llama"},
        Case{{{"model_type", nullptr}}, "model_type: expected \"llama\" (transformers' AutoConfig needs it), got none"},
        Case{{{"hidden_act", "gelu"}}, "hidden_act: expected silu"},
        Case{{{"attention_bias", true}}, "attention_bias: expected false"},
        Case{{{"attention_dropout", 0.1}}, "attention_dropout: expected 0 (attention dropout is not built), got 0.1"},
        Case{{{"partial_rotary_factor", 0.5}}, "partial_rotary_factor: expected 1 with rope_type llama3"},
        Case{{{"hidden_size", nullptr}},
             "hidden_size: expected an integer in [1, 1048576], got none"},
        Case{{{"intermediate_size", 72057594037927937}},
             "intermediate_size: expected an integer in [1, 1048576], got 72057594037927937"},
        Case{{{"vocab_size", 16777217}}, "vocab_size: expected an integer in [1, 16777216]"},
        Case{{{"rope_theta", 1e300}}, "rope_theta: expected a number in (0, 3.40282e+38]"},
        Case{{{"num_hidden_layers", "16"}},
             "num_hidden_layers: expected an integer in [1, 1024], got \"16\""},
        Case{{{"num_key_value_heads", 7}}, "multiple of num_key_value_heads"},
        Case{{{"rms_norm_eps", -1}}, "rms_norm_eps: expected a number in (0, 3.40282e+38]"}}) {
    nlohmann::json j = real;
    j.update(c.patch);
    write_file(path, j.dump());
    const std::string e = error_of([&] { read_hf_config(path); });
    CAPTURE(e);
    CHECK(contains(e, path + ": "));
    CHECK(contains(e, c.expect));
    CHECK(e.find('\n') == std::string::npos);
  }
  write_file(path, "{\"hidden_size\": ");
  CHECK(error_of([&] { read_hf_config(path); }) == path + ": expected a Hugging Face config.json, got invalid JSON (byte 17)");
  // nlohmann would stop at a NUL byte and read the valid head alone: the whole file must be JSON.
  write_file(path, "{\"model_type\": \"llama\"}" + std::string(1, '\0') + "junk");
  CHECK(error_of([&] { read_hf_config(path); }) ==
        path + ": expected a Hugging Face config.json, got invalid JSON (a NUL byte at byte 24)");
  // A value nested 100000 deep would overflow the stack where a message writes it back; brackets
  // inside strings do not count.
  write_file(path, "{\"hidden_size\": " + std::string(100000, '[') + std::string(100000, ']') + "}");
  CHECK(error_of([&] { read_hf_config(path); }) ==
        path + ": expected a Hugging Face config.json, got invalid JSON (nested deeper than 512 levels)");
  write_file(path, "{\"name\": \"" + std::string(1000, '[') + "\\\"\", \"hidden_size\": [1]}");
  CHECK(!contains(error_of([&] { read_hf_config(path); }), "nested deeper"));
}

TEST_CASE("export then load: identical parameters and logits (f32), bf16-rounded weights (bf16)") {
  Workspace ws("hf_model");
  for (bool tied : {true, false}) {
    LlamaModel a(small_config(tied), Device::cpu(), 1), b(small_config(tied), Device::cpu(), 2);
    const std::string dir = (ws.dir / (tied ? "tied" : "untied")).string();
    save_hf_model(a, dir, DType::f32, kByteIds);
    check_same_llama_config(read_hf_config(dir + "/config.json"), a.config());
    CHECK(load_hf_weights(b, dir) == static_cast<int64_t>(a.parameters().size()));
    ModelInputs in = make_inputs(2, 6, 19);
    NoGradGuard no_grad;
    Tensor la = a.logits(in.ids, in.positions), lb = b.logits(in.ids, in.positions);
    CHECK(la.to_floats() == lb.to_floats());

    // Sharded, and in bf16: each weight comes back as its bf16 rounding.
    save_hf_model(a, dir, DType::bf16, kByteIds, 2000);
    CHECK(fs::exists(dir + "/model.safetensors.index.json"));
    CHECK(nlohmann::json::parse(read_file(dir + "/config.json"))["torch_dtype"] == "bfloat16");
    load_hf_weights(b, dir);
    std::vector<ParamRef> pa = a.parameters(), pb = b.parameters();
    for (size_t i = 0; i < pa.size(); i++) {
      CAPTURE(pa[i].name);
      CHECK(pb[i].tensor->to_floats() == pa[i].tensor->to(DType::bf16).to_floats());
    }
  }
}

// From NaN weights every loss is NaN and every step skipped: refused at load, naming the tensor.
TEST_CASE("a base weight holding NaN or infinity is refused at load, naming the file and tensor") {
  Workspace ws("hf_nan");
  LlamaModel a(small_config(false), Device::cpu(), 1), b(small_config(false), Device::cpu(), 2);
  const std::string dir = (ws.dir / "nan").string();
  std::vector<float> values = a.parameters()[0].tensor->to_floats();
  values[5] = std::nanf(""), values[9] = INFINITY;
  a.parameters()[0].tensor->copy_from(Tensor::from_floats(values, a.parameters()[0].tensor->shape()));
  save_hf_model(a, dir, DType::f32, kByteIds);
  CHECK(error_of([&] { load_hf_weights(b, dir); }) ==
        dir + "/model.safetensors: tensor " + a.parameters()[0].name + " holds 2 non-finite value(s) (NaN or infinity), "
              "the first at flat index 5; expected finite weights");
}

TEST_CASE("weights that do not fit the model are refused before any is copied, naming the tensor") {
  Workspace ws("hf_mismatch");
  LlamaModel model(small_config(false), Device::cpu(), 1);
  std::vector<NamedTensor> tensors;
  for (const ParamRef& p : model.parameters()) tensors.push_back({p.name, *p.tensor});
  const std::string dir = (ws.dir / "m").string();
  auto load_error = [&](const std::vector<NamedTensor>& t) {
    write_safetensors_dir(dir, t, DType::f32);
    return error_of([&] { load_hf_weights(model, dir); });
  };

  std::vector<NamedTensor> missing(tensors.begin(), tensors.end() - 1);
  CHECK(contains(load_error(missing), "tensor lm_head.weight is missing"));
  std::vector<NamedTensor> extra = tensors;
  extra.push_back({"model.layers.2.mlp.up_proj.weight", randn({24, 16})});
  std::string e = load_error(extra);
  CHECK(contains(e,
                 "model.safetensors: tensor model.layers.2.mlp.up_proj.weight is not a parameter"));
  std::vector<NamedTensor> wrong = tensors;
  wrong[3].tensor = randn({4, 16});  // k_proj with 4 kv heads' rows instead of 2
  e = load_error(wrong);
  CHECK(contains(e, "tensor model.layers.0.self_attn.k_proj.weight is [4, 16] but"));
  CHECK(contains(e, "needs [8, 16]"));

  // Older exports' RoPE buffers are ignored, as transformers ignores them; other buffers are not.
  std::vector<NamedTensor> rope_buffers = tensors;
  for (int layer = 0; layer < 2; layer++)
    rope_buffers.push_back({"model.layers." + std::to_string(layer) + ".self_attn.rotary_emb.inv_freq", randn({4})});
  rope_buffers.push_back({"model.rotary_emb.inv_freq", randn({4})});
  CHECK(load_error(rope_buffers).empty());
  rope_buffers.push_back({"model.layers.0.self_attn.rotary_emb.cos_cached", randn({4})});
  CHECK(contains(load_error(rope_buffers), "tensor model.layers.0.self_attn.rotary_emb.cos_cached is not a parameter"));
  rope_buffers.pop_back();  // a name of 100 000 digits overflowed std::regex's recursion
  rope_buffers.push_back({"model.layers." + std::string(100000, '7') + ".self_attn.rotary_emb.x", randn({4})});
  CHECK(contains(load_error(rope_buffers), ".self_attn.rotary_emb.x is not a parameter"));
  rope_buffers.back().name = "model.layers..self_attn.rotary_emb.inv_freq";  // no layer number
  CHECK(contains(load_error(rope_buffers), "tensor model.layers..self_attn.rotary_emb.inv_freq is not a parameter"));

  // A tied model ignores an lm_head.weight in the files, as transformers does.
  LlamaModel tied(small_config(true), Device::cpu(), 3);
  write_safetensors_dir(dir, tensors, DType::f32);
  CHECK(load_hf_weights(tied, dir) == static_cast<int64_t>(tied.parameters().size()));
  CHECK(tied.parameters()[0].tensor->to_floats() == tensors[0].tensor.to_floats());
}

TEST_CASE("base_model as an HF directory: config.json gives the model, YAML fields still win") {
  Workspace ws("hf_yaml");
  LlamaModel model(small_config(false), Device::cpu(), 1);
  const std::string dir = (ws.dir / "base").string();
  save_hf_model(model, dir, DType::f32, kByteIds);
  const std::string data =
      "sequence_len: 32\ndatasets:\n  - path: " + (ws.dir / "corpus.txt").string() + "\n";

  TrainConfig c =
      parse_config("base_model: " + dir + "\nnum_hidden_layers: 1\n" + data, "cfg.yaml");
  CHECK(c.base_model == dir);
  CHECK_FALSE(c.base_model_is_preset());
  CHECK(c.model.hidden_size == 16);
  CHECK(c.model.rope.factor == 8.0f);
  CHECK(c.model.num_hidden_layers == 1);
  // The resolved YAML reads back the same, from the directory and the spelled-out fields.
  TrainConfig again = parse_config(config_to_yaml(c), "saved.yaml");
  CHECK(again.base_model == dir);
  check_same_llama_config(again.model, c.model);

  // Axolotl's base_model_config: that directory's config.json (and tokenizer, this one has none)
  // over a preset's or base_model's shape; the weights would still be base_model's.
  TrainConfig other = parse_config("base_model: tiny\nbase_model_config: " + dir + "\n" + data, "cfg.yaml");
  CHECK(other.base_model == "tiny");
  CHECK(other.base_model_config == dir);
  check_same_llama_config(other.model, read_hf_config(dir + "/config.json"));
  check_same_llama_config(parse_config(config_to_yaml(other), "saved.yaml").model, other.model);
  CHECK(contains(error_of([&] { parse_config("base_model_config: " + ws.dir.string() + "\n" + data, "cfg.yaml"); }),
                 "cfg.yaml:1: base_model_config: expected an HF model directory holding config.json"));

  // A relative directory is found beside the config file.
  write_file((ws.dir / "cfg.yaml").string(), "base_model: base\n" + data);
  CHECK(load_config((ws.dir / "cfg.yaml").string()).base_model == (ws.dir / "base").string());

  std::string e =
      error_of([&] { parse_config("base_model: " + ws.dir.string() + "\n" + data, "cfg.yaml"); });
  CHECK(contains(e, "cfg.yaml:1: base_model: expected a preset (tiny, "));
  CHECK(contains(e, "an HF model directory holding config.json"));
  write_file(dir + "/config.json", "{\"model_type\": \"llama\", \"hidden_size\": 16}");
  e = error_of([&] { parse_config("base_model: " + dir + "\n" + data, "cfg.yaml"); });
  CHECK(contains(e, dir + "/config.json: intermediate_size: expected an integer in [1, 1048576], got none"));
}

TEST_CASE("llm_train starts from an exported directory and exports its final model to output_dir") {
  Workspace ws("hf_train");
  // The workspace config's model: width 32, 2 layers, 4/2 heads, byte vocabulary, tied.
  LlamaConfig shape = *llama_preset("tiny");
  shape.hidden_size = 32, shape.intermediate_size = 64, shape.num_hidden_layers = 2;
  shape.num_attention_heads = 4, shape.num_key_value_heads = 2;
  LlamaModel base(shape, Device::cpu(), 123);
  const std::string dir = (ws.dir / "base").string();
  save_hf_model(base, dir, DType::f32, kByteIds);

  // Warmup starts from lr 0, so one step leaves the weights as loaded: the export at the end
  // must then hold exactly the base model's weights (a seed-7 init would differ everywhere).
  Run r = run_train(ws.config("max_steps: 1\nwarmup_steps: 2\n") + " --base_model " + dir);
  REQUIRE_MESSAGE(r.exit_code == 0, r.output);
  CHECK(contains(r.output, "base_model: loaded 20 tensors from " + dir));
  CHECK(contains(r.output, "exported the final model to " + (ws.dir / "out").string()));
  check_same_llama_config(read_hf_config(ws.out("config.json")), shape);
  SafetensorsDir exported(ws.out());
  for (const ParamRef& p : base.parameters()) {
    CAPTURE(p.name);
    CHECK(exported.read(p.name, DType::f32).to_floats() == p.tensor->to_floats());
  }
  // A base without generation_config.json: the one transformers' from_model_config makes.
  CHECK(nlohmann::json::parse(read_file(ws.out("generation_config.json"))) ==
        nlohmann::json{{"_from_model_config", true}, {"bos_token_id", 256}, {"eos_token_id", 257}});

  // The base's generation config goes to the export as save_pretrained writes it; config.json
  // takes the tokenizer's EOS where the base lists several, as Axolotl's loader sets it.
  Workspace listed("hf_eos_list");
  nlohmann::json config = nlohmann::json::parse(read_file(dir + "/config.json"));
  config["eos_token_id"] = {257, 256};
  write_file(dir + "/config.json", config.dump());
  const std::string generation = R"({"bos_token_id": 256, "do_sample": true, "eos_token_id": [257, 256], "temperature": 0.6})";
  write_file(dir + "/generation_config.json", generation);
  r = run_train(listed.config("max_steps: 1\n") + " --base_model " + dir);
  REQUIRE_MESSAGE(r.exit_code == 0, r.output);
  CHECK(nlohmann::json::parse(read_file(listed.out("config.json")))["eos_token_id"] == 257);
  CHECK(read_file(listed.out("generation_config.json")) == generation);
  // Without the base's generation config, transformers' from_model_config of the base's list.
  fs::remove(dir + "/generation_config.json");
  REQUIRE(run_train(listed.config("max_steps: 1\n") + " --base_model " + dir).exit_code == 0);
  CHECK(nlohmann::json::parse(read_file(listed.out("generation_config.json")))["eos_token_id"] == nlohmann::json{257, 256});
  write_file(dir + "/config.json", nlohmann::json::parse(read_file(ws.out("config.json"))).dump());

  // Axolotl's reinit_weights: the directory's architecture, fresh weights (the workspace's seed 7,
  // as that preset would draw them), none of its tensors read.
  Workspace fresh("hf_reinit");
  r = run_train(fresh.config("max_steps: 1\nwarmup_steps: 2\nreinit_weights: true\n") + " --base_model " + dir);
  REQUIRE_MESSAGE(r.exit_code == 0, r.output);
  CHECK(contains(r.output, "reinit_weights: " + dir + "'s architecture with fresh weights drawn from seed 7"));
  CHECK(!contains(r.output, "base_model: loaded"));
  LlamaModel seeded(shape, Device::cpu(), 7);
  SafetensorsDir redrawn(fresh.out());
  for (const ParamRef& p : seeded.parameters()) {
    CAPTURE(p.name);
    CHECK(redrawn.read(p.name, DType::f32).to_floats() == p.tensor->to_floats());
  }

  // A model shape that contradicts the files is refused at start, naming the tensor.
  r = run_train(ws.config("max_steps: 1\n") + " --base_model " + dir + " --intermediate_size 48");
  CHECK(r.exit_code == 2);
  CHECK(contains(r.output, "tensor model.layers.0.mlp.gate_proj.weight is [64, 32] but"));
}
