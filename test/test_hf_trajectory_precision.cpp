// Training trajectories against transformers' own Trainer (test/hf_trajectory_fixture.h) for the
// low-precision keys: Axolotl's qat on torchao's fake quantisers (each scheme), fp8 on accelerate's
// Float8Linear model, and bfloat16's bf16 weights and moments. Their roundings to levels make
// later steps agree less closely than test_hf_trajectory's f32 cases (each case says how closely).
#include "test/hf_trajectory_fixture.h"

using namespace llm::testing;

// Axolotl's qat on torchao 0.18's fake quantisers (every linear and lm_head: int8 inputs per token,
// int4 weights in groups of 32), full fine-tuning untied, tied with fake_quant_after_n_steps (the
// callback's switch), and LoRA over the fake-quantised base. The first step (and the plain steps
// before fake_quant_after_n_steps) start from the same weights on both sides: exact as any other
// case; the later ones within kQatLater (test_qat holds each gradient to torchao's).
TEST_CASE("qat: the Trainer on torchao's fake-quantised model, step by step (full, delayed, LoRA)") {
  const json f = fixture();
  for (const auto& [name, model] : {std::pair<const char*, const char*>{"qat_untied", "untied"},
                                    {"qat_tied_after", "tied"}, {"qat_lora", "untied"}}) {
    CAPTURE(name);
    const json& c = f.at("cases").at(name);
    const json& q = c.at("qat");
    const std::string qat = "qat:\n  activation_dtype: int8\n  weight_dtype: int4\n  group_size: " + q.at("group_size").dump() +
                            "\n  fake_quant_after_n_steps: " + q.at("fake_quant_after_n_steps").dump() + "\n";
    const std::string lora = std::string(name) == "qat_lora" ? lora_yaml(f.at("settings").at("lora")) : "";
    check_trajectory(model, qat + lora, c.at("steps"), f.at("settings"), "train",
                     std::max<int64_t>(1, q.at("fake_quant_after_n_steps").get<int64_t>()));
  }
}

// Axolotl's other qat schemes on torchao 0.18: int4 weights for fp8 activations alone (tied), under
// e4m3 inputs (untied), e4m3 inputs and weights (untied), mxfp4 inputs and weights (untied); for
// fp8 inputs the untied model's padding row drawn, as an all-zero input row turns NaN there on
// both sides. Only the first step starts from the same weights: from step 2 on the last bits an
// update leaves apart (its gradients summed in other orders) may move a weight across a level.
// Measured 2026-12-01: on one machine the first two steps within 1.5e-7 (the third of fp8 / fp8
// too), on another (an AVX-512 EPYC, whichever OpenBLAS kernels it ran) int4-for-fp8's second 8.6e-5
// loss and 7.6e-4 grad norm; the later ones within kFp8GradientsLater; mxfp4 the first step within
// 6e-10, then within 3.0e-3 loss and 3.8e-2 grad norm: e2m1 keeps 3 levels an octave, so the last
// bits a step leaves apart flip values by up to a third from step 2 on.
TEST_CASE("qat's int4-for-fp8, fp8 and mxfp4 schemes: the Trainer on torchao's fake-quantised model, step by step") {
  constexpr LaterSteps kMxfp4Later{5e-3, 1e-1};
  const json f = fixture();
  const std::tuple<const char*, const char*, int64_t, LaterSteps> cases[] = {
      {"qat_int4", "tied", 1, kFp8GradientsLater},
      {"qat_fp8_int4", "untied_pad_row", 1, kFp8GradientsLater},
      {"qat_fp8_fp8", "untied_pad_row", 1, kFp8GradientsLater},
      {"qat_mxfp4", "untied", 1, kMxfp4Later}};
  for (const auto& [name, model, exact_steps, later] : cases) {
    CAPTURE(name);
    const json& q = f.at("cases").at(name).at("qat");
    const std::string activation =
        q.at("activation_dtype").is_null() ? "" : "  activation_dtype: " + q.at("activation_dtype").get<std::string>() + "\n";
    const std::string qat = "qat:\n" + activation + "  weight_dtype: " + q.at("weight_dtype").get<std::string>() +
                            "\n  group_size: " + q.at("group_size").dump() + "\n";
    check_trajectory(model, qat, f.at("cases").at(name).at("steps"), f.at("settings"), "train", exact_steps, kFileOrder,
                     "data.jsonl", later);
  }
}

// Axolotl 0.19's own ternary QAT (BitNet b1.58 block linears, lm_head in full precision): weights
// only (untied) and with int8 inputs (tied). The first step starts from the same weights; later
// ones within kTernaryLater, as a weight at the middle between two levels may round either way
// once an update leaves the last bits apart. Measured 2026-12-02 over the 10 steps: 8.5e-8 loss
// and 1.9e-7 grad norm (untied), 9.2e-7 and 1.6e-6 (tied, int8 inputs).
TEST_CASE("qat ternary: the Trainer on Axolotl's ternary model, step by step") {
  constexpr LaterSteps kTernaryLater{1e-4, 1e-3};
  const json f = fixture();
  for (const auto& [name, model] : {std::pair<const char*, const char*>{"qat_ternary", "untied"},
                                    {"qat_ternary_int8", "tied"}}) {
    CAPTURE(name);
    const json& q = f.at("cases").at(name).at("qat");
    const std::string qat = "qat:\n  weight_dtype: ternary\n" +
                            (q.at("activation_dtype").is_null() ? std::string() : "  activation_dtype: int8\n");
    check_trajectory(model, qat, f.at("cases").at(name).at("steps"), f.at("settings"), "train", 1, kFileOrder,
                     "data.jsonl", kTernaryLater);
  }
}

// bfloat16: the untied model's weights rounded to bf16, AdamW's moments bf16, each update in f32
// and rounded back (tools/hf_trajectory_cases.py's AdamWOnBf16, whose arithmetic the script holds
// to torch's fused AdamW kernel). Forward and backward are f32 on both sides: the first step is
// exact as the others; later ones within the flips of values on a tie between two bf16 values.
TEST_CASE("bfloat16: the Trainer on bf16 weights and moments, step by step") {
  const json f = fixture();
  check_trajectory("untied", "bfloat16: true\n", steps_of(f, "bfloat16"), f.at("settings"), "train", 1);
}

// Axolotl's fp8: the untied model converted by accelerate (torchao's Float8Linear on every linear
// but block 0's q_proj and lm_head). The first step starts from the same weights: exact as the
// others; later ones within the rounding flips (as qat's: values on a tie between fp8 codes).
TEST_CASE("fp8: the Trainer on accelerate's Float8Linear model, step by step") {
  const json f = fixture();
  check_trajectory("untied", "fp8: true\n", steps_of(f, "fp8"), f.at("settings"), "train", 1);
}
