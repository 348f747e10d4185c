// ZeRO-3 through llm_train under mpirun, what its units and start-up do: no rank holds the whole
// model at start-up, yet every rank ends with the weights the whole-model path builds, bit for
// bit (from the seed and from an HF directory, tied and untied embeddings, 2 and 4 ranks), host
// memory rising by at most one weight above the shards; with untied embeddings the embedding and
// the final norm with lm_head are units of their own, which changes no loss, guesses no prefetch
// wrong, resumes exactly, shards an adapter run's base too, and is planned within 10%. An adapter
// run's frozen base starts the same way (drawn or read, quantised or cast, one weight at a time:
// the whole-model path's bytes), a save holds one gathered unit at a time on rank 0's host, and a
// resume reads only each rank's slices of the checkpoint, the ranks verifying their parts'
// checksums together.
#include <nlohmann/json.hpp>
#include <regex>

#include "engine/frozen_shards.h"
#include "model/hf_checkpoint.h"
#include "test/train_fixture.h"

using namespace llm::testing;

namespace {
// One step whose learning rate is 0 (the first of a 2-step warmup), saved: the checkpoint holds
// the starting weights exactly.
const std::string kFirstStep = "max_steps: 1\nsave_steps: 1\nval_set_size: 0\n";

// Width 128, 3 layers: several weights per unit and slices that cut through weights.
llm::LlamaConfig narrow_model(bool tied) {
  llm::LlamaConfig c;  // the tiny preset's vocabulary: bytes and 3 specials
  c.hidden_size = 128, c.intermediate_size = 256, c.num_hidden_layers = 3;
  c.num_attention_heads = 4, c.num_key_value_heads = 2, c.tie_word_embeddings = tied;
  return c;
}

std::string model_keys(const llm::LlamaConfig& c) {
  return "base_model: tiny\nhidden_size: " + std::to_string(c.hidden_size) +
         "\nintermediate_size: " + std::to_string(c.intermediate_size) +
         "\nnum_hidden_layers: " + std::to_string(c.num_hidden_layers) +
         "\nnum_attention_heads: " + std::to_string(c.num_attention_heads) +
         "\nnum_key_value_heads: " + std::to_string(c.num_key_value_heads) +
         "\ntie_word_embeddings: " + (c.tie_word_embeddings ? "true" : "false") + "\n";
}

// The small test model (width 32, 2 layers) with its own lm_head.
const std::string kUntied = kSmallModel + "tie_word_embeddings: false\n";
const std::string kSteps = "max_steps: 6\neval_steps: 3\nsave_steps: 3\n";

// "ZeRO-3: N unit all-gathers, M of them prefetched (U unused)": U, which must be 0.
int unused_prefetches(const std::string& output) {
  std::smatch m;
  REQUIRE_MESSAGE(std::regex_search(output, m, std::regex("prefetched \\(([0-9]+) unused\\)")), output);
  return std::stoi(m[1]);
}
}  // namespace

TEST_CASE("ZeRO-3's sharded start-up gives the whole-model path's weights: seeded, and loaded from HF") {
  for (const bool tied : {true, false}) {
    for (const bool from_hf : {false, true}) {
      CAPTURE(tied);
      CAPTURE(from_hf);
      Workspace whole("start_whole"), sharded2("start_z3_2"), sharded4("start_z3_4");
      std::string model = model_keys(narrow_model(tied));
      if (from_hf) {
        // Another seed than the runs', saved in bf16: the load converts, and a seeded start
        // would not match it.
        const std::string dir = (whole.dir / "hf").string();
        llm::LlamaModel source(narrow_model(tied), llm::Device::cpu(), 1234);
        llm::save_hf_model(source, dir, llm::DType::bf16, {256, 257});
        model = "base_model: " + dir + "\n";
      }
      Run a = run_train(whole.config(kFirstStep, model));
      REQUIRE_MESSAGE(a.exit_code == 0, a.output);
      Run b = run_train(sharded2.config(kFirstStep + "zero_stage: 3\nmicro_batch_size: 1\n", model), mpirun(2));
      REQUIRE_MESSAGE(b.exit_code == 0, b.output);
      CHECK_MESSAGE(b.output.find("ZeRO-3 start-up: each weight made whole on the host alone") != std::string::npos,
                    b.output);
      check_same_model(whole.out("step_000001"), sharded2.out("step_000001"));
      Run c = run_train(sharded4.config(kFirstStep + "zero_stage: 3\nmicro_batch_size: 1\n"
                                        "gradient_accumulation_steps: 1\n", model), mpirun(4));
      REQUIRE_MESSAGE(c.exit_code == 0, c.output);
      check_same_model(whole.out("step_000001"), sharded4.out("step_000001"));
    }
  }
}

