// defines: save_checkpoint, load_checkpoint, open_checkpoint, verify_checkpoint, list_checkpoints,
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
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <sstream>
#include <utility>

#include "engine/check.h"
#include "io/durable_file.h"
#include "io/ends_with.h"
#include "io/json_text.h"
#include "io/special_file.h"
#include "engine/user_error.h"

namespace llm {
namespace {

namespace fs = std::filesystem;

constexpr const char* kConfigFile = "config.yaml";
constexpr const char* kModelFile = "model.bin";
constexpr const char* kOptimizerFile = "optimizer.bin";
constexpr const char* kTrainerFile = "trainer.bin";
constexpr const char* kMetricsFile = "metrics.jsonl";  // optional: checkpoints before 2026-12-06 have none
constexpr const char* kManifestFile = "manifest.json";
constexpr int64_t kManifestFormat = 1;
constexpr const char* kLatestFile = "latest";
constexpr const char* kTmpSuffix = ".tmp";

std::string join(const std::string& dir, const std::string& name) {
  return (fs::path(dir) / name).string();
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
  std::error_code ec;
  const fs::file_type type = fs::status(path, ec).type();
  if (type == fs::file_type::regular) return path;
  // "missing" only when it is: a directory in its place is not an unfinished write.
  if (type == fs::file_type::not_found || type == fs::file_type::none)
    throw UserError(path + ": missing (incomplete checkpoint)");
  throw UserError(path + ": expected a file of the checkpoint, got " +
                  (type == fs::file_type::directory ? "a directory" : "a special file"));
}

void check_checkpoint_dir(const std::string& dir) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec))
    throw UserError(dir + ": not a checkpoint directory (" +
                    (fs::exists(dir, ec) ? "a file" : "no such directory") + ")");
  // A run's output_dir named for one of its checkpoints (HF's resume_from_checkpoint=True means
  // "the newest there"; here that is auto_resume_from_checkpoints).
  for (const char* file : {kManifestFile, kConfigFile, kModelFile, kOptimizerFile, kTrainerFile})
    if (fs::exists(join(dir, file), ec)) return;  // some of a checkpoint: what is missing is said later
  if (const std::vector<std::string> inside = list_checkpoints(dir); !inside.empty())
    throw UserError(dir + ": expected a checkpoint directory, got an output_dir holding " +
                    std::to_string(inside.size()) + " checkpoint(s): name one (the newest: " + inside.back() +
                    "), or set auto_resume_from_checkpoints: true in the config to take the newest valid one");
  throw UserError(dir + ": expected a checkpoint directory (step_NNNNNN, holding manifest.json, config.yaml and "
                  "model.bin), got a directory with none of them");
}

std::string read_text(const std::string& path) {
  if (std::optional<std::string> kind = special_file_kind(path)) throw UserError(path + ": expected a file, got " + *kind);
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  if (!in) throw UserError(path + ": cannot read: " + std::strerror(errno));
  return text.str();
}

bool is_run_id(const std::string& id) {
  return id.size() == 16 && id.find_first_not_of("0123456789abcdef") == std::string::npos;
}

struct FileSeal {
  uint64_t bytes = 0;
  std::string crc32;  // 8 hex digits: crc32() of config.yaml, a tensor file's own checksum
};

// What manifest.json records; nullopt for a legacy checkpoint written before manifests.
struct Manifest {
  int64_t step = 0;
  std::string run_id;
  std::map<std::string, FileSeal> files;
};

std::string manifest_json(int64_t step, const std::string& run_id,
                          const std::map<std::string, FileSeal>& files) {
  nlohmann::ordered_json json = {{"format", kManifestFormat}, {"step", step}, {"run_id", run_id}};
  for (const auto& [name, seal] : files)
    json["files"][name] = {{"bytes", seal.bytes}, {"crc32", seal.crc32}};
  return json.dump(2) + "\n";
}

