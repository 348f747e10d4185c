// GPU (ctest label gpu): the losses against the CPU reference through test/gpu_op_compare.h
// (test_gpu_ops' harness and tolerances): cross_entropy, the chunked lm_head losses
// (linear_cross_entropy, with EAFT's and DFT's weights; linear_sequence_logps), and both on an
// f32 master under bf16. Without a CUDA device it says so and exits 77 (skipped).
#define DOCTEST_CONFIG_IMPLEMENT
#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "engine/ops.h"
#include "test/gpu_op_compare.h"

using namespace llm;
using namespace llm::testing;

TEST_CASE("cross_entropy: ignored rows, all ignored, out-of-range targets") {
  const int64_t N = 13, V = 1031;
  Tensor logits = randn({N, V}, 3.0f);
  Tensor targets = Tensor::from_ints({3, -100, 1030, 0, 5, -100, 7, 1, 999, 2, 500, 64, 65}, {N});
  for (DType t : kDtypes)
    compare_op("cross_entropy",
               [](const std::vector<Tensor>& in) { return cross_entropy(in[0], in[1]); },
               {logits, targets}, t);
  // V = 1031 leaves rows off the 16-byte words: the element-wise kernels. 1028 is 257 words of 4
  // f32 (bf16 stays element-wise: 8 a word), each thread's one word its last (512 threads a row);
  // 8804 is 2201 words of 4 f32 and 8800 is 1100 of 8 bf16 (cuda/vec.cuh): the pairs of words in
  // flight, then a thread's last word alone.
  Tensor targets4 = Tensor::from_ints({3, -100, 1027, 0, 5, -100, 7, 1, 999, 2, 500, 64, 65}, {N});
  for (DType t : kDtypes)
    compare_op("cross_entropy (4-wide f32)",
               [](const std::vector<Tensor>& in) { return cross_entropy(in[0], in[1]); },
               {logits.narrow(1, 0, V - 3).contiguous(), targets4}, t);
  Tensor wide = randn({N, 8804}, 3.0f);
  Tensor targets_wide = Tensor::from_ints({3, -100, 8799, 0, 5, -100, 7, 1, 4500, 2, 8000, 64, 65}, {N});
  for (const int64_t width : {int64_t{8804}, int64_t{8800}})
    for (DType t : kDtypes)
      compare_op("cross_entropy (16-byte words)",
                 [](const std::vector<Tensor>& in) { return cross_entropy(in[0], in[1]); },
                 {wide.narrow(1, 0, width).contiguous(), targets_wide}, t);
  // A NaN logit makes the loss NaN, as on the CPU: also where it is the first value its thread
  // sees (column 0, before any finite one), and in a row of -inf and NaN alone.
  for (const int64_t width : {V, V - 3}) {
    std::vector<float> values = logits.narrow(1, 0, width).contiguous().to_floats();
    values[0] = NAN;
    for (int64_t j = 0; j < width; j++) values[width + j] = j == 5 ? NAN : -INFINITY;
    const Tensor with_nan = Tensor::from_floats(values, {N, width}), target = Tensor::from_ints({3}, {1});
    for (const int64_t row : {0, 1}) {
      CAPTURE(width);
      CAPTURE(row);
      const Tensor one = with_nan.narrow(0, row, 1).contiguous();
      CHECK(std::isnan(cross_entropy(one, target).item()));  // the CPU (f32 only)
      for (DType t : kDtypes) CHECK(std::isnan(cross_entropy(one.to(kGpu).to(t), target.to(kGpu)).item()));
    }
  }
  Tensor none = Tensor::from_ints(std::vector<int32_t>(N, -100), {N}).to(kGpu);
  CHECK(cross_entropy(logits.to(kGpu), none).item() == 0.0f);
  Tensor bad = Tensor::from_ints(std::vector<int32_t>(N, int32_t(V)), {N}).to(kGpu);
  CHECK_THROWS_WITH(cross_entropy(logits.to(kGpu), bad).item(),
                    doctest::Contains("target 1031 outside the vocabulary of 1031"));
}

TEST_CASE("linear_cross_entropy: the chunked lm_head loss on CUDA") {
  const int64_t N = 13, C = 33;
  Tensor h = randn({N, C});
  Tensor targets = Tensor::from_ints({3, -100, 10, 0, 5, -100, 7, 1, 2, -100, 4, 64, 6}, {N});
  for (int64_t V : {65, 68})  // element-wise and 4-wide loss kernels
    for (DType t : kDtypes)
      compare_op("linear_cross_entropy",
                 [](const std::vector<Tensor>& in) {
                   return linear_cross_entropy(in[0], in[1], in[2], kIgnoreIndex, 4);
                 },
                 {h, randn({V, C}), targets}, t);
}