TEST_CASE("ZeRO-3's start-up holds one whole weight at a time beside the shards, at 2 and 4 ranks") {
  // Width 256, 4 layers (2.43M parameters, 9.3 MiB in f32): the largest weight is a 0.5 MiB MLP
  // matrix, so a start-up that built the whole model would rise 18 times as far.
  const std::string wide = "base_model: tiny\nhidden_size: 256\nintermediate_size: 512\nnum_hidden_layers: 4\n"
                           "num_attention_heads: 4\nnum_key_value_heads: 2\n";
  for (int ranks : {2, 4}) {
    CAPTURE(ranks);
    Workspace ws("start_rise");
    Run r = run_train(ws.config("max_steps: 1\nval_set_size: 0\nzero_stage: 3\nmicro_batch_size: 1\n"
                                "gradient_accumulation_steps: 1\n", wide), mpirun(ranks));
    REQUIRE_MESSAGE(r.exit_code == 0, r.output);
    const double rise = number_after(r.output, "host memory rose"), largest = number_after(r.output, "the largest weight");
    const double whole = number_after(r.output, "the whole f32 model");
    MESSAGE(ranks << " ranks: host memory rose " << rise << " MiB (largest weight " << largest << ", model " << whole
                  << " MiB)");
    CHECK(largest == doctest::Approx(0.5));
    CHECK(rise <= largest + 0.01);
    CHECK(whole > 9.0);
  }
}

namespace {
// An adapter run's frozen base as the trainer lays it out under ZeRO-3 (FrozenShards over the
// model's frozen units), made whole again: its bytes by unit, and the quantised weights' offsets.
struct FrozenBase {
  std::vector<std::vector<uint8_t>> bytes;
  std::vector<float> offsets;
};

// `sharded`: the model built without bytes, each base weight drawn (or read from `hf`) alone and
// handed to frozen_values as llm_train's sharded start-up does; else built whole, then sharded.
FrozenBase frozen_base(bool sharded, const std::string& hf, const std::string& quant, llm::DType dtype) {
  const llm::LlamaConfig config = narrow_model(false);
  auto model = sharded ? std::make_unique<llm::LlamaModel>(config, llm::Device::cpu())
                       : std::make_unique<llm::LlamaModel>(config, llm::Device::cpu(), 7);
  if (!sharded && !hf.empty()) llm::load_hf_weights(*model, hf);
  llm::LoraConfig lora;
  lora.r = 4;
  lora.target_linear = true;
  model->add_lora(lora, 7);
  if (quant == "nf4") model->quantize_frozen_linears(llm::QuantFormat::nf4, true);
  if (quant == "int8") model->quantize_frozen_linears(llm::QuantFormat::int8, false);
  model->store_frozen_as(dtype);
  llm::FrozenShards shards(llm::Communicator::get(), model->frozen_units(), llm::Device::cpu(), llm::Device::cpu());
  if (sharded) {
    const llm::WeightSink keep = [&](const llm::ParamRef& p, const llm::Tensor& value) {
      model->frozen_values(p, value, [&](const llm::Tensor* t, const llm::Tensor& v) { shards.keep_slice(t, v); });
    };
    if (hf.empty())
      model->draw_weights(7, keep);
    else
      llm::read_hf_weights(*model, hf, keep);
  }
  shards.gather_all();
  FrozenBase out;
  for (const std::vector<llm::Tensor*>& unit : model->frozen_units()) {
    std::vector<uint8_t>& b = out.bytes.emplace_back();
    for (const llm::Tensor* t : unit) {
      const auto* p = static_cast<const uint8_t*>(t->data_ptr());
      b.insert(b.end(), p, p + t->nbytes());
    }
  }
  for (int64_t i = 0; i < config.num_hidden_layers; i++)
    for (const llm::QuantWeight& w : model->layer(i).quant) out.offsets.push_back(w.absmax_offset);
  return out;
}
}  // namespace

