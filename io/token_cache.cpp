// defines: fnv1a64, token_cache_checksum, token_cache_path, load_or_build_token_cache, load_test_examples
#include "io/token_cache.h"

#include <signal.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "engine/check.h"
#include "engine/user_error.h"
#include "io/special_file.h"

namespace llm {
namespace {

namespace fs = std::filesystem;

constexpr char kMagic[8] = {'L', 'L', 'M', 'T', 'O', 'K', '0', '1'};
// 2: examples (offsets and stats), not one packed stream; 3: pretokenized ids checked against the
// vocabulary while cached (a cache of 2 may hold ids the device would only report late); 4: a
// desirable byte per example (rl: kto).
constexpr uint32_t kVersion = 14;  // 14: Jinja generators lazy and one-shot, dict views (a selectattr is always true), names bound to frames as jinja2 compiles them; 13: Jinja case maps in full Unicode, sort/unique/groupby as jinja2 (case-insensitive); 12: Jinja chat turns found as Axolotl's find_turn finds them (tool_calls turns train), rows without null members; 11: alpaca rows cut as Axolotl's two tokenizer calls cut them; 10: dropped rows kept as empty placeholders (Axolotl shuffles before it filters); 9: pretokenized rows never cut into completion chunks; 8: Axolotl 0.19's chat turn ends and KTO chats, TRL 1.9's KTO drop and ORPO cut
constexpr uint32_t kDTypeI32 = static_cast<uint32_t>(DType::i32);
constexpr uint64_t kStatsCount = 5;  // ExampleStats' fields, in declaration order

struct Header {
  char magic[8];
  uint32_t version;
  uint32_t dtype;
  uint64_t count;     // tokens
  uint64_t examples;  // offsets hold examples + 1 entries
  uint64_t source_checksum;
  uint64_t payload_checksum;
};
static_assert(sizeof(Header) == 48, "the header layout is the file format");

// Length-prefixed fields, so ("ab", "c") and ("a", "bc") hash differently.
struct Fnv {
  uint64_t hash = kFnvOffsetBasis;
  void bytes(const void* data, size_t n) { hash = fnv1a64(data, n, hash); }
  void u64(uint64_t v) { bytes(&v, sizeof v); }
  void str(const std::string& s) {
    u64(s.size());
    bytes(s.data(), s.size());
  }
};

std::array<int64_t*, kStatsCount> stats_fields(ExampleStats& s) {
  return {&s.documents, &s.chunked, &s.dropped, &s.truncated, &s.no_targets};
}

// The payload after the header: tokens, labels, offsets, stats (as int64), desirable (u8).
struct Payload {
  std::vector<std::pair<const void*, size_t>> parts;
  std::array<int64_t, kStatsCount> stats;
  explicit Payload(const ExampleSet& d) {
    ExampleStats copy = d.stats;
    auto fields = stats_fields(copy);
    for (size_t i = 0; i < kStatsCount; i++) stats[i] = *fields[i];
    parts = {{d.tokens.data(), d.tokens.size() * sizeof(int32_t)},
             {d.labels.data(), d.labels.size() * sizeof(int32_t)},
             {d.offsets.data(), d.offsets.size() * sizeof(int64_t)},
             {stats.data(), sizeof stats},
             {d.desirable.data(), d.desirable.size()}};
  }
  uint64_t checksum() const {
    uint64_t h = kFnvOffsetBasis;
    for (const auto& [data, bytes] : parts) h = fnv1a64(data, bytes, h);
    return h;
  }
};

uint64_t payload_bytes(uint64_t tokens, uint64_t examples) {
  return tokens * 2 * sizeof(int32_t) + (examples + 1) * sizeof(int64_t) + kStatsCount * sizeof(int64_t) + examples;
}

enum class CacheState { missing, stale, corrupt, valid };

// Reads `path` into `out` when it is a valid cache for `checksum`; `why` says what is wrong.
CacheState read_cache(const std::string& path, uint64_t checksum, ExampleSet& out,
                      std::string& why) {
  std::error_code ec;
  if (!fs::exists(path, ec)) return CacheState::missing;
  if (std::optional<std::string> kind = special_file_kind(path)) {
    why = *kind + ", not a file";
    return CacheState::corrupt;
  }
  std::ifstream in(path, std::ios::binary);
  uint64_t size = fs::file_size(path, ec);
  Header h{};
  if (!in || ec || size < sizeof h || !in.read(reinterpret_cast<char*>(&h), sizeof h)) {
    why = "shorter than its " + std::to_string(sizeof h) + "-byte header";
    return CacheState::corrupt;
  }
  if (std::memcmp(h.magic, kMagic, sizeof kMagic) != 0) {
    why = "bad magic, expected LLMTOK01";
    return CacheState::corrupt;
  }
  if (h.version != kVersion || h.source_checksum != checksum) return CacheState::stale;
  // Bounded before the sizes are multiplied: a damaged header must not overflow them.
  const uint64_t limit = uint64_t(1) << 40;
  if (h.dtype != kDTypeI32 || h.count > limit || h.examples > limit ||
      size - sizeof h != payload_bytes(h.count, h.examples)) {
    why = std::to_string(size) + " bytes, but its header says " + std::to_string(h.count) +
          " tokens in " + std::to_string(h.examples) + " examples of dtype code " +
          std::to_string(h.dtype);
    return CacheState::corrupt;
  }
  out.tokens.resize(h.count);
  out.labels.resize(h.count);
  out.offsets.resize(h.examples + 1);
  out.desirable.resize(h.examples);
  std::array<int64_t, kStatsCount> stats{};
  in.read(reinterpret_cast<char*>(out.tokens.data()), h.count * sizeof(int32_t));
  in.read(reinterpret_cast<char*>(out.labels.data()), h.count * sizeof(int32_t));
  in.read(reinterpret_cast<char*>(out.offsets.data()), out.offsets.size() * sizeof(int64_t));
  in.read(reinterpret_cast<char*>(stats.data()), sizeof stats);
  in.read(reinterpret_cast<char*>(out.desirable.data()), out.desirable.size());
  auto fields = stats_fields(out.stats);
  for (size_t i = 0; i < kStatsCount; i++) *fields[i] = stats[i];
  if (!in || Payload(out).checksum() != h.payload_checksum) {
    why = "payload checksum mismatch";
    return CacheState::corrupt;
  }
  for (size_t e = 0; e + 1 < out.offsets.size(); e++)
    if (out.offsets[e] > out.offsets[e + 1]) {
      why = "example offsets out of order";
      return CacheState::corrupt;
    }
  if (out.offsets.front() != 0 || out.offsets.back() != static_cast<int64_t>(h.count)) {
    why = "example offsets do not cover the tokens";
    return CacheState::corrupt;
  }
  return CacheState::valid;
}

// The file a write of `path` fills before renaming it into place: named for this host and process,
// so writers sharing the directory never meet.
std::string temporary_prefix(const std::string& path) {
  char host[256] = {};
  gethostname(host, sizeof host - 1);
  return path + ".tmp." + host + ".";
}

// A write cut off by a kill leaves its temporary behind: this host's whose process is gone are
// removed before the next write (another host's, sharing the directory, are left to it).
void remove_stale_temporaries(const std::string& path) {
  const std::string prefix = fs::path(temporary_prefix(path)).filename().string();
  std::error_code ec;
  for (const fs::directory_entry& entry : fs::directory_iterator(fs::path(path).parent_path(), ec)) {
    const std::string name = entry.path().filename().string();
    const std::string pid = name.rfind(prefix, 0) == 0 ? name.substr(prefix.size()) : std::string();
    if (pid.empty() || pid.size() > 9 || pid.find_first_not_of("0123456789") != std::string::npos) continue;
    if (kill(static_cast<pid_t>(std::stol(pid)), 0) != 0 && errno == ESRCH) fs::remove(entry.path(), ec);
  }
}

// Returns an empty string on success, else why the cache could not be written.
std::string write_cache(const std::string& path, uint64_t checksum, const ExampleSet& data) {
  std::error_code ec;
  fs::create_directories(fs::path(path).parent_path(), ec);
  if (ec) return ec.message();
  remove_stale_temporaries(path);
  const Payload payload(data);
  Header h{};
  std::memcpy(h.magic, kMagic, sizeof kMagic);
  h.version = kVersion;
  h.dtype = kDTypeI32;
  h.count = data.tokens.size();
  h.examples = static_cast<uint64_t>(data.size());
  h.source_checksum = checksum;
  h.payload_checksum = payload.checksum();
  const std::string tmp = temporary_prefix(path) + std::to_string(getpid());
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(&h), sizeof h);
    for (const auto& [bytes_at, bytes] : payload.parts)
      out.write(static_cast<const char*>(bytes_at), static_cast<std::streamsize>(bytes));
    out.close();
    if (!out) {
      fs::remove(tmp, ec);
      return "cannot write " + tmp;
    }
  }
  fs::rename(tmp, path, ec);
  if (!ec) return "";
  const std::string error = ec.message();  // before the clean-up's remove() resets ec
  fs::remove(tmp, ec);
  return error;
}

}  // namespace