std::optional<Manifest> read_manifest(const std::string& dir) {
  const std::string path = join(dir, kManifestFile);
  if (!fs::exists(path)) return std::nullopt;
  auto bad = [&](const std::string& what) { return UserError(path + ": " + what); };
  Manifest m;
  try {
    const nlohmann::json json = parse_json_text(read_text(path), path, "a checkpoint manifest");
    if (json.at("format").get<int64_t>() != kManifestFormat)
      throw bad("format " + json.at("format").dump() + " is not supported (this build reads " +
                std::to_string(kManifestFormat) + ")");
    // Whole numbers only: a float or a negative would be cast to some other count.
    if (!json.at("step").is_number_unsigned()) throw bad("step " + json.at("step").dump() + " is not a step number");
    m.step = json.at("step").get<int64_t>();
    m.run_id = json.at("run_id").get<std::string>();
    for (const auto& [name, seal] : json.at("files").items()) {
      if (!seal.at("bytes").is_number_unsigned())
        throw bad(name + ": bytes " + seal.at("bytes").dump() + " is not a byte count");
      m.files[name] = {seal.at("bytes").get<uint64_t>(), seal.at("crc32").get<std::string>()};
    }
  } catch (const nlohmann::json::exception& e) {
    // nlohmann's text after its "[json.exception.type_error.302] " tag: which key or type was off.
    const std::string what = e.what();
    const size_t tag_end = what.find("] ");
    throw bad("not a valid manifest ({format, step, run_id, files: {name: {bytes, crc32}}}): " +
              (tag_end == std::string::npos ? what : what.substr(tag_end + 2)));
  }
  if (!is_run_id(m.run_id)) throw bad("run_id \"" + m.run_id + "\" is not 16 hex digits");
  // Exactly the checkpoint's own files: a name from the manifest is never a path to follow.
  std::set<std::string> listed;
  for (const auto& entry : m.files) listed.insert(entry.first);
  listed.erase(kMetricsFile);
  if (listed != std::set<std::string>{kConfigFile, kModelFile, kOptimizerFile, kTrainerFile})
    throw bad("lists the files " + nlohmann::json(listed).dump() +
              "; expected config.yaml, model.bin, optimizer.bin, trainer.bin and optionally metrics.jsonl");
  std::optional<int64_t> dir_step = checkpoint_step(dir);
  if (dir_step && *dir_step != m.step)
    throw bad("seals step " + std::to_string(m.step) + ", but the directory is " +
              checkpoint_dir_name(*dir_step) + " (a manifest from another checkpoint)");
  return m;
}

// Every file present with the size the manifest records: the whole checkpoint is checked
// before a byte of it loads (a cut file fails here, not halfway through a resume).
void check_sizes(const std::string& dir, const Manifest& m) {
  for (const auto& [name, seal] : m.files) {
    const std::string path = existing_file(dir, name.c_str());
    const uint64_t bytes = fs::file_size(path);
    if (bytes != seal.bytes)
      throw UserError(path + ": " + std::to_string(bytes) + " bytes, but " + kManifestFile +
                      " records " + std::to_string(seal.bytes) +
                      " (truncated, or changed after the checkpoint was sealed)");
  }
}

void check_checksum(const std::string& path, uint32_t crc, const FileSeal& seal) {
  if (crc32_hex(crc) != seal.crc32)
    throw UserError(path + ": checksum " + crc32_hex(crc) + ", but " + kManifestFile +
                    " records " + seal.crc32 + " (changed after the checkpoint was sealed)");
}

// A tensor file against the manifest: the step and run its metadata names, then its checksum.
void check_tensor_file(const TensorFile& file, const char* name, const Manifest& m) {
  const std::string& step = file.require_metadata("step");
  if (step != std::to_string(m.step))
    throw UserError(file.path + ": written at step " + step + ", but " + kManifestFile +
                    " seals step " + std::to_string(m.step) + " (a file from another checkpoint)");
  const std::string& run = file.require_metadata("run_id");
  if (run != m.run_id)
    throw UserError(file.path + ": written by run " + run + ", but " + kManifestFile +
                    " seals run " + m.run_id + " (a file from another run)");
  check_checksum(file.path, file.checksum, m.files.at(name));
}

// A text file of the checkpoint, checked against the manifest's seal when there is one.
std::string read_sealed_text(const std::string& dir, const char* name, const std::optional<Manifest>& m) {
  const std::string path = existing_file(dir, name);
  std::string text = read_text(path);
  if (m) check_checksum(path, crc32(text.data(), text.size()), m->files.at(name));
  return text;
}

std::string read_config(const std::string& dir, const std::optional<Manifest>& m) {
  return read_sealed_text(dir, kConfigFile, m);
}

struct CheckedCheckpoint {
  std::string config;
  std::optional<std::string> metrics_log;
  std::optional<Manifest> manifest;
};

