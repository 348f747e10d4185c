// `bfloat16: true` (Axolotl's bf16 model, no f32 master copy) on the CPU: every weight and AdamW
// moment kept in bf16 through training, checkpoints and the export; a resume under two ranks
// continues exactly; recompute changes no bit; each update is the bf16 rounding of an f32 AdamW
// step (test_optimizer checks the element arithmetic); `bf16: full` is the same; the refusals.
#include <cstring>

#include "io/safetensors.h"
#include "test/train_fixture.h"

using namespace llm;
using namespace llm::testing;

namespace {

const std::string kPureBf16 = "bfloat16: true\nweight_decay: 0.1\nsave_steps: 3\nmax_steps: 6\n";

// Every f32 value of `t` is a bf16 value (its low 16 bits zero): what a bf16 weight widened gives.
bool all_bf16_values(const Tensor& t) {
  for (float x : t.to_floats()) {
    uint32_t bits;
    std::memcpy(&bits, &x, 4);
    if (bits & 0xffffu) return false;
  }
  return true;
}

}  // namespace

TEST_CASE("bfloat16: weights and moments stay bf16 in checkpoints and the export; the loss follows f32's") {
  Workspace pure("bf16_pure"), full("bf16_f32");
  Run r = run_train(pure.config(kPureBf16));
  REQUIRE_MESSAGE(r.exit_code == 0, r.output);
  CHECK(r.output.find("precision: bf16 weights and AdamW moments, f32 compute and gradients, no master copy") !=
        std::string::npos);
  CHECK(r.output.find("master weights") != std::string::npos);  // the memory plan's row says none
  const TensorFile model = read_tensor_file(pure.out("step_000006/model.bin"));
  REQUIRE(!model.tensors.empty());
  for (const auto& entry : model.tensors) {
    CAPTURE(entry.name);
    CHECK(entry.tensor.dtype() == DType::bf16);
  }
  const TensorFile optimizer = read_tensor_file(pure.out("step_000006/optimizer.bin"));
  int moments = 0;
  for (const auto& entry : optimizer.tensors) {
    CAPTURE(entry.name);
    CHECK(entry.tensor.dtype() == DType::bf16);
    moments++;
  }
  CHECK(moments == 2 * static_cast<int>(model.tensors.size()));
  // The weights moved, and the export is those bf16 weights as HF writes a bf16 model.
  const TensorFile first = read_tensor_file(pure.out("step_000003/model.bin"));
  CHECK(std::memcmp(first.tensors[0].tensor.data_ptr(), model.tensors[0].tensor.data_ptr(),
                    model.tensors[0].tensor.nbytes()) != 0);
  const SafetensorsDir exported(pure.out());
  for (const auto& entry : model.tensors) {
    CAPTURE(entry.name);
    const SafetensorsEntry* e = exported.find(entry.name);
    REQUIRE(e);
    CHECK(e->dtype == "BF16");
    const Tensor saved = exported.read(entry.name, DType::bf16);
    CHECK(std::memcmp(saved.data_ptr(), entry.tensor.data_ptr(), saved.nbytes()) == 0);
  }
  CHECK(read_file(pure.out("config.json")).find("\"torch_dtype\": \"bfloat16\"") != std::string::npos);

  // The same run with f32 weights: bf16's rounding of the weights and moments moves the losses a
  // little (measured: within 0.3% over these 6 steps), never far.
  Run f = run_train(full.config("weight_decay: 0.1\nsave_steps: 3\nmax_steps: 6\n"));
  REQUIRE_MESSAGE(f.exit_code == 0, f.output);
  check_losses_close(pure.out("metrics.jsonl"), full.out("metrics.jsonl"), 0.01);
}

TEST_CASE("bfloat16: recompute changes no bit; a resume under two ranks continues exactly") {
  Workspace plain("bf16_plain"), recomputed("bf16_recompute");
  Run a = run_train(plain.config(kPureBf16));
  REQUIRE_MESSAGE(a.exit_code == 0, a.output);
  Run b = run_train(recomputed.config(kPureBf16 + "gradient_checkpointing: true\n"));
  REQUIRE_MESSAGE(b.exit_code == 0, b.output);
  CHECK(train_records(plain.out("metrics.jsonl")) == train_records(recomputed.out("metrics.jsonl")));
  check_same_model(plain.out("step_000006"), recomputed.out("step_000006"));

  Workspace straight("bf16_straight"), resumed("bf16_resumed");
  check_resume_exact(straight, resumed, kPureBf16);
}

