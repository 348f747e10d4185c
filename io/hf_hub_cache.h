// Hugging Face hub ids ("meta-llama/Llama-3.2-1B") resolved in the local hub cache, as
// transformers does offline: nothing is downloaded. A repo lives in
// <cache>/models--<org>--<name>/ (datasets--... for datasets); refs/<revision> holds the commit
// whose snapshot, snapshots/<commit>/, is the repo's tree (files are symlinks into blobs/).
#pragma once
#include <optional>
#include <string>
#include <vector>

namespace llm {

enum class HubRepoKind { model, dataset };

// The cache directory: $HF_HUB_CACHE, else $HF_HOME/hub, else $XDG_CACHE_HOME/huggingface/hub,
// else ~/.cache/huggingface/hub (huggingface_hub's order).
std::string hf_hub_cache_dir();

// Whether `text` is shaped like a hub id, "org/name", each part of letters, digits, '-', '_' and
// '.' (never "." or ".."). The hub's few ids without an org (gpt2) are none of Llama's; a single
// name here is a local path.
bool looks_like_hub_id(const std::string& text);

// The snapshot directory of `repo_id` at `revision` (a branch or tag named in refs/, or a commit
// hash), nullopt when the cache does not hold it.
std::optional<std::string> find_hub_snapshot(const std::string& repo_id, HubRepoKind kind,
                                             const std::string& revision = "main");

// The model hub id whose cached snapshot `dir` is (<cache>/models--org--name/snapshots/<commit>:
// "org/name"), nullopt for any other directory. Hub ids never hold "--".
std::optional<std::string> hub_id_of_snapshot(const std::string& dir);

// The hint a refusal ends with: where the cache was looked for and how to fill it.
std::string hub_download_hint(const std::string& repo_id, HubRepoKind kind);

}  // namespace llm
