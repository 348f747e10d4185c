// defines: add_optimizer_cases (llm_bench kernel's rows of the optimizers' updates)
#include <fmt/core.h>

#include <algorithm>
#include <cmath>

#include "engine/backend.h"
#include "engine/muon.h"
#include "engine/optimizer.h"
#include "tools/bench_kernel_cases.h"
#include "tools/bench_util.h"

namespace llm {

namespace {

Tensor positive(const Shape& shape, float scale, std::mt19937& rng) {  // a second moment
  std::vector<float> x = randn(shape, scale, rng).to_floats();
  for (float& v : x) v = std::fabs(v);
  return Tensor::from_floats(x, shape);
}

Tensor codes(const Shape& shape, std::mt19937& rng) {  // 8-bit optimizer state
  Tensor t = Tensor::zeros(shape, DType::u8, Device::cpu());
  for (int64_t i = 0; i < t.numel(); i++) t.data<uint8_t>()[i] = static_cast<uint8_t>(rng() % 256);
  return t;
}

// torchao's codes of one moment of `numel` elements: 4-bit ones two a byte; fp8 bytes without
// e4m3's NaN (0x7F, 0xFF), and the second moment's without the sign bit (the other formats' maps
// for it are unsigned): a negative v makes the update's square root NaN.
Tensor torchao_codes(int64_t numel, TorchaoCodes format, bool second_moment, std::mt19937& rng) {
  Tensor t = codes({numel * code_bits(format) / 8}, rng);
  if (format == TorchaoCodes::fp8)
    for (int64_t i = 0; i < t.numel(); i++) {
      uint8_t& code = t.data<uint8_t>()[i];
      if ((code & 0x7F) == 0x7F) code &= 0xFE;
      if (second_moment) code &= 0x7F;
    }
  return t;
}

}  // namespace

void add_optimizer_cases(std::vector<Case>& cases, int64_t F, int64_t C, std::mt19937& rng) {
  Case adam{"adamw", fmt::format("({}, {})", F, C),
            {randn({F, C}, 0.02f, rng), randn({F, C}, 1e-3f, rng), randn({F, C}, 1e-3f, rng),
             positive({F, C}, 1e-3f, rng)},
            [](std::vector<Tensor>& x, bool) {
              const AdamWArgs args{1e-4f, 0.9f, 0.95f, 1e-8f, 0.1f, 1e-3f, 0.5f};
              backend(x[0].device()).adamw(x[0], x[1], x[2], x[3], args);
              return std::vector<Tensor>{x[0], x[2], x[3]};
            },
            false};
  adam.flops_fwd = 12.0 * F * C;
  adam.bytes_fwd = 4.0 * 7 * F * C;  // read param, grad, m, v; write param, m, v (all f32)
  cases.push_back(adam);

  // Schedule-Free AdamW: y, grad, z and v read; y, z and v written (all f32).
  Case schedule_free{"schedule_free", fmt::format("({}, {})", F, C),
                     {randn({F, C}, 0.02f, rng), randn({F, C}, 1e-3f, rng), randn({F, C}, 0.02f, rng),
                      positive({F, C}, 1e-6f, rng)},
                     [](std::vector<Tensor>& x, bool) {
                       const ScheduleFreeArgs args{0.01f, -1e-5f, 1e-4f, 0.999f, 1e-3f, 0.5f, 1e-8f, 0.1f, 0.5f, true, true};
                       backend(x[0].device()).schedule_free(x[0], x[1], x[2], &x[3], args);
                       return std::vector<Tensor>{x[0], x[2], x[3]};
                     },
                     false};
  schedule_free.flops_fwd = 16.0 * F * C;
  schedule_free.bytes_fwd = 4.0 * 7 * F * C;
  cases.push_back(schedule_free);

  // The same weight with bitsandbytes' 8-bit state (engine/quant_map.h: codes of a block's values
  // over its absmax) and with Lion's one momentum, f32 or 8-bit. Bytes per element: param and
  // grad read, param written (12), and each moment's code read and written (2) or f32 (8).
  const int64_t blocks = blocks_of(F * C);
  Case adam8{"adamw_8bit", fmt::format("({}, {})", F, C),
             {randn({F, C}, 0.02f, rng), randn({F, C}, 1e-3f, rng), codes({F, C}, rng), positive({blocks}, 1e-3f, rng),
              codes({F, C}, rng), positive({blocks}, 1e-6f, rng)},
             [](std::vector<Tensor>& x, bool) {
               const AdamWArgs args{1e-4f, 0.9f, 0.95f, 1e-8f, 0.1f, 1e-3f, 0.5f};
               backend(x[0].device()).adamw_8bit(x[0], x[1], x[2], x[3], x[4], x[5], args);
               return std::vector<Tensor>{x[0], x[2], x[3], x[4], x[5]};
             },
             false};
  adam8.flops_fwd = 12.0 * F * C;
  adam8.bytes_fwd = (12.0 + 2 * 2) * F * C;
  cases.push_back(adam8);
  // torchao's AdamW on its three code formats (the same update, the same blockwise loop as
  // bitsandbytes'; 4-bit codes move half a byte a moment).
  for (const auto& [format, name] : {std::pair{TorchaoCodes::dynamic_8bit, "torchao_adamw_8bit"},
                                     std::pair{TorchaoCodes::dynamic_4bit, "torchao_adamw_4bit"},
                                     std::pair{TorchaoCodes::fp8, "torchao_adamw_fp8"}}) {
    Case torchao{name, fmt::format("({}, {})", F, C),
                 {randn({F, C}, 0.02f, rng), randn({F, C}, 1e-3f, rng), torchao_codes(F * C, format, false, rng),
                  positive({blocks}, 1e-3f, rng), torchao_codes(F * C, format, true, rng), positive({blocks}, 1e-6f, rng)},
                 [format](std::vector<Tensor>& x, bool) {
                   const TorchaoAdamWArgs args{1e-4f, 1e-5f, lerp_weight(0.1), lerp_weight(0.05), 0.5f, 0.3f, 1e-8f,
                                               0.5f, format};
                   backend(x[0].device()).torchao_adamw(x[0], x[1], x[2], x[3], x[4], x[5], args);
                   return std::vector<Tensor>{x[0], x[2], x[3], x[4], x[5]};
                 },
                 false};
    // The codes compare as bytes: a 4-bit code one level off in a byte's high nibble is 16 / 255
    // of the largest byte (the 8-bit formats' one level, 1 / 255, is inside the run's 2%). An H200
    // and the CPU parted so on 2026-12-04 (bench/results/2026-12-04-gpu-run.md).
    if (format == TorchaoCodes::dynamic_4bit) torchao.tolerance = 17.0 / 255;
    torchao.flops_fwd = 12.0 * F * C;
    torchao.bytes_fwd = (12.0 + 2 * 2 * code_bits(format) / 8.0) * F * C;
    cases.push_back(torchao);
  }
  const LionArgs lion_args{1e-4f, 0.9f, 0.99f, 0.1f};
  Case lion{"lion", fmt::format("({}, {})", F, C),
            {randn({F, C}, 0.02f, rng), randn({F, C}, 1e-3f, rng), randn({F, C}, 1e-3f, rng)},
            [lion_args](std::vector<Tensor>& x, bool) {
              backend(x[0].device()).lion(x[0], x[1], x[2], lion_args);
              return std::vector<Tensor>{x[0], x[2]};
            },
            false};
  lion.flops_fwd = 8.0 * F * C;
  lion.bytes_fwd = (12.0 + 8) * F * C;
  cases.push_back(lion);
  Case lion8{"lion_8bit", fmt::format("({}, {})", F, C),
             {randn({F, C}, 0.02f, rng), randn({F, C}, 1e-3f, rng), codes({F, C}, rng), positive({blocks}, 1e-3f, rng)},
             [lion_args](std::vector<Tensor>& x, bool) {
               backend(x[0].device()).lion_8bit(x[0], x[1], x[2], x[3], lion_args);
               return std::vector<Tensor>{x[0], x[2], x[3]};
             },
             false};
  lion8.flops_fwd = 8.0 * F * C;
  lion8.bytes_fwd = (12.0 + 2) * F * C;
  cases.push_back(lion8);
  // Adafactor's matrix update: reads of the gradient for its row and column sums, its clip's sum
  // of squares and the update (4 x 4 bytes), the parameter read and written (8).
  Case adafactor{"adafactor", fmt::format("({}, {})", F, C),
                 {randn({F, C}, 0.02f, rng), randn({F, C}, 1e-3f, rng), positive({F}, 1e-6f, rng),
                  positive({C}, 1e-6f, rng)},
                 [](std::vector<Tensor>& x, bool) {
                   AdafactorArgs args;
                   args.lr = 1e-4f;
                   args.beta2t = 0.9f;
                   args.one_minus_beta2t = 0.1f;
                   args.decay_step = -1e-5f;
                   backend(x[0].device()).adafactor(x[0], x[1], x[2], x[3], args);
                   return std::vector<Tensor>{x[0], x[2], x[3]};
                 },
                 false};
  const AdemamixArgs mix{1e-4f, 0.9f, 0.999f, 0.9999f, 5.0f, 1e-8f, 0.1f, 0.5f, 0.7f, 0.5f};
  Case ademamix{"ademamix", fmt::format("({}, {})", F, C),
                {randn({F, C}, 0.02f, rng), randn({F, C}, 1e-3f, rng), randn({F, C}, 1e-3f, rng),
                 randn({F, C}, 1e-3f, rng), positive({F, C}, 1e-6f, rng)},
                [mix](std::vector<Tensor>& x, bool) {
                  backend(x[0].device()).ademamix(x[0], x[1], x[2], x[3], x[4], mix);
                  return std::vector<Tensor>{x[0], x[2], x[3], x[4]};
                },
                false};
  ademamix.flops_fwd = 16.0 * F * C;
  ademamix.bytes_fwd = (12.0 + 3 * 8) * F * C;
  cases.push_back(ademamix);
  Case ademamix8{"ademamix_8bit", fmt::format("({}, {})", F, C),
                 {randn({F, C}, 0.02f, rng), randn({F, C}, 1e-3f, rng), codes({F, C}, rng), positive({blocks}, 1e-3f, rng),
                  codes({F, C}, rng), positive({blocks}, 1e-3f, rng), codes({F, C}, rng), positive({blocks}, 1e-6f, rng)},
                 [mix](std::vector<Tensor>& x, bool) {
                   backend(x[0].device()).ademamix_8bit(x[0], x[1], x[2], x[3], x[4], x[5], x[6], x[7], mix);
                   return std::vector<Tensor>{x[0], x[2], x[3], x[4], x[5], x[6], x[7]};
                 },
                 false};
  ademamix8.flops_fwd = 16.0 * F * C;
  ademamix8.bytes_fwd = (12.0 + 3 * 2) * F * C;
  cases.push_back(ademamix8);
  adafactor.flops_fwd = 12.0 * F * C;
  adafactor.bytes_fwd = (4.0 * 4 + 8) * F * C;
  cases.push_back(adafactor);
  // CAME's matrix update: Adafactor's reads of the gradient (4 x 4 bytes) and its parameter (8),
  // m read and written (8), the instability written and read twice (12).
  Case came{"came", fmt::format("({}, {})", F, C),
            {randn({F, C}, 0.02f, rng), randn({F, C}, 1e-3f, rng), randn({F, C}, 1e-3f, rng), positive({F}, 1e-6f, rng),
             positive({C}, 1e-6f, rng), positive({F}, 1e-6f, rng), positive({C}, 1e-6f, rng)},
            [](std::vector<Tensor>& x, bool) {
              CameArgs args;
              args.second.lr = 1e-4f;
              args.second.beta2t = 0.999f;
              args.second.one_minus_beta2t = 0.001f;
              args.second.decay_step = -1e-5f;
              args.instability.beta2t = 0.9999f;
              args.instability.one_minus_beta2t = 1e-4f;
              args.beta1 = 0.9f;
              args.one_minus_beta1 = 0.1f;
              args.eps2 = 1e-16f;
              FactoredMoment second{x[3], x[4]}, instability{x[5], x[6]};
              backend(x[0].device()).came(x[0], x[1], x[2], second, instability, args);
              return std::vector<Tensor>{x[0], x[2], x[3], x[4], x[5], x[6]};
            },
            false};
  came.flops_fwd = 24.0 * F * C;
  came.bytes_fwd = (4.0 * 4 + 8 + 8 + 12) * F * C;
  cases.push_back(came);
  // Muon's orthogonalisation of an MLP matrix's update: five Newton-Schulz steps on the (C, F)
  // transpose, each X X^T, (c A) A and B X (bf16 GEMMs on a GPU; f32 ones of bf16-rounded values on
  // the CPU) and their elementwise combinations.
  Case muon{"muon_newton_schulz", fmt::format("({}, {})", F, C), {randn({F, C}, 1e-3f, rng)},
            [](std::vector<Tensor>& x, bool) { return std::vector<Tensor>{newton_schulz(x[0], 5)}; }, false};
  // Five bf16 iterations amplify one rounding apart: a norm rounded one bf16 step apart alone
  // moves the result by up to 5.5% of its largest value at (2048, 512) in a simulation of both
  // summation orders (test_gpu_low_precision's Muon case says more); an H200 gave 2.2%.
  muon.tolerance = 8e-2;
  const double r = static_cast<double>(std::min(F, C)), wide = static_cast<double>(std::max(F, C));
  muon.flops_fwd = 5 * (4 * r * r * wide + 2 * r * r * r);
  muon.bytes_fwd = 5 * 2.0 * (6 * r * wide + 8 * r * r);  // bf16, as a GPU moves them
  cases.push_back(muon);
}

}  // namespace llm
