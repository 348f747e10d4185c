// defines: save_checkpoint, load_checkpoint, verify_checkpoint, list_checkpoints,
// find_latest_valid_checkpoint, prune_checkpoints, the `latest` pointer
#include "io/checkpoint.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <utility>

#include "engine/check.h"
#include "io/durable_file.h"
#include "engine/user_error.h"

namespace llm {
namespace {

namespace fs = std::filesystem;

constexpr const char* kConfigFile = "config.yaml";
constexpr const char* kModelFile = "model.bin";
constexpr const char* kOptimizerFile = "optimizer.bin";
constexpr const char* kTrainerFile = "trainer.bin";
constexpr const char* kLatestFile = "latest";
constexpr const char* kTmpSuffix = ".tmp";

std::string join(const std::string& dir, const std::string& name) {
  return (fs::path(dir) / name).string();
}

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

void remove_tree(const fs::path& path) {
  std::error_code ec;
  fs::remove_all(path, ec);
  if (ec) throw UserError(path.string() + ": cannot remove: " + ec.message());
}

void rename_path(const fs::path& from, const fs::path& to) {
  if (std::rename(from.c_str(), to.c_str()) != 0)
    throw UserError(from.string() + ": cannot rename to " + to.string() + ": " +
                    std::strerror(errno));
}

// step_N.tmp directories and latest.tmp are what a crash mid-save (or mid-prune) leaves behind.
void remove_leftovers(const std::string& output_dir) {
  std::error_code ec;
  std::vector<fs::path> garbage;
  for (const fs::directory_entry& entry : fs::directory_iterator(output_dir, ec)) {
    std::string name = entry.path().filename().string();
    if ((name.rfind("step_", 0) == 0 && ends_with(name, kTmpSuffix)) ||
        name == std::string(kLatestFile) + kTmpSuffix)
      garbage.push_back(entry.path());
  }
  for (const fs::path& path : garbage) remove_tree(path);
}

// Puts the complete directory `tmp` at `final_dir`. When final_dir already exists the two are
// swapped atomically (RENAME_EXCHANGE) and the old contents, now at tmp, are deleted after the
// swap is durable. Filesystems without RENAME_EXCHANGE (NFS, some FUSE) move the old one aside
// first: a crash in that short window loses only the checkpoint being replaced.
void install_dir(const fs::path& tmp, const fs::path& final_dir, const std::string& output_dir) {
  if (!fs::exists(final_dir)) {
    rename_path(tmp, final_dir);
    fsync_dir(output_dir);
    return;
  }
  if (::renameat2(AT_FDCWD, tmp.c_str(), AT_FDCWD, final_dir.c_str(), RENAME_EXCHANGE) == 0) {
    fsync_dir(output_dir);
    remove_tree(tmp);
    return;
  }
  if (errno != EINVAL && errno != ENOSYS && errno != ENOTSUP)
    throw UserError(final_dir.string() + ": cannot replace: " + std::strerror(errno));
  fs::path old = final_dir.string() + ".old" + kTmpSuffix;
  remove_tree(old);
  rename_path(final_dir, old);
  rename_path(tmp, final_dir);
  fsync_dir(output_dir);
  remove_tree(old);
}

std::string existing_file(const std::string& dir, const char* name) {
  std::string path = join(dir, name);
  if (!fs::is_regular_file(path)) throw UserError(path + ": missing (incomplete checkpoint)");
  return path;
}

void check_checkpoint_dir(const std::string& dir) {
  if (!fs::is_directory(dir))
    throw UserError(dir + ": not a checkpoint directory (no such directory)");
}

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  if (!in) throw UserError(path + ": cannot read: " + std::strerror(errno));
  return text.str();
}

}  // namespace

std::string checkpoint_dir_name(int64_t step) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "step_%06lld", static_cast<long long>(step));
  return buf;
}

std::optional<int64_t> checkpoint_step(const std::string& dir) {
  fs::path path(dir);
  if (path.filename().empty()) path = path.parent_path();  // "out/step_000010/"
  std::string name = path.filename().string();
  if (name.rfind("step_", 0) != 0) return std::nullopt;
  std::string digits = name.substr(5);
  if (digits.empty() || digits.size() > 18) return std::nullopt;
  for (char c : digits)
    if (c < '0' || c > '9') return std::nullopt;
  return std::stoll(digits);
}

