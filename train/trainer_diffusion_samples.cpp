// defines: Trainer::Impl::log_diffusion_samples (Axolotl's DiffusionPlugin's sample generation,
// printed as its callback prints it; the pieces are train/diffusion_samples.h)
#include <fmt/core.h>

#include <algorithm>
#include <numeric>

#include "engine/counter_random.h"
#include "io/python_shuffles.h"
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

// One sample: its row and each token's document (the sample reads its documents apart).
struct Pick {
  DiffusionSampleRow row;
  std::vector<int32_t> docs;
};

// Rank 0's picks on every rank (ZeRO-3: each forward is collective, so every rank denoises the
// same rows with the same draws and runs as many forwards): [count, then per pick n, ids, labels,
// documents], one broadcast of its length and one of the words.
void share_picks(Communicator& comm, std::vector<Pick>& picks) {
  std::vector<int32_t> words;
  if (comm.is_main()) {
    words.push_back(static_cast<int32_t>(picks.size()));
    for (const Pick& p : picks) {
      words.push_back(static_cast<int32_t>(p.row.ids.size()));
      for (const std::vector<int32_t>* part : {&p.row.ids, &p.row.labels, &p.docs})
        words.insert(words.end(), part->begin(), part->end());
    }
  }
  int64_t size = static_cast<int64_t>(words.size());
  comm.broadcast(&size, sizeof size, 0);
  words.resize(static_cast<size_t>(size));
  comm.broadcast(words.data(), words.size() * sizeof(int32_t), 0);
  picks.clear();
  auto at = words.begin() + 1;
  for (int32_t k = 0; k < words[0]; k++) {
    const int32_t n = *at++;
    Pick p;
    for (std::vector<int32_t>* part : {&p.row.ids, &p.row.labels, &p.docs}) part->assign(at, at + n), at += n;
    picks.push_back(std::move(p));
  }
}

}  // namespace

void Trainer::Impl::log_diffusion_samples() {
  const DiffusionSettings& d = config.diffusion;
  const bool together = model->gathers_units();  // ZeRO-3: every rank takes part in each forward
  if (!comm.is_main() && !together) return;
  // The rows: rank 0's evaluation batches, else its training batches (read without moving the
  // cursor), from a batch drawn among the first ten, as Axolotl skips a random number of them.
  const uint64_t seed = mix_seed(mix_seed(config.seed, 0x53414D50), static_cast<uint64_t>(state.step));
  const bool eval = !val_batches.empty();
  const int64_t batches = eval ? static_cast<int64_t>(val_batches.size()) : loader->num_batches_per_epoch();
  const int64_t skip =
      batches > 0 ? static_cast<int64_t>(counter_bits(seed, 0) % static_cast<uint64_t>(std::min<int64_t>(batches, 10))) : 0;
  std::vector<Pick> picks;
  for (int64_t at = skip; comm.is_main() && at < batches && static_cast<int64_t>(picks.size()) < d.num_generation_samples;
       at++) {
    const Batch b = eval ? val_batches[at] : loader->batch_at(loader->cursor().epoch, at);
    const int64_t B = b.inputs.size(0), S = b.inputs.size(1);
    const std::vector<int32_t> ids = b.inputs.to_ints(), labels = b.labels.to_ints();
    const std::vector<int32_t> docs = b.doc_ids.defined() ? b.doc_ids.to_ints() : std::vector<int32_t>(B * S, 0);
    for (const int64_t r : torch_randperm(B, counter_bits(seed, 1 + at))) {  // the batch's rows in a drawn order
      if (static_cast<int64_t>(picks.size()) >= d.num_generation_samples) break;
      int64_t length = 0;  // the row's real tokens: its examples', no padding
      for (const int64_t e : b.rows[r]) length += data.examples->length(e);
      const auto row = diffusion_sample_row(&ids[r * S], &labels[r * S], std::min(length, S), d.generation_max_length);
      if (!row) continue;
      picks.push_back({*row, {docs.begin() + r * S, docs.begin() + r * S + static_cast<int64_t>(row->ids.size())}});
    }
  }
  if (together) share_picks(comm, picks);
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
    one.doc_ids = Tensor::from_ints(picks[s].docs, {1, n});
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
