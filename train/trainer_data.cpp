// defines: Trainer::Impl::load_data (the datasets tokenized, the loader and the evaluation
// batches), evaluation_batches, and print_data_summary (what the data became: examples, rows,
// targets, and one example shown with its loss mask, so a user can see what trains before a run
// goes long)
#include <fmt/core.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <optional>

#include "engine/backend.h"
#include "engine/ops.h"
#include "engine/stop_signal.h"
#include "engine/user_error.h"
#include "io/chat_template.h"
#include "io/python_text.h"
#include "train/trainer_impl.h"

namespace llm {

std::string one_line(const std::string& text, size_t limit) {
  std::string out;
  for (size_t i = 0; i < text.size(); i++) {
    const char ch = text[i];
    if (out.size() >= limit && starts_code_point(text, i)) return out + "...";
    if (ch == '\n') out += "\\n";
    else if (ch == '\t') out += "\\t";
    else if (static_cast<unsigned char>(ch) < 0x20) out += '?';
    else out += ch;
  }
  return out;
}

namespace {

// Tokens as text, special ones by name (decode skips them): <|eot_id|>, or <bos>, <eos>, <pad>
// for a vocabulary whose specials have none (the byte tokenizer's), as Axolotl's --debug shows them.
std::string text_with_specials(const std::vector<int32_t>& ids, const Tokenizer& tokenizer) {
  std::string out;
  std::vector<int32_t> plain;
  for (const int32_t id : ids) {
    std::optional<std::string> name = tokenizer.special_name(id);
    if (!name && (id == tokenizer.bos() || id == tokenizer.eos() || id == tokenizer.pad()))
      name = id == tokenizer.bos() ? "<bos>" : id == tokenizer.eos() ? "<eos>" : "<pad>";
    if (!name) {
      plain.push_back(id);
      continue;
    }
    out += decode_utf8_replacing(tokenizer.decode(plain)) + *name;
    plain.clear();
  }
  return out + decode_utf8_replacing(tokenizer.decode(plain));
}

// An example decoded run by run, the tokens that take loss inside [[ ]] (the LM shift applied:
// a token trains when it is a target, i.e. its own label is set).
std::string show_loss_mask(const ExampleSet& data, int64_t e, const Tokenizer& tokenizer) {
  std::string out;
  std::vector<int32_t> run;
  bool run_trained = false;
  auto flush = [&] {
    if (run.empty()) return;
    const std::string text = text_with_specials(run, tokenizer);
    out += run_trained ? "[[" + text + "]]" : text;
    run.clear();
  };
  for (int64_t i = data.offsets[e]; i < data.offsets[e + 1]; i++) {
    const bool trained = i > data.offsets[e] && data.labels[i] != kIgnoreIndex;
    if (trained != run_trained) flush();
    run_trained = trained;
    run.push_back(data.tokens[i]);
  }
  flush();
  return out;
}

}  // namespace

void Trainer::Impl::print_kto_summary() const {
  const ExampleSet& d = *data.examples;
  const ExampleStats& s = d.stats;
  say("data: {} KTO rows -> {} kept ({} dropped: prompt and completion longer than sequence_len {} together, or "
      "the prompt filling it) | "
      "token cache {} ({})\n",
      s.documents, d.size() / 2, s.dropped, config.data.sequence_len, data.cache_path,
      data.cache_reused ? "reused" : "built");
  double desirable = 0, undesirable = 0;
  for (const Row& row : data.train_rows) (d.desirable[static_cast<size_t>(row[0])] ? desirable : undesirable) += 1;
  say("rows: {} train ({} desirable, {} undesirable) / {} val, each its prompt with its completion and, for the KL "
      "estimate, with the completion of the row before it in its micro-batch; kto: beta {}, weights {} / {}; "
      "LoRA dropout off (TRL's disable_dropout)\n",
      data.train_rows.size(), desirable, undesirable, data.val_rows.size(), config.rl_beta,
      config.kto_desirable_weight, config.kto_undesirable_weight);
  // TRL's advice when the classes are unbalanced (the KTO paper's Eq. 8): weights that make
  // desirable x w_d about undesirable x w_u, to 4:3.
  const double dw = config.kto_desirable_weight, uw = config.kto_undesirable_weight;
  const double nd = std::max(desirable, 1.0), nu = std::max(undesirable, 1.0);
  const auto round2 = [](double x) { return std::round(x * 100) / 100; };
  const double d_low = round2(nu * uw / nd), d_high = round2(nu * uw / nd * 1.33);
  const double u_low = round2(nd * dw / nu / 1.33), u_high = round2(nd * dw / nu);
  if (nd != nu && !(d_low <= dw && dw <= d_high) && !(u_low <= uw && uw <= u_high))
    say("warning: {} desirable and {} undesirable training rows: TRL advises kto_desirable_weight in [{}, {}] or "
        "kto_undesirable_weight in [{}, {}] (not both)\n", desirable, undesirable, d_low, d_high, u_low, u_high);
  if (data.train_rows.empty()) return;
  const Row& first = data.train_rows.front();
  say("row {} ([[trained]], {}): {}\n", first[0] / 2, d.desirable[static_cast<size_t>(first[0])] ? "desirable" : "undesirable",
      one_line(show_loss_mask(d, first[0], *tokenizer), 400));
  say("its KL sequence: {}\n", one_line(show_loss_mask(d, first[1], *tokenizer), 400));
}

void Trainer::Impl::print_reward_summary() const {
  const ExampleSet& d = *data.examples;
  say("data: {} reward pairs -> {} kept ({} sequences cut to sequence_len {}) | token cache {} ({})\n",
      d.stats.documents, d.size() / 2, d.stats.truncated, config.data.sequence_len, data.cache_path,
      data.cache_reused ? "reused" : "built");
  say("rows: {} train / {} val pairs, a pair's chosen and rejected sequence in one row, each attending to itself; "
      "reward_model: a score head of one label read at each sequence's last token other than the pad token {}; "
      "loss -log sigmoid(chosen - rejected)\n",
      data.train_rows.size(), data.val_rows.size(), tokenizer->pad());
  for (int64_t k = 0; k < 2 && !data.split.train.empty(); k++)
    say("{} sequence of pair 0: {}\n", k == 0 ? "chosen" : "rejected",
        one_line(show_loss_mask(d, data.split.train[k], *tokenizer), 400));
}

// rl: dpo's dpo_loss_type terms with their weights (", loss 1 x sigmoid + 0.5 x sft"); "" for one.
std::string Trainer::Impl::dpo_terms_text() const {
  if (config.dpo_loss_type.empty()) return "";
  std::string out;
  for (const auto& [type, weight] : dpo_terms(loss_config()))
    out += fmt::format("{}{} x {}", out.empty() ? ", loss " : " + ", weight, type);
  return out;
}

void Trainer::Impl::print_data_summary() const {
  const ExampleSet& d = *data.examples;
  const ExampleStats& s = d.stats;
  if (kto()) return print_kto_summary();
  if (reward()) return print_reward_summary();
  if (preference()) {
    // TRL's ORPO rule may also cut a response away (io/orpo.h).
    say("data: {} preference pairs -> {} kept ({} dropped: the prompt longer than sequence_len {} with a response, or "
        "filling it{}) | "
        "token cache {} ({})\n",
        s.documents, d.size() / 2, s.dropped, config.data.sequence_len,
        orpo() ? ", or a response left empty by TRL's ORPO cut" : "",
        data.cache_path, data.cache_reused ? "reused" : "built");
    say("rows: {} train / {} val pairs, a pair's chosen and rejected response in one row, each attending to itself; "
        "{}: beta {}{}; LoRA dropout off (TRL's disable_dropout)\n",
        data.train_rows.size(), data.val_rows.size(), config.rl, config.rl_beta,
        config.rl == "simpo" ? fmt::format(", gamma {}, cpo_alpha {} (no reference)", config.simpo_gamma, config.cpo_alpha)
        : orpo() ? std::string(" (no reference; plus the chosen sequences' NLL)")
                 : dpo_terms_text() + (config.dpo_label_smoothing > 0
                                           ? fmt::format(", label smoothing {}", config.dpo_label_smoothing) : ""));
    for (int64_t k = 0; k < 2 && !data.split.train.empty(); k++)
      say("{} response of pair 0 ([[trained]]): {}\n", k == 0 ? "chosen" : "rejected",
          one_line(show_loss_mask(d, data.split.train[k], *tokenizer), 400));
    if (config.data.curriculum_sampling)
      say("warning: curriculum_sampling with rl: {} keeps a single dataset's own order, but the pairs train in a "
          "fresh random order every epoch, as Axolotl's (TRL's trainer takes the Trainer's random sampler)\n",
          config.rl);
    return;
  }
  if (config.data.pretraining) {
    say("rows: {} training {} in the first epoch, each epoch's drawn from the stream afresh{} / {} val rows\n",
        loader->num_rows_per_epoch(), data.train_layout.packed ? "bins" : "rows",
        data.train_layout.packed ? fmt::format(" (bins of {} tokens, {:.1f}% filled)", data.train_layout.sequence_len,
                                               100 * packing_efficiency(d, loader->epoch_rows(0), data.train_layout.sequence_len))
                                 : std::string(),
        data.val_rows.size());
    return;
  }
  say("data: {} documents -> {} examples ({} split into sequence_len chunks, {} dropped as longer "
      "than sequence_len {} and {} as shorter than min_sample_len {}, {} truncated, {} without a target) | token "
      "cache {} ({})\n",
      s.documents, d.kept(), s.chunked, s.dropped - s.dropped_short, config.data.sequence_len, s.dropped_short,
      config.data.shortest_sample_len(), s.truncated, s.no_targets, data.cache_path,
      data.cache_reused ? "reused" : "built");
  int64_t targets = 0;
  for (int64_t e = 0; e < d.size(); e++) d.for_each_target(e, [&](int32_t) { targets++; });
  // Packed, the training rows are epoch 0's bins (each epoch packs its own order afresh).
  const std::vector<Row>& train_rows = data.train_layout.packed ? loader->epoch_rows(0) : data.train_rows;
  const int64_t capacity = data.train_layout.sequence_len;
  const std::string packing =
      data.train_layout.packed
          ? fmt::format("{} into bins of {} tokens, repacked each epoch; epoch 0's {:.1f}% filled",
                        config.data.sample_packing_sequentially
                            ? std::string("packed in order (next fit)")
                            : fmt::format("multipack (first fit, at most {} examples a bin)",
                                          config.data.sample_packing_bin_size),
                        capacity, 100 * packing_efficiency(d, train_rows, capacity))
          : "one example per row, padded";
  say("rows: {} train / {} val ({}); {} of {} tokens are targets ({:.1f}%)\n", train_rows.size(),
      data.val_rows.size(), packing, targets, d.tokens.size(),
      d.tokens.empty() ? 0.0 : 100.0 * targets / static_cast<double>(d.tokens.size()));
  for (const auto* specs : {&config.data.datasets, &config.data.test_datasets})
    for (const DatasetSpec& spec : *specs)
      if (spec.type == "chat_template")
        for (const std::string& warning : end_of_turn_warnings(spec, *tokenizer)) say("warning: {}\n", warning);
  if (data.train_layout.packed && config.data.sample_packing_sequentially && !config.data.curriculum_sampling)
    say("warning: sample_packing_sequentially without curriculum_sampling packs each epoch's random order (Axolotl "
        "warns the same: did you want curriculum_sampling too?)\n");
  if (!data.split.train.empty())
    say("example {} ([[trained]]): {}\n", data.split.train.front(),
        one_line(show_loss_mask(d, data.split.train.front(), *tokenizer), 400));
}


DataConfig Trainer::Impl::load_data() {
  const TrainConfig& c = config;
  DataConfig data_config = c.data;
  if (data_config.dataset_prepared_path.empty())
    data_config.dataset_prepared_path = (std::filesystem::path(c.output_dir) / "prepared").string();
  // S2's groups must divide every row: its rows are all sequence_len long.
  if (c.attention == AttentionKind::s2 && !data_config.pad_to_sequence_len) {
    say("s2_attention: every row padded to sequence_len {} (pad_to_sequence_len on), so that its groups divide "
        "each row\n", c.data.sequence_len);
    data_config.pad_to_sequence_len = true;
  }
  // KTO's KL blocks are the micro-batches (auto_find_batch_size's too), TRL's per_device_*_batch_size.
  data_config.kl_block = c.micro_batch_size;
  data_config.eval_kl_block = c.eval_micro_batch_size();
  data_config.micro_batch_size = c.micro_batch_size;  // the bins of sample_packing
  data_config.stream_in_worker = c.dataloader_workers(device_count(DeviceType::cuda)) > 0;
  // Rank 0 builds the token cache while the others wait at the stop point; then they read it. A
  // signal stops tokenising at once; the stop point after it then stops every rank (the signal
  // that threw is still recorded). Bad data, which rank 0 meets for all, ends every rank alike.
  std::optional<std::string> data_error;
  auto load = [&] {
    try {
      data = load_training_data(data_config, c.seed, *tokenizer,
                                [this](const std::string& line) { say("{}\n", line); });
    } catch (const StopRequested&) {
    } catch (const UserError& e) {
      if (!comm.is_main()) throw;
      data_error = e.what();
    }
  };
  if (comm.is_main()) load();
  int64_t main_failed = data_error ? 1 : 0;
  comm.allreduce_max(&main_failed, 1);
  if (main_failed) throw EveryRankError(data_error.value_or("rank 0 could not read the datasets"));
  stop_point("tokenizing the datasets");
  if (!comm.is_main()) load();
  stop_point("reading the token cache");
  // Diffusion: HF's default positions (the row's 0, 1, ...: Axolotl's plugin passes none) on
  // bidirectional rows.
  if (c.diffusion.on)
    for (RowLayout* layout : {&data.train_layout, &data.val_layout}) layout->bidirectional = layout->positions_continue = true;
  data_settings = data_config;
  try {  // too few rows for a batch: the loaders' one line names the config, as the data's own do
    loader = std::make_unique<DataLoader>(data.examples, data.train_rows, data.train_layout,
                                          data_config.rows_per_batch(c.micro_batch_size), c.seed,
                                          loader_options(data_config, comm.rank(), comm.world_size(),
                                                         c.micro_batch_size * c.gradient_accumulation_steps,
                                                         data.stream_rows));
    val_batches = evaluation_batches(data.val_rows);
  } catch (const UserError& e) {
    throw UserError(data_config.source + ": " + e.what());
  }
  if ((c.zero_stage == 3 || kto()) && !data.val_rows.empty())  // see for_each_eval_batch()
    eval_filler = eval_batches(*data.examples, data.val_rows, data.val_layout, eval_batch_rows(), 0, 1).front();
  epoch_shape = {loader->num_batches_per_epoch(), loader->num_rows_per_epoch(),
                 data_config.rows_per_batch(c.micro_batch_size), comm.world_size()};
  return data_config;
}

int64_t Trainer::Impl::eval_batch_rows() const {
  // Packed eval batches are the training micro-batch's bins, as Axolotl's eval multipack makes them.
  return data.val_layout.packed ? data_settings.rows_per_batch(config.micro_batch_size) : config.eval_micro_batch_size();
}

std::vector<Batch> Trainer::Impl::evaluation_batches(const std::vector<Row>& rows) const {
  const TrainConfig& c = config;
  const bool packed = data.val_layout.packed;
  const int64_t batch = eval_batch_rows();
  std::vector<Batch> out = eval_batches(*data.examples, eval_row_order(*data.examples, rows, data_settings, packed, batch, c.seed),
                                        data.val_layout, batch, comm.rank(), comm.world_size(),
                                        c.data.drops_last_eval_rows(), !preference());
  if (packed) weigh_packed_eval_batches(out, rows, batch, c.eval_micro_batch_size(), comm.rank(), comm.world_size());
  return out;
}

}  // namespace llm