TEST_CASE("an adapter run's frozen base made one weight at a time is the whole-model path's, bit for bit") {
  llm::testing::TempDir dir("frozen_start");
  const std::string hf = (dir.path / "hf").string();
  llm::LlamaModel source(narrow_model(false), llm::Device::cpu(), 1234);
  llm::save_hf_model(source, hf, llm::DType::bf16, {256, 257});
  for (const std::string quant : {"", "nf4", "int8"})
    for (const std::string& from : {std::string(), hf})
      for (const llm::DType dtype : {llm::DType::f32, llm::DType::bf16}) {
        CAPTURE(quant);
        CAPTURE(from);
        CAPTURE(llm::dtype_name(dtype));
        const FrozenBase whole = frozen_base(false, from, quant, dtype), sharded = frozen_base(true, from, quant, dtype);
        CHECK(whole.bytes == sharded.bytes);
        CHECK(whole.offsets == sharded.offsets);
      }
}

TEST_CASE("ZeRO-3's sharded start-up of LoRA, QLoRA, 8-bit LoRA and DoRA: ZeRO-2's losses and merged base, seeded and from HF") {
  std::string adapter;
  SUBCASE("lora") { adapter = "adapter: lora\nmerge_lora: true\n"; }
  SUBCASE("qlora") { adapter = "adapter: qlora\nload_in_4bit: true\n"; }
  SUBCASE("lora, load_in_8bit") { adapter = "adapter: lora\nload_in_8bit: true\nmerge_lora: true\n"; }
  // DoRA: each magnitude starts from its weight while the start-up holds it whole.
  SUBCASE("lora, DoRA") { adapter = "adapter: lora\npeft_use_dora: true\nmerge_lora: true\n"; }
  SUBCASE("qlora, DoRA") { adapter = "adapter: qlora\nload_in_4bit: true\npeft_use_dora: true\n"; }
  for (const bool from_hf : {false, true}) {
    CAPTURE(adapter);
    CAPTURE(from_hf);
    Workspace zero2("astart_z2"), zero3("astart_z3");
    std::string model = model_keys(narrow_model(false));
    if (from_hf) {
      const std::string dir = (zero2.dir / "hf").string();
      llm::LlamaModel source(narrow_model(false), llm::Device::cpu(), 1234);
      llm::save_hf_model(source, dir, llm::DType::bf16, {256, 257});
      model = "base_model: " + dir + "\n";
    }
    const std::string cfg = "max_steps: 3\nval_set_size: 0\nlora_r: 4\nlora_target_linear: true\n" + adapter;
    Run a = run_train(zero2.config(cfg + "zero_stage: 2\n", model), mpirun(2));
    REQUIRE_MESSAGE(a.exit_code == 0, a.output);
    Run b = run_train(zero3.config(cfg + "zero_stage: 3\n", model), mpirun(2));
    REQUIRE_MESSAGE(b.exit_code == 0, b.output);
    CHECK_MESSAGE(b.output.find("ZeRO-3 start-up: each weight made whole on the host alone") != std::string::npos,
                  b.output);
    CHECK(train_records(zero2.out("metrics.jsonl")) == train_records(zero3.out("metrics.jsonl")));
    if (adapter.find("merge_lora") != std::string::npos)
      CHECK(read_file(zero2.out("merged/model.safetensors")) == read_file(zero3.out("merged/model.safetensors")));
  }
}