// EAFT: the top-k entropy weights (each thread's k best, merged by k block maxima) and the
// weighted loss; ties among a row's largest logits (the repeated column) count once each. DFT:
// each row's target probability (target_prob_weights).
TEST_CASE("linear_cross_entropy with EAFT (topk_entropy_weights) and DFT (target_prob_weights) on CUDA") {
  const int64_t N = 13, C = 33, V = 300;
  Tensor h = randn({N, C}), w = randn({V, C});
  std::vector<float> rows = w.to_floats();
  std::copy(rows.begin(), rows.begin() + C, rows.begin() + 5 * C);  // vocab rows 0 and 5 equal: tied logits
  w = Tensor::from_floats(rows, {V, C});
  Tensor targets = Tensor::from_ints({3, -100, 10, 0, 5, -100, 7, 1, 2, -100, 4, 299, 6}, {N});
  for (int64_t k : {1, 20, 64})
    for (DType t : kDtypes) {
      CAPTURE(k);
      compare_op("linear_cross_entropy eaft",
                 [k](const std::vector<Tensor>& in) {
                   return linear_cross_entropy(in[0], in[1], in[2], kIgnoreIndex, 4, Tensor(), {k, 0.7f});
                 },
                 {h, w, targets}, t);
    }
  // DFT weighs each row's loss by its target probability p = exp(z_t - lse), which turns the
  // absolute error of bf16 logits (up to 2^-9 |z|, z_t's and lse's) into a relative error of p:
  // unit-scale logits (h / sqrt(C), as a trained model's) and a tolerance that adds it. On an
  // H200, with logits of std sqrt(C), p differed by 2.8% relative (2026-11-30).
  TokenWeighting dft;
  dft.dft = true;
  std::vector<float> hs = h.to_floats();
  for (float& x : hs) x /= std::sqrt(static_cast<float>(C));
  const Tensor h_unit = Tensor::from_floats(hs, {N, C});
  const std::vector<float> ws = w.to_floats();
  float max_logit = 0.0f;
  for (int64_t i = 0; i < N; i++)
    for (int64_t j = 0; j < V; j++) {
      float z = 0.0f;
      for (int64_t c = 0; c < C; c++) z += hs[i * C + c] * ws[j * C + c];
      max_logit = std::max(max_logit, std::fabs(z));
    }
  const float dft_tol = kTolBf16 + 2.0f * std::ldexp(max_logit, -9);
  CAPTURE(dft_tol);
  for (DType t : kDtypes)
    compare_op("linear_cross_entropy dft",
               [dft](const std::vector<Tensor>& in) {
                 return linear_cross_entropy(in[0], in[1], in[2], kIgnoreIndex, 4, Tensor(), dft);
               },
               {h_unit, w, targets}, t, dft_tol);
}

TEST_CASE("linear_sequence_logps: DPO's per-sequence log-likelihoods (scale_rows in backward) on CUDA") {
  const int64_t N = 13, C = 33, V = 65;
  Tensor h = randn({N, C}), w = randn({V, C});
  Tensor targets = Tensor::from_ints({3, -100, 10, 0, 5, -100, 7, 1, 2, -100, 4, 64, 6}, {N});
  Tensor sequences = Tensor::from_ints({0, 3, 0, 1, 1, 2, 2, 3, 3, 0, 2, 1, 0}, {N});
  for (DType t : kDtypes)
    compare_op("linear_sequence_logps",
               [](const std::vector<Tensor>& in) { return linear_sequence_logps(in[0], in[1], in[2], in[3], 4, 4); },
               {h, w, targets, sequences}, t);
  // WPO's aligned sums (dpo_use_weighting): no gradient, the CPU's values (in f32; bf16 logits
  // round log sum p^2 as they round the logits).
  // With the entropies and mean logits of the rows (TRL's entropy and logits/* metrics).
  Tensor cpu[3], gpu[3];
  SequenceRowSums cpu_sums, gpu_sums;
  cpu_sums.aligned = &cpu[0], cpu_sums.entropy = &cpu[1], cpu_sums.mean_logit = &cpu[2];
  gpu_sums.aligned = &gpu[0], gpu_sums.entropy = &gpu[1], gpu_sums.mean_logit = &gpu[2];
  linear_sequence_logps(h, w, targets, sequences, 4, 4, Tensor(), cpu_sums);
  linear_sequence_logps(h.to(kGpu), w.to(kGpu), targets.to(kGpu), sequences, 4, 4, Tensor(), gpu_sums);
  check_close("aligned sums", gpu[0], cpu[0], tolerance(DType::f32));
  check_close("entropy sums", gpu[1], cpu[1], tolerance(DType::f32));
  check_close("mean logit sums", gpu[2], cpu[2], tolerance(DType::f32));
}