TEST_CASE("bfloat16: the weights a run starts from are base_model's rounded to bf16") {
  Workspace base("bf16_base"), tuned("bf16_tuned");
  Run make = run_train(base.config("max_steps: 1\n"));  // an f32 export to start from
  REQUIRE_MESSAGE(make.exit_code == 0, make.output);
  const std::string from = "base_model: " + base.out() + "\n";
  // A learning rate of 1e-30 moves no weight (f32 absorbs the step), so the first checkpoint holds
  // the starting weights themselves.
  Run r = run_train(tuned.config("bfloat16: true\nmax_steps: 1\nsave_first_step: true\nlearning_rate: 1e-30\n"
                                 "warmup_steps: 0\n",
                                 from));
  REQUIRE_MESSAGE(r.exit_code == 0, r.output);
  const SafetensorsDir f32(base.out());
  const TensorFile start = read_tensor_file(tuned.out("step_000001/model.bin"));
  for (const auto& entry : start.tensors) {
    CAPTURE(entry.name);
    const Tensor rounded = f32.read(entry.name, DType::f32).to(DType::bf16);
    CHECK(std::memcmp(rounded.data_ptr(), entry.tensor.data_ptr(), rounded.nbytes()) == 0);
    CHECK(all_bf16_values(entry.tensor.to(DType::f32)));
  }
}

// Axolotl's `bf16: full` loads the model in bf16 and trains it without autocast: bfloat16's run.
TEST_CASE("bf16: full trains as bfloat16: true") {
  Workspace ws("bf16_full");
  Run r = run_train(ws.config("bf16: full\nmax_steps: 1\n"));
  REQUIRE_MESSAGE(r.exit_code == 0, r.output);
  CHECK(r.output.find("no master copy (bf16: true, bfloat16: true") != std::string::npos);
  const TensorFile model = read_tensor_file(ws.out("step_000001/model.bin"));
  CHECK(model.tensors.front().tensor.dtype() == DType::bf16);
}

TEST_CASE("bfloat16: what keeps f32 master weights is refused in one line, and so is a resume across the setting") {
  Workspace ws("bf16_refused");
  const std::pair<std::string, std::string> cases[] = {
      {"adapter: lora\nlora_target_linear: true\n", "bfloat16: expected no adapter with it"},
      {"zero_stage: 1\n", "bfloat16: expected zero_stage 0 with it"},
      {"optimizer: adamw_bnb_8bit\n", "bfloat16: expected an AdamW optimizer with full moments"},
      {"optimizer: adopt_adamw\n", "bfloat16: expected an AdamW optimizer with full moments"},
      {"optimizer: lion_32bit\n", "bfloat16: expected an AdamW optimizer with full moments"},
      {"fp8: true\n", "bfloat16: expected no fp8 with it"},
      {"qat: {activation_dtype: int8, weight_dtype: int4, group_size: 8}\n", "bfloat16: expected no qat with it"},
  };
  for (const auto& [yaml, message] : cases) check_refused_run(ws, "max_steps: 1\nbfloat16: true\n" + yaml, message);
  check_refused_run(ws, "max_steps: 1\nfloat16: true\n", "float16");

  // A checkpoint of f32 weights resumed with bfloat16 (--resume keeps the checkpoint's setting; a
  // config naming it in resume_from_checkpoint does not): one line naming the file and tensor.
  Run f32 = run_train(ws.config("max_steps: 2\nsave_steps: 1\n"));
  REQUIRE_MESSAGE(f32.exit_code == 0, f32.output);
  const fs::path kept = ws.dir / "f32_step_1";
  fs::rename(ws.out("step_000001"), kept);
  Run resumed = run_train(ws.config("max_steps: 2\nbfloat16: true\nresume_from_checkpoint: " + kept.string() + "\n"));
  CHECK(resumed.exit_code != 0);
  const std::string error = error_text(resumed);
  CHECK_MESSAGE(error.find("model.bin") != std::string::npos, error);
  CHECK(std::count(error.begin(), error.end(), '\n') <= 1);
}
