// defines: fnv1a64, token_cache_checksum, token_cache_path, load_or_build_token_cache
#include "io/token_cache.h"

#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>

#include "engine/check.h"
#include "engine/user_error.h"

namespace llm {
namespace {

namespace fs = std::filesystem;

constexpr char kMagic[8] = {'L', 'L', 'M', 'T', 'O', 'K', '0', '1'};
constexpr uint32_t kVersion = 1;
constexpr uint32_t kDTypeI32 = static_cast<uint32_t>(DType::i32);

struct Header {
  char magic[8];
  uint32_t version;
  uint32_t dtype;
  uint64_t count;
  uint64_t source_checksum;
  uint64_t payload_checksum;
};
static_assert(sizeof(Header) == 40, "the header layout is the file format");

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

uint64_t payload_checksum(const PackedDataset& data) {
  uint64_t h = fnv1a64(data.tokens.data(), data.tokens.size() * sizeof(int32_t));
  return fnv1a64(data.labels.data(), data.labels.size() * sizeof(int32_t), h);
}

enum class CacheState { missing, stale, corrupt, valid };

// Reads `path` into `out` when it is a valid cache for `checksum`; `why` says what is wrong.
CacheState read_cache(const std::string& path, uint64_t checksum, PackedDataset& out,
                      std::string& why) {
  std::error_code ec;
  if (!fs::exists(path, ec)) return CacheState::missing;
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
  const uint64_t payload = size - sizeof h, per_token = 2 * sizeof(int32_t);
  if (h.dtype != kDTypeI32 || payload % per_token != 0 || payload / per_token != h.count) {
    why = std::to_string(size) + " bytes, but its header says " + std::to_string(h.count) +
          " tokens of dtype code " + std::to_string(h.dtype);
    return CacheState::corrupt;
  }
  out.tokens.resize(h.count);
  out.labels.resize(h.count);
  in.read(reinterpret_cast<char*>(out.tokens.data()), h.count * sizeof(int32_t));
  in.read(reinterpret_cast<char*>(out.labels.data()), h.count * sizeof(int32_t));
  if (!in || payload_checksum(out) != h.payload_checksum) {
    why = "payload checksum mismatch";
    return CacheState::corrupt;
  }
  return CacheState::valid;
}

// Returns an empty string on success, else why the cache could not be written.
std::string write_cache(const std::string& path, uint64_t checksum, const PackedDataset& data) {
  std::error_code ec;
  fs::create_directories(fs::path(path).parent_path(), ec);
  if (ec) return ec.message();
  Header h{};
  std::memcpy(h.magic, kMagic, sizeof kMagic);
  h.version = kVersion;
  h.dtype = kDTypeI32;
  h.count = data.tokens.size();
  h.source_checksum = checksum;
  h.payload_checksum = payload_checksum(data);
  std::string tmp = path + ".tmp." + std::to_string(getpid());
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(&h), sizeof h);
    out.write(reinterpret_cast<const char*>(data.tokens.data()), h.count * sizeof(int32_t));
    out.write(reinterpret_cast<const char*>(data.labels.data()), h.count * sizeof(int32_t));
    out.close();
    if (!out) {
      fs::remove(tmp, ec);
      return "cannot write " + tmp;
    }
  }
  fs::rename(tmp, path, ec);
  if (ec) fs::remove(tmp, ec);
  return ec ? ec.message() : "";
}

}  // namespace

uint64_t fnv1a64(const void* data, size_t bytes, uint64_t hash) {
  const unsigned char* p = static_cast<const unsigned char*>(data);
  for (size_t i = 0; i < bytes; i++) hash = (hash ^ p[i]) * 0x100000001b3ull;
  return hash;
}

uint64_t token_cache_checksum(const DataConfig& config, const Tokenizer& tokenizer) {
  Fnv fnv;
  fnv.str(tokenizer.name());
  fnv.u64(static_cast<uint64_t>(config.sequence_len));
  std::vector<char> buf(1 << 16);
  for (const DatasetSpec& spec : config.datasets) {
    fnv.str(spec.type);
    fnv.str(spec.path);
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

CachedTokens load_or_build_token_cache(const DataConfig& config, const Tokenizer& tokenizer,
                                       const LogFn& log) {
  CachedTokens result;
  result.path = token_cache_path(config);
  result.data.sequence_len = config.sequence_len;
  uint64_t checksum = token_cache_checksum(config, tokenizer);
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
  std::vector<Document> docs;
  for (const DatasetSpec& spec : config.datasets) {
    std::vector<Document> more = load_documents(spec);
    docs.insert(docs.end(), std::make_move_iterator(more.begin()),
                std::make_move_iterator(more.end()));
  }
  result.data = pack_documents(docs, tokenizer, config.sequence_len);
  std::string error = write_cache(result.path, checksum, result.data);
  if (!error.empty())
    log("warning: could not write token cache " + result.path + ": " + error +
        "; continuing without it");
  else
    log("wrote token cache " + result.path + " (" + std::to_string(result.data.tokens.size()) +
        " tokens)");
  return result;
}

}  // namespace llm
