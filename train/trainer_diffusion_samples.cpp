// defines: Trainer::Impl::log_diffusion_samples (Axolotl's DiffusionPlugin's sample generation,
// printed as its callback prints it; the pieces are train/diffusion_samples.h)
#include <fmt/core.h>

#include <algorithm>
#include <numeric>

#include "engine/counter_random.h"
#include "io/python_text.h"  // decode_utf8_replacing
#include "train/diffusion_samples.h"
#include "train/trainer_impl.h"

namespace llm {

namespace {

// The sample's masked text: each run of unmasked tokens decoded (special tokens skipped), each
// masked token "[MASK]", whitespace runs made one space (newlines kept), as Axolotl shows it.
std::string masked_text(const Tokenizer& tok, const std::vector<int32_t>& ids, const std::vector<uint8_t>& masked) {
  std::string out;
  std::vector<int32_t> run;
  const auto flush = [&] {
    out += decode_utf8_replacing(tok.decode(run));
    run.clear();
  };
  for (size_t i = 0; i < ids.size(); i++) {
    if (!masked[i]) {
      run.push_back(ids[i]);
      continue;
    }
    flush();
    out += "[MASK]";
  }
  flush();
  std::string squeezed;
  for (const char ch : out) {
    const bool blank = ch == ' ' || ch == '\t';
    if (blank && !squeezed.empty() && squeezed.back() == ' ') continue;
    if (ch == '\n') while (!squeezed.empty() && squeezed.back() == ' ') squeezed.pop_back();
    squeezed += blank ? ' ' : ch;
  }
  const size_t first = squeezed.find_first_not_of(" \n"), last = squeezed.find_last_not_of(" \n");
  return first == std::string::npos ? "" : squeezed.substr(first, last - first + 1);
}

}  // namespace

void Trainer::Impl::log_diffusion_samples() {
  const DiffusionSettings& d = config.diffusion;
  if (!comm.is_main()) return;
  // The rows: rank 0's evaluation batches, else its training batches (read without moving the
  // cursor), from a batch drawn among the first ten, as Axolotl skips a random number of them.
  const uint64_t seed = mix_seed(mix_seed(config.seed, 0x53414D50), static_cast<uint64_t>(state.step));
  const bool eval = !val_batches.empty();
  const int64_t batches = eval ? static_cast<int64_t>(val_batches.size()) : loader->num_batches_per_epoch();
  const int64_t skip = static_cast<int64_t>(counter_bits(seed, 0) % static_cast<uint64_t>(std::min<int64_t>(batches, 10)));
  struct Pick {
    DiffusionSampleRow row;
    Tensor doc_ids;  // (1, n): the row's documents, as the sample reads them
  };
  std::vector<Pick> picks;
  for (int64_t at = skip; at < batches && static_cast<int64_t>(picks.size()) < d.num_generation_samples; at++) {
    const Batch b = eval ? val_batches[at] : loader->batch_at(loader->cursor().epoch, at);
    const int64_t B = b.inputs.size(0), S = b.inputs.size(1);
    const std::vector<int32_t> ids = b.inputs.to_ints(), labels = b.labels.to_ints();
    const std::vector<int32_t> docs = b.doc_ids.defined() ? b.doc_ids.to_ints() : std::vector<int32_t>(B * S, 0);
    std::vector<int64_t> order(static_cast<size_t>(B));  // the batch's rows in a drawn order
    std::iota(order.begin(), order.end(), 0);
    for (int64_t i = B - 1; i > 0; i--) std::swap(order[i], order[counter_bits(seed, 1 + at * B + i) % (i + 1)]);
    for (const int64_t r : order) {
      if (static_cast<int64_t>(picks.size()) >= d.num_generation_samples) break;
      int64_t length = 0;  // the row's real tokens: its examples', no padding
      for (const int64_t e : b.rows[r]) length += data.examples->length(e);
      const auto row = diffusion_sample_row(&ids[r * S], &labels[r * S], std::min(length, S), d.generation_max_length);
      if (!row) continue;
      const int64_t n = static_cast<int64_t>(row->ids.size());
      picks.push_back({*row, Tensor::from_ints({docs.begin() + r * S, docs.begin() + r * S + n}, {1, n})});
    }
  }
  if (picks.empty()) return;
  NoGradGuard no_grad;
  const Tokenizer& tok = *tokenizer;
  const int64_t vocab = model->config().vocab_size;
  say("{}\nGENERATED SAMPLES (step {})\n{}\n", std::string(60, '='), state.step, std::string(60, '='));
  for (size_t s = 0; s < picks.size(); s++) {
    const DiffusionSampleRow& row = picks[s].row;
    const int64_t n = static_cast<int64_t>(row.ids.size());
    const std::vector<uint8_t> masked = diffusion_sample_mask(row, counter_bits(seed, -1 - static_cast<int64_t>(s)));
    std::vector<int32_t> noisy = row.ids;
    for (int64_t i = 0; i < n; i++)
      if (masked[i]) noisy[i] = diffusion_mask_id;
    Batch one;
    one.doc_ids = picks[s].doc_ids;
    ForwardOptions opt = options_for(one);
    std::vector<int32_t> positions(static_cast<size_t>(n));
    std::iota(positions.begin(), positions.end(), 0);  // along the row, HF's default
    const Tensor pos = Tensor::from_ints(positions, {1, n}).to(device);
    const std::vector<int32_t> generated =
        denoise(noisy, diffusion_mask_id, vocab, d.generation_steps, d.generation_temperature,
                counter_bits(seed, 1000 + static_cast<int64_t>(s)), [&](const std::vector<int32_t>& ids) {
                  return model->logits(Tensor::from_ints(ids, {1, n}).to(device), pos, opt).to(DType::f32).to_floats();
                });
    const int64_t count = std::count(masked.begin(), masked.end(), 1);
    say("\nSample {}:\n\tOriginal ({} tokens): {}\n\tMasked ({}/{} tokens, {:.1f}%): {}\n\tGenerated: {}\n", s + 1, n,
        one_line(decode_utf8_replacing(tok.decode(row.ids))), count, n, 100.0 * count / n,
        one_line(masked_text(tok, row.ids, masked)), one_line(decode_utf8_replacing(tok.decode(generated))));
  }
  say("{}\n", std::string(60, '='));
}

}  // namespace llm
