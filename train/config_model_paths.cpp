// defines: read_revision, read_base_model, read_base_model_config, read_tokenizer_config, read_lora_model_dir (the keys
// naming a model's files: a preset, a local directory, or a hub id in the local HF cache)
#include <filesystem>
#include <optional>

#include "io/bpe_tokenizer.h"
#include "io/hf_hub_cache.h"
#include "model/hf_config.h"
#include "model/peft_adapter.h"
#include "train/config_fields.h"

namespace llm {

namespace fs = std::filesystem;

// A local path as given (beside the config first), else a hub id's snapshot in the local HF
// cache at `revision`, as transformers reads one offline; a hub id the cache lacks is refused
// with how to fetch it.
namespace {

std::string local_or_cached(ReadContext& ctx, const YAML::Node& n, const Where& w, const std::string& expected,
                            const std::string& revision = "main") {
  const std::string path = ctx.beside_config(n.Scalar());
  std::error_code ec;
  if (fs::exists(path, ec) || !looks_like_hub_id(n.Scalar())) return path;
  if (std::optional<std::string> snapshot = find_hub_snapshot(n.Scalar(), HubRepoKind::model, revision))
    return *snapshot;
  fail(w, expected, "hub id '" + n.Scalar() + "' at revision " + revision + ", which the local Hugging Face cache " +
                        "does not hold; " + hub_download_hint(n.Scalar(), HubRepoKind::model));
}

// The revision base_model and tokenizer_config resolve at (an adapter's hub id takes main).
std::string model_revision(const ReadContext& ctx) {
  return ctx.config.revision_of_model.empty() ? "main" : ctx.config.revision_of_model;
}

}  // namespace

void read_lora_model_dir(ReadContext& ctx, const YAML::Node& n, const Where& w) {
  const std::string expected =
      "a PEFT adapter directory (adapter_config.json + adapter_model.safetensors), or its hub id in the local HF cache";
  read_string(n, w);
  const std::string dir = local_or_cached(ctx, n, w, expected);
  std::error_code ec;
  if (!fs::is_regular_file(fs::path(dir) / kPeftConfigFile, ec)) fail(w, expected, describe(n));
  ctx.config.lora_model_dir = dir;
}

void read_revision(ReadContext& ctx, const YAML::Node& n, const Where& w) {
  ctx.config.revision_of_model = read_string(n, w);
}

void read_base_model(ReadContext& ctx, const YAML::Node& n, const Where& w) {
  const std::string expected = "a preset (" + join(llama_preset_names()) +
                               "), an HF model directory holding config.json or a hub id in the local HF cache";
  if (!n.IsScalar() || n.Scalar().empty()) fail(w, expected, describe(n));
  TrainConfig& c = ctx.config;
  if (std::optional<LlamaConfig> preset = llama_preset(n.Scalar())) {
    c.base_model = n.Scalar();
    c.model = *preset;
    return;
  }
  const std::string dir = local_or_cached(ctx, n, w, expected, model_revision(ctx));
  if (!is_hf_model_dir(dir)) fail(w, expected, describe(n));
  c.base_model = dir;
  c.model = read_hf_config((fs::path(dir) / kHfConfigFile).string());
}

void read_base_model_config(ReadContext& ctx, const YAML::Node& n, const Where& w) {
  const std::string expected = "an HF model directory holding config.json or a hub id in the local HF cache";
  const std::string dir = local_or_cached(ctx, n, w, expected, model_revision(ctx));
  if (!is_hf_model_dir(dir)) fail(w, expected, describe(n));
  ctx.config.base_model_config = dir;
  ctx.config.model = read_hf_config((fs::path(dir) / kHfConfigFile).string());
}

void read_tokenizer_config(ReadContext& ctx, const YAML::Node& n, const Where& w) {
  const std::string expected =
      "a tokenizer.json or tiktoken tokenizer.model file, or a directory (or hub id in the local HF cache) "
      "holding tokenizer.json, tokenizer.model or original/tokenizer.model";
  read_string(n, w);
  std::optional<std::string> model = find_bpe_tokenizer(local_or_cached(ctx, n, w, expected, model_revision(ctx)));
  if (!model) fail(w, expected, describe(n));
  ctx.config.tokenizer_config = *model;
}

}  // namespace llm