// load_checkpoint, verify_checkpoint and open_checkpoint: every check up to the tensor files,
// then `each(path, index)` for model.bin, optimizer.bin and trainer.bin (index 0 to 2), which
// reads, opens or streams the file and returns it without its tensors or with them, checked here
// against the manifest. Returns the config text, the metrics log and the manifest.
CheckedCheckpoint check_checkpoint(const std::string& dir,
                                   const std::function<const TensorFile&(const std::string& path, int index)>& each) {
  check_checkpoint_dir(dir);
  CheckedCheckpoint checked;
  checked.manifest = read_manifest(dir);
  const std::optional<Manifest>& manifest = checked.manifest;
  if (manifest) check_sizes(dir, *manifest);
  checked.config = read_config(dir, manifest);
  if (manifest && manifest->files.count(kMetricsFile)) checked.metrics_log = read_sealed_text(dir, kMetricsFile, manifest);
  const char* names[] = {kModelFile, kOptimizerFile, kTrainerFile};
  for (int i = 0; i < 3; i++) {
    const TensorFile& file = each(existing_file(dir, names[i]), i);
    if (manifest) check_tensor_file(file, names[i], *manifest);
  }
  return checked;
}

}  // namespace

std::string new_run_id() {
  std::random_device device;
  const uint64_t id = (static_cast<uint64_t>(device()) << 32) ^ device();
  char buf[17];
  std::snprintf(buf, sizeof(buf), "%016llx", static_cast<unsigned long long>(id));
  return buf;
}

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

std::string save_checkpoint(const std::string& output_dir, int64_t step, const CheckpointSave& contents) {
  LLM_CHECK(step >= 0, "save_checkpoint: negative step " + std::to_string(step));
  LLM_CHECK(is_run_id(contents.run_id), "save_checkpoint: run_id \"" + contents.run_id +
                                            "\" is not 16 hex digits");
  std::error_code ec;
  fs::create_directories(output_dir, ec);
  if (ec) throw UserError(output_dir + ": cannot create output directory: " + ec.message());
  remove_leftovers(output_dir);

  std::string name = checkpoint_dir_name(step);
  fs::path final_dir = fs::path(output_dir) / name;
  fs::path tmp = final_dir.string() + kTmpSuffix;
  if (!fs::create_directory(tmp, ec))
    throw UserError(tmp.string() + ": cannot create directory: " + ec.message());
  std::map<std::string, FileSeal> seals;
  const auto write_sealed_text = [&](const char* name, const std::string& text) {
    write_text_durably(join(tmp, name), text);
    seals[name] = {text.size(), crc32_hex(crc32(text.data(), text.size()))};
  };
  write_sealed_text(kConfigFile, contents.config_yaml);
  if (contents.metrics_log) write_sealed_text(kMetricsFile, *contents.metrics_log);
  const TensorFileSource trainer = source_of(contents.trainer);
  // In this order: a sharded save's ranks take part in model.bin's gathers, then optimizer.bin's.
  const std::pair<const char*, const TensorFileSource*> bins[] = {
      {kModelFile, &contents.model}, {kOptimizerFile, &contents.optimizer}, {kTrainerFile, &trainer}};
  for (const auto& [file_name, source] : bins) {
    TensorFileSource stamped = *source;  // the same producer; only the metadata is copied
    stamped.metadata["step"] = std::to_string(step);
    stamped.metadata["run_id"] = contents.run_id;
    const std::string path = join(tmp, file_name);
    const uint32_t crc = write_tensor_file(path, stamped);
    seals[file_name] = {fs::file_size(path), crc32_hex(crc)};
  }
  // Last: a manifest exists only once every file it seals is complete.
  write_text_durably(join(tmp, kManifestFile), manifest_json(step, contents.run_id, seals));
  fsync_dir(tmp);
  install_dir(tmp, final_dir, output_dir);

  // `latest` is replaced atomically too, so a reader sees the old or the new name, never half.
  write_text_atomically(join(output_dir, kLatestFile), name + "\n");
  return final_dir.string();
}

std::string save_checkpoint(const std::string& output_dir, int64_t step, const CheckpointContents& contents) {
  return save_checkpoint(output_dir, step, CheckpointSave{contents.config_yaml, source_of(contents.model),
                                                          source_of(contents.optimizer), contents.trainer,
                                                          contents.run_id, contents.metrics_log});
}

