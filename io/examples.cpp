// defines: tokenize_document, append_examples
#include "io/examples.h"

#include <algorithm>

#include "engine/ops.h"
#include "engine/stop_signal.h"
#include "engine/user_error.h"

namespace llm {

namespace {

// Axolotl's two truncated tokenizer calls (Document::two_calls) on `ex`, whose prompt (BOS
// included) ends at `prompt_end`: [BOS prompt][response][EOS] -> prompt cut to max_length tokens,
// response to max_length - 1, EOS kept only when BOS + response was below max_length.
void cut_as_two_calls(Example& ex, size_t prompt_end, bool has_eos, size_t max_length) {
  const size_t response = ex.tokens.size() - prompt_end - (has_eos ? 1 : 0);
  const auto erase = [&ex](size_t first, size_t last) {  // [first, last) of tokens and labels
    ex.tokens.erase(ex.tokens.begin() + first, ex.tokens.begin() + last);
    ex.labels.erase(ex.labels.begin() + first, ex.labels.begin() + last);
  };
  // Back to front, so the earlier positions hold: EOS, the response's tail, the prompt's tail.
  if (has_eos && 1 + response >= max_length) erase(ex.tokens.size() - 1, ex.tokens.size());
  erase(prompt_end + std::min(response, max_length - 1), prompt_end + response);
  erase(std::min(prompt_end, max_length), prompt_end);
}

}  // namespace

Example tokenize_document(const Document& doc, const Tokenizer& tokenizer, bool train_on_inputs,
                          const std::string& where, size_t max_length) {
  Example ex;
  auto push = [&ex](int32_t token, bool trained) {
    ex.tokens.push_back(token);
    ex.labels.push_back(trained ? token : kIgnoreIndex);
  };
  auto is_trained = [train_on_inputs](const Piece& seg) {
    return seg.loss == Loss::trained || (seg.loss == Loss::prompt && train_on_inputs);
  };
  // BOS is labelled as the text it starts, as Axolotl's tokenizing strategies label it (a
  // completion's or train_on_inputs' copy of the ids; a masked prompt's -100). Only a packed row
  // reads it: there the previous example's last token predicts it (RowLayout).
  if (doc.add_bos) push(tokenizer.bos(), !doc.pieces.empty() && is_trained(doc.pieces.front()));
  bool last_trained = false;
  size_t prompt_end = ex.tokens.size();
  for (const Piece& seg : doc.pieces) {
    const bool trained = is_trained(seg);
    switch (seg.kind) {
      case Piece::Kind::text:
        for (int32_t t : tokenizer.encode(seg.text)) push(t, trained);
        break;
      case Piece::Kind::text_with_specials:
        for (int32_t t : tokenizer.encode_with_specials(seg.text)) push(t, trained);
        break;
      case Piece::Kind::special: {
        std::optional<int32_t> id = tokenizer.special_id(seg.text);
        if (!id)
          throw UserError(where + ": the chat template needs the special token " + seg.text +
                          ", which the " + tokenizer.name() +
                          " tokenizer lacks; expected a tokenizer_config that has it");
        push(*id, trained);
        break;
      }
      case Piece::Kind::ids:
        // Checked here, where the ids enter, naming the file: the GPU checks them again only in
        // passing, reporting at its next wait (cuda/cuda_ids.cu), since waiting for its answer
        // would stall every step.
        for (int32_t t : seg.token_ids) {
          if (t < 0 || t >= tokenizer.vocab_size())
            throw UserError(where + ": token id " + std::to_string(t) + " is outside the vocabulary of the " +
                            tokenizer.name() + " tokenizer (ids 0 to " +
                            std::to_string(tokenizer.vocab_size() - 1) + ")");
          push(t, trained);
        }
        break;
    }
    last_trained = trained;
    if (&seg == &doc.pieces.front()) prompt_end = ex.tokens.size();
  }
  if (doc.add_eos) push(tokenizer.eos(), last_trained);
  if (doc.two_calls && max_length > 0) cut_as_two_calls(ex, prompt_end, doc.add_eos, max_length);
  return ex;
}

void append_examples(const DatasetSpec& spec, const std::vector<Document>& docs,
                     const Tokenizer& tokenizer, const DataConfig& config,
                     std::vector<Example>& out, ExampleStats& stats, bool placeholders) {
  const auto drop = [&] {
    if (placeholders) out.push_back(Example{});
  };
  const size_t L = static_cast<size_t>(config.sequence_len);
  const size_t limit = static_cast<size_t>(config.length_limit());
  const size_t shortest = static_cast<size_t>(config.shortest_sample_len());
  // Axolotl's length filter on an example: dropped, truncated or refused past `limit`; false: dropped.
  auto fits = [&](Example& ex) {
    if (ex.tokens.size() <= limit) return true;
    if (config.excess_length_strategy == "raise")  // Axolotl's: a ValueError instead of a drop
      throw UserError(spec.path + ": document " + std::to_string(stats.documents) + " is " +
                      std::to_string(ex.tokens.size()) + " tokens, longer than " +
                      (config.keeps_eval_length ? "eval_sequence_len " : "sequence_len ") + std::to_string(limit) +
                      " (excess_length_strategy: raise; drop or truncate would train without it)");
    if (config.excess_length_strategy != "truncate") {
      stats.dropped++;
      return false;
    }
    stats.truncated++;
    ex.tokens.resize(limit);
    ex.labels.resize(limit);
    return true;
  };
  for (const Document& doc : docs) {
    // Tokenising a large dataset can take minutes: a stop signal need not wait for its end.
    if (const int signal = stop_signal()) throw StopRequested(signal, "tokenizing " + spec.path);
    stats.documents++;
    Example ex = tokenize_document(doc, tokenizer, config.train_on_inputs, spec.path, L);
    if (ex.tokens.empty()) {  // empty text, which Axolotl's tokenizing turns into no row
      stats.no_targets++;
      continue;
    }
    if (ex.tokens.size() > L && spec.type == "completion" && !doc.given_ids) {
      // Axolotl's completion tokenizes at most 64 x sequence_len tokens of a text (its max_length),
      // BOS included; a text cut there gets no EOS. The rest is never trained.
      if (ex.tokens.size() > 64 * L) {
        stats.truncated++;
        ex.tokens.resize(64 * L);
        ex.labels.resize(64 * L);
      }
      stats.chunked++;
      for (size_t begin = 0; begin < ex.tokens.size(); begin += L) {
        const size_t end = std::min(ex.tokens.size(), begin + L);
        Example chunk{{ex.tokens.begin() + begin, ex.tokens.begin() + end},
                      {ex.labels.begin() + begin, ex.labels.begin() + end}};
        if (chunk.tokens.size() < shortest) {
          if (chunk.tokens.size() >= 2) stats.dropped++, stats.dropped_short++;  // one token: no target, never an example
          drop();
        } else if (fits(chunk)) {  // (past an eval_sequence_len below sequence_len)
          out.push_back(std::move(chunk));
        } else {
          drop();
        }
      }
      continue;
    }
    if (ex.tokens.size() < shortest) {
      stats.dropped++;
      stats.dropped_short++;
      drop();
      continue;
    }
    if (!fits(ex)) {
      drop();
      continue;
    }
    int64_t targets = 0;
    for_each_target(ex.labels.data(), static_cast<int64_t>(ex.labels.size()), [&](int32_t) { targets++; });
    if (targets == 0) {
      stats.no_targets++;
      drop();
      continue;
    }
    out.push_back(std::move(ex));
  }
}

}  // namespace llm