uint64_t fnv1a64(const void* data, size_t bytes, uint64_t hash) {
  const unsigned char* p = static_cast<const unsigned char*>(data);
  for (size_t i = 0; i < bytes; i++) hash = (hash ^ p[i]) * 0x100000001b3ull;
  return hash;
}

uint64_t token_cache_checksum(const DataConfig& config, uint64_t seed, const Tokenizer& tokenizer) {
  Fnv fnv;
  if (config.shuffles_before_merging()) fnv.str("shuffled before merging, seed " + std::to_string(seed));
  fnv.str(tokenizer.name());
  fnv.u64(static_cast<uint64_t>(config.sequence_len));
  fnv.u64(config.train_on_inputs);
  fnv.str(config.excess_length_strategy);
  fnv.u64(config.preference_pairs);
  fnv.u64(config.unpaired_preferences);
  fnv.u64(static_cast<uint64_t>(config.pair_tokenizing));
  fnv.u64(static_cast<uint64_t>(config.min_sample_len));
  if (config.keeps_eval_length) fnv.str("eval_sequence_len " + std::to_string(config.eval_sequence_len));
  std::vector<char> buf(1 << 16);
  for (const DatasetSpec& spec : config.datasets) {
    fnv.str(spec.type);
    fnv.str(spec.path);
    fnv.str(spec.split);
    fnv.str(spec.field);
    if (!spec.ds_type.empty()) fnv.str("ds_type:" + spec.ds_type);  // (caches from before the key stay valid)
    const UserDefinedFormat& f = spec.user_defined;
    for (const std::string* s : {&f.system_prompt, &f.field_system, &f.field_instruction, &f.field_input,
                                 &f.field_output, &f.format, &f.no_input_format, &f.system_format})
      fnv.str("user_defined:" + *s);
    const PreferenceFormat& p = spec.preference_format;
    for (const std::string* s : {&p.field_prompt, &p.field_system, &p.field_chosen, &p.field_rejected, &p.field_completion,
                                 &p.field_label, &p.prompt_format, &p.chosen_format, &p.rejected_format,
                                 &p.completion_format})
      fnv.str("preference_format:" + *s);
    fnv.str(spec.chat_template);
    fnv.str(spec.chat_template_source);  // the resolved Jinja template, when there is one
    for (const std::string& eot : spec.eot_tokens) fnv.str("eot:" + eot);
    fnv.str(spec.field_messages);
    fnv.str("chosen:" + spec.field_chosen + " rejected:" + spec.field_rejected);
    fnv.str("tools:" + spec.field_tools);
    fnv.str("training:" + spec.message_field_training);
    fnv.str("training_detail:" + spec.message_field_training_detail);
    fnv.str("kwargs:" + spec.chat_template_kwargs);
    fnv.u64(spec.drop_system_message);
    for (const auto& [key, value] : spec.message_property_mappings) fnv.str(key + "=" + value);
    for (const auto& [role, names] : spec.roles)
      for (const std::string& name : names) fnv.str(role + "<-" + name);
    for (const std::string& role : spec.roles_to_train) fnv.str("train:" + role);
    fnv.str(spec.train_on_eos);
    fnv.str("eot:" + spec.train_on_eot);
    for (const std::string& file : dataset_source_files(spec)) {
      fnv.str(file);
      std::ifstream in(file, std::ios::binary);
      if (!in) throw UserError(file + ": cannot read dataset file");
      while (in.read(buf.data(), buf.size()) || in.gcount() > 0)
        fnv.bytes(buf.data(), static_cast<size_t>(in.gcount()));
    }
  }
  return fnv.hash;
}