CheckpointContents load_checkpoint(const std::string& dir) {
  CheckpointContents c;
  TensorFile CheckpointContents::*bins[] = {&CheckpointContents::model, &CheckpointContents::optimizer,
                                            &CheckpointContents::trainer};
  CheckedCheckpoint checked = check_checkpoint(dir, [&](const std::string& path, int i) -> const TensorFile& {
    return c.*bins[i] = read_tensor_file(path);
  });
  c.config_yaml = std::move(checked.config);
  c.metrics_log = std::move(checked.metrics_log);
  c.run_id = checked.manifest ? checked.manifest->run_id : "";
  c.sealed = checked.manifest.has_value();
  return c;
}

OpenCheckpoint open_checkpoint(const std::string& dir) {
  OpenCheckpoint c;
  std::unique_ptr<TensorFileReader> OpenCheckpoint::*readers[] = {&OpenCheckpoint::model, &OpenCheckpoint::optimizer};
  CheckedCheckpoint checked = check_checkpoint(dir, [&](const std::string& path, int i) -> const TensorFile& {
    if (i == 2) return c.trainer = read_tensor_file(path);
    return (c.*readers[i] = std::make_unique<TensorFileReader>(path))->file();
  });
  c.config_yaml = std::move(checked.config);
  c.metrics_log = std::move(checked.metrics_log);
  c.run_id = checked.manifest ? checked.manifest->run_id : "";
  c.sealed = checked.manifest.has_value();
  return c;
}

bool verify_checkpoint(const std::string& dir) {
  TensorFile file;
  return check_checkpoint(dir, [&](const std::string& path, int) -> const TensorFile& {
           return file = verify_tensor_file(path);
         }).manifest.has_value();
}

std::string read_checkpoint_config(const std::string& dir) {
  check_checkpoint_dir(dir);
  return read_config(dir, read_manifest(dir));
}

// config.yaml is not among them: it is also a common name of a config beside output_dir.
bool holds_checkpoint_files(const std::string& dir) {
  std::error_code ec;
  for (const char* file : {kManifestFile, kModelFile, kOptimizerFile, kTrainerFile})
    if (fs::exists(join(dir, file), ec)) return true;
  return false;
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

std::optional<std::string> checkpoint_run_id(const std::string& dir) {
  try {
    std::optional<Manifest> m = read_manifest(dir);
    if (m) return m->run_id;
  } catch (const UserError&) {
  }
  return std::nullopt;
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
  if (special_file_kind(join(output_dir, kLatestFile))) return std::nullopt;
  std::ifstream in(join(output_dir, kLatestFile));
  std::string name;
  if (!(in >> name)) return std::nullopt;
  return name;
}

fs::path checkpoint_path(const std::string& dir) {
  std::error_code ec;
  fs::path path = fs::absolute(dir, ec).lexically_normal();  // "step_000004" has a parent too
  return path.filename().empty() ? path.parent_path() : path;  // "out/step_000004/"
}

void settle_checkpoints(const std::string& output_dir, const std::string& newest) {
  remove_leftovers(output_dir);
  std::error_code ec;
  const fs::path dir = checkpoint_path(newest);
  if (newest.empty() || !fs::is_directory(dir, ec) || !fs::equivalent(dir.parent_path(), output_dir, ec)) return;
  const std::string name = dir.filename().string();
  if (read_latest_pointer(output_dir) != name) write_text_atomically(join(output_dir, kLatestFile), name + "\n");
}

void prune_checkpoints(const std::string& output_dir, int64_t save_total_limit, std::optional<int64_t> best_step,
                       CheckpointsPruned when) {
  if (save_total_limit <= 0) return;
  std::vector<std::string> dirs = list_checkpoints(output_dir);
  const auto best = !best_step ? dirs.end() : std::find_if(dirs.begin(), dirs.end(), [&](const std::string& dir) {
    return fs::path(dir).filename() == checkpoint_dir_name(*best_step);
  });
  std::set<std::string> keep;
  if (best != dirs.end() && when == CheckpointsPruned::at_the_end && save_total_limit == 1) {
    keep.insert(fs::path(*best).filename().string());
    write_text_atomically(join(output_dir, kLatestFile), fs::path(*best).filename().string() + "\n");
  } else {
    int64_t limit = save_total_limit;
    if (best != dirs.end() && best + 1 != dirs.end()) {
      if (limit == 1) limit = 2;                    // the newest stays, to resume from
      std::rotate(best, best + 1, dirs.end() - 1);  // the best next to last: deleted last but one
    }
    for (size_t i = size_t(std::max<int64_t>(0, int64_t(dirs.size()) - limit)); i < dirs.size(); i++)
      keep.insert(fs::path(dirs[i]).filename().string());
  }
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