TEST_CASE("ZeRO-3's sharded start-up of an adapter run holds about one whole weight beside the shards") {
  // The width-256 model of the test above (largest weight 0.5 MiB, 9.3 MiB in f32).
  const std::string wide = "base_model: tiny\nhidden_size: 256\nintermediate_size: 512\nnum_hidden_layers: 4\n"
                           "num_attention_heads: 4\nnum_key_value_heads: 2\n";
  // The weight in f32 and beside it, quantised, its codes and scales (a quarter of it in int8).
  const std::pair<std::string, int> cases[] = {{"adapter: lora\n", 4},
                                               {"adapter: qlora\nload_in_4bit: true\n", 2},
                                               {"adapter: lora\nload_in_8bit: true\n", 2}};
  for (const std::pair<std::string, int>& c : cases) {
    CAPTURE(c.first);
    CAPTURE(c.second);
    Workspace ws("astart_rise");
    Run r = run_train(ws.config("max_steps: 1\nval_set_size: 0\nzero_stage: 3\nmicro_batch_size: 1\n"
                                "gradient_accumulation_steps: 1\nlora_r: 4\nlora_target_linear: true\n" + c.first,
                                wide), mpirun(c.second));
    REQUIRE_MESSAGE(r.exit_code == 0, r.output);
    const double rise = number_after(r.output, "host memory rose"), largest = number_after(r.output, "the largest weight");
    MESSAGE(c.first << c.second << " ranks: host memory rose " << rise << " MiB (largest weight " << largest << " MiB)");
    CHECK(largest == doctest::Approx(0.5));
    CHECK(rise <= 1.3 * largest);
  }
}

// (An adapter run's ZeRO-3 resume reads its adapters whole, which every rank keeps, and its slices
// of their moments through the same reader: test_distributed's adapter resumes are exact.)
TEST_CASE("a ZeRO-3 resume reads only each rank's slices: exact, with f32 and with 8-bit AdamW") {
  // The width-256 model (9.3 MiB in f32) for f32 AdamW, so that slices and the checkpoint's size
  // differ clearly; the small model for 8-bit (its embedding's codes and absmax split between the
  // ranks). Each rank reads half the model and half the moments.
  const std::string wide = "base_model: tiny\nhidden_size: 256\nintermediate_size: 512\nnum_hidden_layers: 4\n"
                           "num_attention_heads: 4\nnum_key_value_heads: 2\n";
  struct Case {
    std::string name, cfg;
  };
  const Case cases[] = {{"f32 AdamW", wide}, {"8-bit AdamW", "optimizer: adamw_8bit\n" + kSmallModel}};
  for (const Case& c : cases) {
    CAPTURE(c.name);
    Workspace straight("sliced_straight"), resumed("sliced_resumed");
    std::string output;
    check_resume_exact(straight, resumed, "max_steps: 6\nsave_steps: 3\nval_set_size: 0\nzero_stage: 3\n" + c.cfg,
                       &output);
    const std::string ckpt = resumed.out("step_000003");
    const double files = static_cast<double>(fs::file_size(ckpt + "/model.bin") + fs::file_size(ckpt + "/optimizer.bin"));
    const double read = number_after(output, "model.bin and optimizer.bin") * 1048576.0;
    const double rise = number_after(output, "host memory rising") * 1048576.0;
    MESSAGE(c.name << ": a rank read " << read / 1048576.0 << " MiB of the checkpoint's " << files / 1048576.0
                   << " MiB; host memory rose " << rise / 1048576.0 << " MiB");
    CHECK(read <= 0.51 * files);
    CHECK(rise < 0.25 * files);
  }
}

TEST_CASE("a ZeRO-3 save holds one gathered unit at a time in host memory, and its checkpoint resumes exactly") {
  // The width-256 model: 9.3 MiB in f32 and its AdamW moments twice that, the largest unit (a
  // decoder layer) 2.25 MiB. A save that gathered the weights and the moments whole before writing
  // them would raise rank 0's host memory by all three, 28 MiB.
  const std::string wide = "base_model: tiny\nhidden_size: 256\nintermediate_size: 512\nnum_hidden_layers: 4\n"
                           "num_attention_heads: 4\nnum_key_value_heads: 2\n";
  Workspace straight("save_straight"), resumed("save_resumed");
  const std::string output =
      check_resume_exact(straight, resumed, "max_steps: 6\nsave_steps: 3\nval_set_size: 0\nzero_stage: 3\n" + wide);
  const double rise = number_after(output, "the save raised host memory");
  const double largest = number_after(output, "the largest bucket"), whole = number_after(output, "the whole f32 model");
  MESSAGE("save: host memory rose " << rise << " MiB (largest unit " << largest << " MiB, model " << whole
                                    << " MiB, model and moments " << 3 * whole << " MiB)");
  CHECK(largest == doctest::Approx(2.25).epsilon(0.01));
  CHECK(rise <= largest + 0.05);
  CHECK(whole > 9.0);
  // The final export streams the same way: every weight there, the last checkpoint's values (f32
  // on the CPU), however the buckets came.
  const llm::SafetensorsDir exported(straight.out());
  const llm::TensorFile saved = llm::read_tensor_file(straight.out("step_000006/model.bin"));
  CHECK(exported.names().size() == saved.tensors.size());
  for (const llm::NamedTensor& t : saved.tensors) {
    CAPTURE(t.name);
    CHECK(exported.read(t.name, llm::DType::f32).to_floats() == t.tensor.to_floats());
  }
}