// The CUDA kernel's argmax order: a row of 1000 (several strides of a block) with its maximum in
// each thread's stride in turn, ties and NaNs, in f32 and bf16 (whose values are exact here).
TEST_CASE("argmax_hits on CUDA: the CPU's hits, ties to the first, a NaN winning") {
  const int64_t N = 6, V = 1000;
  std::vector<float> logits(N * V);
  for (int64_t i = 0; i < N * V; i++) logits[i] = static_cast<float>((i * 37) % 101) / 8.0f;  // 0 .. 12.5
  const float nan = std::nanf("");
  logits[0 * V + 700] = 20;                             // row 0: one maximum, late in the row
  logits[1 * V + 3] = logits[1 * V + 900] = 20;         // row 1: a tie, the first wins
  logits[2 * V + 3] = logits[2 * V + 900] = 20;         // row 2: the same tie, aimed at the second
  logits[3 * V + 999] = nan;                            // row 3: a NaN wins
  logits[4 * V + 10] = nan, logits[4 * V + 500] = nan;  // row 4: the first NaN wins
  const std::vector<int32_t> targets = {700, 3, 900, 999, 500, kIgnoreIndex};
  for (DType t : kDtypes) {
    const std::string dtype_str = dtype_name(t);
    CAPTURE(dtype_str);
    const Tensor x = Tensor::from_floats(logits, {N, V}).to(t), ids = Tensor::from_ints(targets, {N});
    Tensor cpu = Tensor::empty({N}, DType::f32), gpu = Tensor::empty({N}, DType::f32, kGpu);
    backend(Device::cpu()).argmax_hits(x.to(DType::f32), ids, kIgnoreIndex, cpu);
    backend(kGpu).argmax_hits(x.to(kGpu), ids.to(kGpu), kIgnoreIndex, gpu);
    CHECK(cpu.to_floats() == std::vector<float>{1, 1, 0, 1, 0, 0});
    CHECK(gpu.to_floats() == cpu.to_floats());
  }
}

// The fused losses handed an f32 master under bf16 compute (model/llama.cpp's loss_head_weight):
// they cast it themselves and form its gradient in f32, summed over the chunks (4 rows each here)
// in f32 (engine/ops/head_weight.h); the same loss as with the weight cast before them, and
// gradients as the CPU's on the same bf16 values.
TEST_CASE("linear_cross_entropy and linear_sequence_logps on an f32 master under bf16: an f32 gradient") {
  const int64_t N = 13, C = 33, V = 65;
  const Tensor h16 = randn({N, C}).to(DType::bf16), w = randn({V, C}, 0.5f);
  const Tensor targets = Tensor::from_ints({3, -100, 10, 0, 5, -100, 7, 1, 2, -100, 4, 64, 6}, {N});
  const Tensor sequences = Tensor::from_ints({0, 3, 0, 1, 1, 2, 2, 3, 3, 0, 2, 1, 0}, {N});
  const auto losses = [&](const Tensor& hidden, const Tensor& weight) {
    return std::vector<Tensor>{linear_cross_entropy(hidden, weight, targets.to(hidden.device()), kIgnoreIndex, 4),
                               linear_sequence_logps(hidden, weight, targets.to(hidden.device()),
                                                     sequences.to(hidden.device()), 4, 4)};
  };
  for (size_t which : {0, 1}) {
    CAPTURE(which);
    Tensor master = w.to(kGpu), reference = w.to(DType::bf16).to(DType::f32);
    master.set_requires_grad(true);
    reference.set_requires_grad(true);
    // Each backward before the next graph is recorded (one backward runs the whole tape).
    const Tensor seed = which == 0 ? Tensor::full({}, 1.0f, DType::f32) : randn({4});
    const Tensor ours = losses(h16.to(kGpu), master)[which];
    backward(ours, seed.to(kGpu));
    const Tensor cpu = losses(h16.to(DType::f32), reference)[which];
    backward(cpu, seed);
    check_close("loss", ours, cpu, kTolBf16);
    REQUIRE(master.grad().dtype() == DType::f32);
    check_close("d(master)", master.grad(), reference.grad(), kTolBf16);
    // The weight cast before the loss gives the same loss.
    check_close("loss, weight cast first", losses(h16.to(kGpu), cast(w.to(kGpu), DType::bf16))[which], ours, kTolF32);
  }
}

// grad_seed (the seed backward will give, folded into the gradients the loss forms): the device
// skips the scaling pass when the seed given matches (scale_by's kernel returns on a factor of 1)
// and scales by the ratio when it does not; either way the CPU's gradients for that seed.
TEST_CASE("linear_cross_entropy's grad_seed on CUDA: the CPU's gradients for the seed given") {
  const int64_t N = 13, C = 33, V = 65;
  const Tensor h0 = randn({N, C}), w0 = randn({V, C});
  const Tensor targets = Tensor::from_ints({3, -100, 10, 0, 5, -100, 7, 1, 2, -100, 4, 64, 6}, {N});
  for (const float seed : {0.37f, 0.74f}) {
    CAPTURE(seed);
    Tensor hc = h0.clone(), wc = w0.clone(), hg = h0.to(kGpu), wg = w0.to(kGpu);
    for (Tensor* t : {&hc, &wc, &hg, &wg}) t->set_requires_grad(true);
    backward(linear_cross_entropy(hg, wg, targets.to(kGpu), kIgnoreIndex, 4, targets, {}, 0.37f),
             Tensor::full({}, seed, DType::f32, kGpu));
    backward(linear_cross_entropy(hc, wc, targets, kIgnoreIndex, 4), Tensor::full({}, seed, DType::f32));
    check_close("d(hidden)", hg.grad(), hc.grad(), kTolF32);
    check_close("d(weight)", wg.grad(), wc.grad(), kTolF32);
  }
}

int main(int argc, char** argv) { return run_gpu_suite(argc, argv); }
