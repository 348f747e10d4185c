// defines: Trainer::Impl::load_best_model, export_final_model (what a run that was not interrupted
// leaves in output_dir: the full model, the merged ReLoRA model, or the PEFT adapter, each with its
// tokenizer files)
#include <algorithm>
#include <filesystem>
#include <optional>

#include "engine/user_error.h"
#include "io/added_tokens.h"
#include "io/durable_file.h"
#include "io/json_text.h"
#include "model/hf_config.h"
#include "model/hf_checkpoint.h"
#include "model/peft_adapter.h"
#include "train/trainer_impl.h"

namespace llm {

namespace {

// Axolotl's convert_ternary_model before its final save: every block linear's weight becomes its
// ternary values (lm_head and the embedding were never quantised), frozen ones too.
TensorSink baking_ternary(const TensorSink& put) {
  return [&put](const std::string& name, const Tensor& value) {
    const bool block_linear = name.rfind("model.layers.", 0) == 0 && name.size() > 12 &&
                              name.compare(name.size() - 12, 12, "_proj.weight") == 0;
    if (!block_linear) return put(name, value);
    NoGradGuard no_grad;
    put(name, ternarize(value.dtype() == DType::f32 || !value.device().is_cpu() ? value : cast(value, DType::f32)));
  };
}

}  // namespace

// As HF's Trainer ends a run with load_best_model_at_end: the best checkpoint's weights are what
// the final export writes (on every rank). The checkpoint is looked for where it was written, else
// beside the checkpoint resumed (the run's directory moved since); found in neither (deleted, or
// another run's there), HF's Trainer warns and keeps the last weights, and so does this.
void Trainer::Impl::load_best_model() {
  std::vector<std::string> places{state.best_checkpoint_dir};
  if (!resumed_from.empty()) places.push_back(beside_resumed(state.best_checkpoint_step));
  const auto this_runs = [&](const std::string& place) {
    if (!std::filesystem::is_directory(place)) return false;
    const std::optional<std::string> id = checkpoint_run_id(place);
    return !id || *id == run_id;  // no run id: a legacy (unsealed) checkpoint, which cannot be told
  };
  // Rank 0's finding holds for every rank: the read below is collective.
  int64_t index = std::find_if(places.begin(), places.end(), this_runs) - places.begin();
  comm.broadcast(&index, sizeof(index), 0);
  const auto found = places.begin() + index;
  if (found == places.end()) {
    std::string where = places[0];
    for (size_t i = 1; i < places.size(); i++) where += " or " + places[i];
    say("warning: load_best_model_at_end: could not locate this run's checkpoint of step {} (the best evaluation's) "
        "at {}; the final model is the last step's weights, as HF's Trainer warns and goes on\n",
        state.best_checkpoint_step, where);
    return;
  }
  const std::string& dir = *found;
  OpenCheckpoint best = open_checkpoint(dir);
  load_weights(*best.model);
  best.model->verify_parts(comm);
  say("load_best_model_at_end: the final model is the weights of {}, the best evaluation's checkpoint{}\n", dir,
      state.best_step != state.best_checkpoint_step
          ? fmt::format(" (the best of all, step {}, was not a save step, so HF's Trainer has no checkpoint of it)", state.best_step)
          : "");
}

// The tokenizer goes beside each export, as HF's Trainer saves it (rank 0 only); beside a full
// model also its generation config, as save_pretrained writes it: the base's generation_config.json
// (Llama 3.1+'s end ids and sampling defaults), else the one transformers makes from config.json;
// none beside a sequence classifier, which cannot generate (save_pretrained writes none either).
// Returns ", name" for each file written.
std::string Trainer::Impl::files_beside(const std::string& dir, bool full_model) const {
  const TrainConfig& c = config;
  std::string names;
  if (full_model && model->config().num_labels == 0) {
    const std::string base = (std::filesystem::path(c.base_model) / kHfGenerationConfigFile).string();
    std::error_code ec;
    write_text_atomically((std::filesystem::path(dir) / kHfGenerationConfigFile).string(),
                          std::filesystem::is_regular_file(base, ec)
                              ? read_whole_file(base, "the base model's generation config (JSON)")
                              : hf_generation_config_json(model->config(), {tokenizer->bos(), tokenizer->eos()}));
    names += std::string(", ") + kHfGenerationConfigFile;
  }
  const TokenizerFiles files{c.tokenizer_config, c.special_tokens, c.data.chat_template_source, c.added_tokens_overrides,
                             new_token_ids(*tokenizer, added_tokens, tokenizer_file_vocab)};
  for (const std::string& name : save_tokenizer_files(files, dir)) names += ", " + name;
  return names;
}

std::string Trainer::Impl::export_merged_model(DType dtype) {
  const std::string merged = merged_model_dir(config);
  // An 8-bit base merges as Axolotl's merge reloads it: unquantised (an NF4 base merges onto its
  // dequantised codes, as Axolotl's merge simulates NF4 for a 4-bit run).
  BaseWeightStream base;
  if (config.load_in_8bit) base = [this](const WeightSink& sink) { stream_base(base_loaded, sink); };
  save_merged_model(*model, merged, dtype, {tokenizer->bos(), tokenizer->eos()}, base);
  say("exported base + adapters merged to {} (config.json, {} safetensors{})\n", merged, dtype_name(dtype),
      files_beside(merged));
  return merged;
}

std::string Trainer::merge_lora_adapter(TrainConfig config) {
  const Communicator& comm = Communicator::get();
  if (comm.world_size() > 1)
    throw EveryRankError(config.source + ": merge-lora: expected one rank, got " + std::to_string(comm.world_size()));
  if (config.adapter.empty() || config.lora_model_dir.empty())
    throw UserError(config.source + ": merge-lora: expected adapter: lora or qlora and an adapter directory "
                    "(lora_model_dir, else output_dir), got " + (config.adapter.empty() ? "no adapter" : "none"));
  refuse_export_into_base(config, merged_model_dir(config), "merged");
  Impl impl(std::move(config), Impl::Purpose::merge);
  return impl.export_merged_model(impl.export_dtype());
}

// The end of a run that was not interrupted (called on every rank).
void Trainer::Impl::export_final_model() {
  // The end of a run needs no more memory than its steps: under ZeRO the final weights reach
  // rank 0's host one bucket (ZeRO-3: one unit) at a time, each written and dropped before the
  // next (export_weights), and samples gather one unit at a time (sample_text). An adapter run's
  // frozen base is gathered whole only for merge_lora's merged model (the adapters are whole
  // already).
  const TrainConfig& c = config;
  const HfTokenIds ids{tokenizer->bos(), tokenizer->eos(), tokenizer->pad()};
  const DType out_dtype = export_dtype();
  const char* dtype = dtype_name(out_dtype);
  // As Axolotl ends a run: the final model in output_dir, ready for from_pretrained.
  if (!model->lora()) {
    if (!comm.is_main()) {
      export_weights([](const std::string&, const Tensor&) {});  // the gathers, their results dropped
      return;
    }
    // What trains, and what unfrozen_parameters left frozen (whole on every rank, as loaded); a
    // layer LISA froze for the last interval is one that trains.
    std::vector<TensorEntry> table = weight_table();
    std::vector<ParamRef> frozen;
    for (const ParamRef& p : model->parameters())
      if (std::find(param_tensors.begin(), param_tensors.end(), p.tensor) == param_tensors.end()) frozen.push_back(p);
    for (const ParamRef& p : frozen) table.push_back({p.name, p.tensor->dtype(), p.tensor->shape()});
    save_hf_tensors(model->config(), table, [&](const TensorSink& sink) {
      const TensorSink put = c.qat.weight == QatScheme::Weight::ternary ? baking_ternary(sink) : sink;
      export_weights(put);
      for (const ParamRef& p : frozen) put(p.name, *p.tensor);
    }, c.output_dir, out_dtype, ids);
    say("exported the final model to {} (config.json, {} safetensors{})\n", c.output_dir, dtype,
        files_beside(c.output_dir));
    return;
  }
  if (c.relora) {  // as Axolotl ends a ReLoRA run: the base with every period's adapters merged
    if (!comm.is_main()) return;
    save_merged_model(*model, c.output_dir, out_dtype, ids);
    say("exported the model with its ReLoRA adapters merged to {} (config.json, {} safetensors{})\n", c.output_dir,
        dtype, files_beside(c.output_dir));
    return;
  }
  if (frozen_shards && c.merge_lora) {
    frozen_shards->gather_all();
    model->set_weight_units(nullptr);
  }
  if (!comm.is_main()) return;
  // As Axolotl's LoRA runs: the adapter, in PEFT's format.
  save_peft_adapter(*model, c.output_dir, c.base_model, out_dtype);
  say("exported the adapter to {} ({}, {} {}{})\n", c.output_dir, kPeftConfigFile, dtype, kPeftWeightsFile,
      files_beside(c.output_dir, false));
  if (c.merge_lora) export_merged_model(out_dtype);
}

}  // namespace llm