TEST_CASE("auto-resume under ZeRO-3: rank 0 picks the newest valid checkpoint, every rank resumes from it") {
  Workspace ws("sliced_auto");
  const std::string cfg = "save_steps: 1\nval_set_size: 0\nzero_stage: 3\nauto_resume_from_checkpoints: true\n";
  Run a = run_train(ws.config("max_steps: 2\n" + cfg), mpirun(2));
  REQUIRE_MESSAGE(a.exit_code == 0, a.output);
  std::string bytes = read_file(ws.out("step_000002/model.bin"));
  bytes[0] = 'X';  // the newest is damaged: skipped with a warning
  write_file(ws.out("step_000002/model.bin"), bytes);
  Run b = run_train(ws.config("max_steps: 3\n" + cfg), mpirun(2));
  REQUIRE_MESSAGE(b.exit_code == 0, b.output);
  CHECK(b.output.find("skipping " + ws.out("step_000002")) != std::string::npos);
  CHECK_MESSAGE(b.output.find("resumed from " + ws.out("step_000001") + " at step 1") != std::string::npos, b.output);
}

TEST_CASE("a ZeRO-3 resume refuses a damaged byte in a tensor no rank reads whole, naming it") {
  Workspace ws("sliced_damaged");
  Run a = run_train(ws.config("max_steps: 2\nsave_steps: 2\nval_set_size: 0\nzero_stage: 3\n"), mpirun(2));
  REQUIRE_MESSAGE(a.exit_code == 0, a.output);
  // The embedding's (tied, with the final norm: unit 0) first moment, sliced between the two ranks:
  // its last byte lies in rank 1's part.
  const std::string path = ws.out("step_000002") + "/optimizer.bin";
  std::string bytes = read_file(path);
  uint32_t length = 0;
  std::memcpy(&length, bytes.data() + 12, 4);
  const nlohmann::json header = nlohmann::json::parse(bytes.substr(20, length));
  for (const auto& t : header["tensors"])
    if (t["name"] == "model.embed_tokens.weight.exp_avg")
      bytes[t["offset"].get<size_t>() + t["bytes"].get<size_t>() - 1] ^= 0x10;
  write_file(path, bytes);
  Run b = run_train("--resume " + ws.out("step_000002") + " --max_steps 3", mpirun(2));
  CHECK(b.exit_code == 2);
  CHECK_MESSAGE(b.output.find(path + ": tensor model.embed_tokens.weight.exp_avg: checksum mismatch") !=
                    std::string::npos, b.output);
}

TEST_CASE("untied embeddings under ZeRO-3: own units for the embedding and the head, one rank's losses") {
  Workspace one("untied_one");
  Run a = run_train(one.config(kSteps + "micro_batch_size: 4\n", kUntied));
  REQUIRE_MESSAGE(a.exit_code == 0, a.output);
  for (int ranks : {2, 4}) {
    for (const std::string checkpointing : {"false", "true"}) {
      CAPTURE(ranks);
      CAPTURE(checkpointing);
      Workspace sharded("untied_z3");
      Run b = run_train(sharded.config(kSteps + "zero_stage: 3\nmicro_batch_size: " + std::to_string(4 / ranks) +
                                       "\ngradient_checkpointing: " + checkpointing + "\n", kUntied),
                        mpirun(ranks));
      REQUIRE_MESSAGE(b.exit_code == 0, b.output);
      CHECK_MESSAGE(b.output.find("ZeRO stage 3: 4 units of weights gathered per use (the embedding; each decoder "
                                  "layer; the final norm with lm_head)") != std::string::npos, b.output);
      // Prefetch follows the new order: no all-gather started for a unit that did not come next.
      CHECK(unused_prefetches(b.output) == 0);
      check_losses_close(one.out("metrics.jsonl"), sharded.out("metrics.jsonl"), 1e-5);
    }
  }
}