std::string token_cache_path(const DataConfig& config) {
  LLM_CHECK(!config.dataset_prepared_path.empty(), "token_cache_path: dataset_prepared_path unset");
  return (fs::path(config.dataset_prepared_path) / "tokens.bin").string();
}

CachedExamples load_or_build_token_cache(const DataConfig& config, uint64_t seed,
                                         const Tokenizer& tokenizer, const LogFn& log) {
  CachedExamples result;
  result.path = token_cache_path(config);
  uint64_t checksum = token_cache_checksum(config, seed, tokenizer);
  result.checksum = checksum;
  std::string why;
  switch (read_cache(result.path, checksum, result.data, why)) {
    case CacheState::valid:
      log("reusing token cache " + result.path);
      result.reused = true;
      return result;
    case CacheState::corrupt:
      log("warning: token cache " + result.path + " is corrupt (" + why + "); rebuilding it");
      break;
    case CacheState::stale:
      log("token cache " + result.path +
          " was built from other sources or settings; rebuilding it");
      break;
    case CacheState::missing:
      break;
  }
  log("tokenizing " + std::to_string(config.datasets.size()) + " dataset(s) into token cache " + result.path);
  result.data = load_examples(config, seed, tokenizer);
  if (result.data.kept() == 0) {
    const ExampleStats& stats = result.data.stats;
    if (stats.no_targets > 0 && stats.dropped == 0)  // they fit, but nothing in them trains
      throw UserError(config.source + ": " + config.datasets_key + ": no example has a token that trains (" +
                      std::to_string(stats.no_targets) + " without one" +
                      (stats.truncated > 0 ? ", " + std::to_string(stats.truncated) + " of them truncated to sequence_len " +
                                                 std::to_string(config.sequence_len) + ", which can cut off the targets"
                                           : std::string()) +
                      ": check train_on_inputs, roles_to_train" + (stats.truncated > 0 ? ", sequence_len" : "") +
                      " and the datasets' field names)");
    const int64_t shortest = config.shortest_sample_len(), longer = stats.dropped - stats.dropped_short;
    std::string why;
    if (longer > 0)
      why = std::to_string(longer) + " longer than sequence_len " + std::to_string(config.sequence_len) +
            (config.excess_length_strategy == "truncate" ? "" : ", which excess_length_strategy: truncate keeps cut");
    if (stats.dropped_short > 0)
      why += (why.empty() ? "" : "; ") + std::to_string(stats.dropped_short) + " shorter than min_sample_len " +
             std::to_string(shortest) + (config.min_sample_len > 0 ? "" : " (its default)");
    throw UserError(config.source + ": " + config.datasets_key + ": no example fits sequence_len " +
                    std::to_string(config.sequence_len) + " and min_sample_len " + std::to_string(shortest) + " (" +
                    (!why.empty()                          ? why
                     : config.sequence_len < shortest ? "no length is both, as sequence_len is below min_sample_len"
                                                      : "no documents") +
                    ")");
  }
  std::string error = write_cache(result.path, checksum, result.data);
  if (!error.empty())
    log("warning: could not write token cache " + result.path + ": " + error +
        "; continuing without it");
  else
    log("wrote token cache " + result.path + " (" + std::to_string(result.data.kept()) +
        " examples, " + std::to_string(result.data.tokens.size()) + " tokens)");
  return result;
}

CachedExamples load_test_examples(const DataConfig& config, uint64_t seed, const Tokenizer& tokenizer,
                                  const LogFn& log) {
  DataConfig test = config;
  test.pretraining.reset();
  test.datasets = config.test_datasets;
  test.datasets_key = "test_datasets";
  test.dataset_prepared_path = (std::filesystem::path(config.dataset_prepared_path) / "test_datasets").string();
  test.keeps_eval_length = config.eval_sequence_len > 0 && !config.preference_pairs;
  return load_or_build_token_cache(test, seed, tokenizer, log);
}

}  // namespace llm