std::string save_checkpoint(const std::string& output_dir, int64_t step,
                            const CheckpointContents& contents) {
  LLM_CHECK(step >= 0, "save_checkpoint: negative step " + std::to_string(step));
  std::error_code ec;
  fs::create_directories(output_dir, ec);
  if (ec) throw UserError(output_dir + ": cannot create output directory: " + ec.message());
  remove_leftovers(output_dir);

  std::string name = checkpoint_dir_name(step);
  fs::path final_dir = fs::path(output_dir) / name;
  fs::path tmp = final_dir.string() + kTmpSuffix;
  if (!fs::create_directory(tmp, ec))
    throw UserError(tmp.string() + ": cannot create directory: " + ec.message());
  write_text_durably(join(tmp, kConfigFile), contents.config_yaml);
  write_tensor_file(join(tmp, kModelFile), contents.model);
  write_tensor_file(join(tmp, kOptimizerFile), contents.optimizer);
  write_tensor_file(join(tmp, kTrainerFile), contents.trainer);
  fsync_dir(tmp);
  install_dir(tmp, final_dir, output_dir);

  // `latest` is replaced atomically too, so a reader sees the old or the new name, never half.
  write_text_atomically(join(output_dir, kLatestFile), name + "\n");
  return final_dir.string();
}

CheckpointContents load_checkpoint(const std::string& dir) {
  check_checkpoint_dir(dir);
  CheckpointContents contents;
  contents.config_yaml = read_text(existing_file(dir, kConfigFile));
  contents.model = read_tensor_file(existing_file(dir, kModelFile));
  contents.optimizer = read_tensor_file(existing_file(dir, kOptimizerFile));
  contents.trainer = read_tensor_file(existing_file(dir, kTrainerFile));
  return contents;
}

void verify_checkpoint(const std::string& dir) {
  check_checkpoint_dir(dir);
  existing_file(dir, kConfigFile);
  for (const char* name : {kModelFile, kOptimizerFile, kTrainerFile})
    verify_tensor_file(existing_file(dir, name));
}

std::vector<std::string> list_checkpoints(const std::string& output_dir) {
  std::vector<std::pair<int64_t, std::string>> found;
  std::error_code ec;
  for (const fs::directory_entry& entry : fs::directory_iterator(output_dir, ec)) {
    std::optional<int64_t> step = checkpoint_step(entry.path().string());
    if (step && entry.is_directory(ec)) found.emplace_back(*step, entry.path().string());
  }
  std::sort(found.begin(), found.end());
  std::vector<std::string> dirs;
  for (auto& [step, dir] : found) dirs.push_back(std::move(dir));
  return dirs;
}

std::optional<std::string> find_latest_valid_checkpoint(
    const std::string& output_dir, const std::function<void(const std::string&)>& warn) {
  std::vector<std::string> dirs = list_checkpoints(output_dir);
  for (auto it = dirs.rbegin(); it != dirs.rend(); ++it) {
    try {
      verify_checkpoint(*it);
      return *it;
    } catch (const UserError& e) {
      warn(std::string(e.what()) + "; skipping " + *it);
    }
  }
  return std::nullopt;
}

std::optional<std::string> read_latest_pointer(const std::string& output_dir) {
  std::ifstream in(join(output_dir, kLatestFile));
  std::string name;
  if (!(in >> name)) return std::nullopt;
  return name;
}

void prune_checkpoints(const std::string& output_dir, int64_t save_total_limit,
                       std::optional<int64_t> keep_step) {
  if (save_total_limit <= 0) return;
  std::vector<std::string> dirs = list_checkpoints(output_dir);
  std::set<std::string> keep;
  int64_t first_kept = std::max<int64_t>(0, static_cast<int64_t>(dirs.size()) - save_total_limit);
  for (size_t i = first_kept; i < dirs.size(); i++)
    keep.insert(fs::path(dirs[i]).filename().string());
  if (keep_step) keep.insert(checkpoint_dir_name(*keep_step));
  if (std::optional<std::string> latest = read_latest_pointer(output_dir)) keep.insert(*latest);
  for (const std::string& dir : dirs) {
    if (keep.count(fs::path(dir).filename().string())) continue;
    // Renamed first so an interrupted delete never leaves a half-deleted step_N/ that looks like
    // a damaged checkpoint; the *.tmp leftover goes with the next save. A lost rename after a
    // crash only brings back an old, complete checkpoint, so it needs no fsync.
    fs::path doomed = dir + kTmpSuffix;
    remove_tree(doomed);
    rename_path(dir, doomed);
    remove_tree(doomed);
  }
}

}  // namespace llm