TEST_CASE("untied embeddings under ZeRO-3: resume is exact") {
  Workspace straight("untied_straight"), resumed("untied_resumed");
  check_resume_exact(straight, resumed, kSteps + "zero_stage: 3\ngradient_checkpointing: true\n" + kUntied);
}

TEST_CASE("untied embeddings under ZeRO-3 with LoRA: the frozen base in the same units, ZeRO-2's losses") {
  // modules_to_save: embed_tokens trains whole, which leaves the embedding's frozen unit empty.
  std::string saved;
  SUBCASE("the base frozen whole") {}
  SUBCASE("embed_tokens trained whole") { saved = "lora_modules_to_save:\n  - embed_tokens\n"; }
  const std::string cfg = kSteps + "adapter: lora\nlora_r: 4\nlora_target_linear: true\n" + saved + kUntied;
  Workspace zero2("untied_lora2"), zero3("untied_lora3");
  Run a = run_train(zero2.config(cfg + "zero_stage: 2\n"), mpirun(2));
  REQUIRE_MESSAGE(a.exit_code == 0, a.output);
  Run b = run_train(zero3.config(cfg + "zero_stage: 3\n"), mpirun(2));
  REQUIRE_MESSAGE(b.exit_code == 0, b.output);
  CHECK_MESSAGE(b.output.find("ZeRO stage 3 of the frozen base: 4 units") != std::string::npos, b.output);
  CHECK(unused_prefetches(b.output) == 0);
  CHECK(train_records(zero2.out("metrics.jsonl")) == train_records(zero3.out("metrics.jsonl")));
}

TEST_CASE("LoRA+ under ZeRO-2: each shard's segments take their tensor's learning rate, as without ZeRO") {
  const std::string lora_cfg = kSteps + "adapter: lora\nlora_r: 4\nlora_target_linear: true\n" + kUntied;
  const std::string cfg = lora_cfg + "loraplus_lr_ratio: 16\n";
  Workspace plain("loraplus_ddp"), sharded("loraplus_zero2"), lora("lora_ddp");
  Run a = run_train(plain.config(cfg), mpirun(2));
  REQUIRE_MESSAGE(a.exit_code == 0, a.output);
  CHECK(a.output.find("LoRA+: lora_B and 1-D tensors learn at 16 x learning_rate") != std::string::npos);
  Run b = run_train(sharded.config(cfg + "zero_stage: 2\n"), mpirun(2));
  REQUIRE_MESSAGE(b.exit_code == 0, b.output);
  check_losses_close(plain.out("metrics.jsonl"), sharded.out("metrics.jsonl"), 1e-5);
  // And LoRA+ is not plain LoRA: B's larger rate moves the losses after the first update.
  Run c = run_train(lora.config(lora_cfg), mpirun(2));
  REQUIRE_MESSAGE(c.exit_code == 0, c.output);
  CHECK(train_records(lora.out("metrics.jsonl")) != train_records(plain.out("metrics.jsonl")));
}

TEST_CASE("untied embeddings under ZeRO-3: the planned peak per rank within 10% of the measured") {
  // A vocabulary of 4096 at width 256: the embedding and lm_head (1M parameters each) outweigh a
  // block (0.59M), so keeping them whole through the step would show.
  const std::string wide = "base_model: tiny\nhidden_size: 256\nintermediate_size: 512\nnum_hidden_layers: 4\n"
                           "num_attention_heads: 4\nnum_key_value_heads: 2\nvocab_size: 4096\n"
                           "tie_word_embeddings: false\n";
  for (const std::string checkpointing : {"false", "true"}) {
    CAPTURE(checkpointing);
    Workspace ws("untied_plan");
    Run r = run_train(ws.config("max_steps: 2\nval_set_size: 0\nzero_stage: 3\ngradient_checkpointing: " +
                                checkpointing + "\n", wide), mpirun(2));
    REQUIRE_MESSAGE(r.exit_code == 0, r.output);
    const double planned = number_after(r.output, "peak per rank"), measured = number_after(r.output, "\\(peak");
    MESSAGE("recompute " << checkpointing << ": planned " << planned << " MiB, measured " << measured << " MiB");
    CHECK_MESSAGE(std::fabs(planned - measured) <= 0.10 * measured, r.output);
  }
}
