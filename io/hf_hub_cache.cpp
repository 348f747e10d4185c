// defines: hf_hub_cache_dir, looks_like_hub_id, find_hub_snapshot, hub_download_hint
// (io/hf_hub_cache.h)
#include "io/hf_hub_cache.h"

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <filesystem>
#include <fstream>


namespace llm {

namespace fs = std::filesystem;

namespace {

std::string env(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}

bool hex_commit(const std::string& s) {
  if (s.size() != 40) return false;
  for (char c : s)
    if (!std::isxdigit(static_cast<unsigned char>(c))) return false;
  return true;
}

// One part of a repo id: huggingface_hub's rule (word characters, '-', '.'; no "--" or "..",
// and neither '-' nor '.' at either end).
bool id_part(const std::string& part) {
  if (part.empty() || part.size() > 96) return false;
  for (char c : part)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_' && c != '.') return false;
  const auto edge = [](char c) { return c == '-' || c == '.'; };
  return !edge(part.front()) && !edge(part.back()) && part.find("--") == std::string::npos &&
         part.find("..") == std::string::npos;
}

}  // namespace

std::string hf_hub_cache_dir() {
  if (const std::string hub = env("HF_HUB_CACHE"); !hub.empty()) return hub;
  if (const std::string legacy = env("HUGGINGFACE_HUB_CACHE"); !legacy.empty()) return legacy;
  if (const std::string home = env("HF_HOME"); !home.empty()) return (fs::path(home) / "hub").string();
  if (const std::string xdg = env("XDG_CACHE_HOME"); !xdg.empty())
    return (fs::path(xdg) / "huggingface" / "hub").string();
  return (fs::path(env("HOME")) / ".cache" / "huggingface" / "hub").string();
}

bool looks_like_hub_id(const std::string& text) {
  const size_t slash = text.find('/');
  return slash != std::string::npos && text.find('/', slash + 1) == std::string::npos && id_part(text.substr(0, slash)) &&
         id_part(text.substr(slash + 1));
}

std::optional<std::string> find_hub_snapshot(const std::string& repo_id, HubRepoKind kind,
                                             const std::string& revision) {
  if (!looks_like_hub_id(repo_id)) return std::nullopt;
  std::string folder = (kind == HubRepoKind::model ? "models--" : "datasets--") + repo_id;
  if (const size_t slash = folder.find('/'); slash != std::string::npos) folder.replace(slash, 1, "--");
  const fs::path repo = fs::path(hf_hub_cache_dir()) / folder;
  std::string commit = revision;
  if (!hex_commit(revision)) {
    // A branch or tag: refs/<revision> holds its commit. A ref name never climbs out of refs/.
    if (revision.empty() || revision.find("..") != std::string::npos || revision.front() == '/') return std::nullopt;
    std::ifstream ref(repo / "refs" / revision);
    if (!(ref >> commit) || !hex_commit(commit)) return std::nullopt;
  }
  std::error_code ec;
  const fs::path snapshot = repo / "snapshots" / commit;
  if (!fs::is_directory(snapshot, ec)) return std::nullopt;
  return snapshot.string();
}

std::optional<std::string> hub_id_of_snapshot(const std::string& dir) {
  const fs::path snapshot = fs::path(dir).lexically_normal();
  const fs::path snapshots = (snapshot.has_filename() ? snapshot : snapshot.parent_path()).parent_path();
  const std::string repo = snapshots.parent_path().filename().string(), prefix = "models--";
  if (snapshots.filename() != "snapshots" || repo.rfind(prefix, 0) != 0) return std::nullopt;
  std::string id = repo.substr(prefix.size());
  const size_t separator = id.find("--");
  if (separator == std::string::npos) return std::nullopt;
  id.replace(separator, 2, "/");
  return looks_like_hub_id(id) ? std::optional<std::string>(id) : std::nullopt;
}

std::string hub_download_hint(const std::string& repo_id, HubRepoKind kind) {
  return "nothing is downloaded here: fetch it first (huggingface-cli download " +
         std::string(kind == HubRepoKind::dataset ? "--repo-type dataset " : "") + repo_id + ") into the hub cache " +
         hf_hub_cache_dir() + " (HF_HUB_CACHE / HF_HOME), or name a local directory";
}

}  // namespace llm
