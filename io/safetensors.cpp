// defines: SafetensorsFile, SafetensorsDir (validating readers), write_safetensors,
// write_safetensors_dir (single file or shards + index)
#include "io/safetensors.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <regex>
#include <set>

#include "engine/check.h"
#include "io/special_file.h"
#include "io/crc32.h"
#include "io/durable_file.h"
#include "io/json_text.h"
#include "engine/user_error.h"

namespace llm {
namespace {

namespace fs = std::filesystem;
using ordered_json = nlohmann::ordered_json;

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "safetensors files are little-endian");

// A header this long is no model's: the reference implementation refuses the same.
constexpr uint64_t kMaxHeaderBytes = 100ull << 20;
constexpr const char* kSingleFile = "model.safetensors";
constexpr const char* kIndexFile = "model.safetensors.index.json";

enum class FileDType { f32, bf16, f16 };

// The file's dtype names this build reads; nullopt for any other (I64, F64, F8_E4M3, ...).
std::optional<FileDType> parse_file_dtype(const std::string& name) {
  static const std::map<std::string, FileDType> known = {
      {"F32", FileDType::f32}, {"BF16", FileDType::bf16}, {"F16", FileDType::f16}};
  auto it = known.find(name);
  return it == known.end() ? std::nullopt : std::optional<FileDType>(it->second);
}

size_t file_dtype_size(FileDType t) { return t == FileDType::f32 ? 4 : 2; }

const char* file_dtype_name(DType t) {
  LLM_CHECK(t == DType::f32 || t == DType::bf16,
            std::string("safetensors: cannot store ") + dtype_name(t));
  return t == DType::f32 ? "F32" : "BF16";
}

// n elements of the file's dtype -> f32.
void widen(FileDType from, const char* raw, int64_t n, float* out) {
  if (n == 0) return;  // an empty tensor has no buffers: memcpy may not see their null pointers
  if (from == FileDType::f32) {
    std::memcpy(out, raw, 4 * n);
    return;
  }
  float (*convert)(uint16_t) = from == FileDType::bf16 ? bf16_to_f32 : f16_to_f32;
  for (int64_t i = 0; i < n; i++) {
    uint16_t h;
    std::memcpy(&h, raw + 2 * i, 2);
    out[i] = convert(h);
  }
}

void read_at(const std::string& path, uint64_t offset, void* data, uint64_t bytes) {
  if (std::optional<std::string> kind = special_file_kind(path)) throw UserError(path + ": expected a safetensors file, got " + *kind);
  std::ifstream in(path, std::ios::binary);
  if (!in) throw UserError(path + ": cannot open: " + std::strerror(errno));
  in.seekg(static_cast<std::streamoff>(offset));
  in.read(static_cast<char*>(data), static_cast<std::streamsize>(bytes));
  if (static_cast<uint64_t>(in.gcount()) != bytes)
    throw UserError(path + ": unexpected end of file reading bytes [" + std::to_string(offset) +
                    ", " + std::to_string(offset + bytes) + ") (truncated?)");
}

std::string range(uint64_t begin, uint64_t end) {
  return "[" + std::to_string(begin) + ", " + std::to_string(end) + ")";
}

// One header entry, checked on its own: known dtype, sane shape, a byte range that fits the
// dtype and shape and lies inside the data.
SafetensorsEntry parse_entry(const std::string& name, const ordered_json& j, uint64_t data_bytes,
                             const std::string& path) {
  auto bad = [&](const std::string& what) {
    return UserError(path + ": tensor " + name + ": " + what);
  };
  if (!j.is_object()) throw bad("expected {dtype, shape, data_offsets}, got " + j.dump());
  SafetensorsEntry e;
  e.name = name;
  const auto dtype = j.find("dtype"), shape = j.find("shape"), offsets = j.find("data_offsets");
  if (dtype == j.end() || !dtype->is_string()) throw bad("expected a dtype string");
  e.dtype = dtype->get<std::string>();
  const std::optional<FileDType> kind = parse_file_dtype(e.dtype);
  if (!kind) throw bad("dtype " + e.dtype + " is not supported (expected F32, BF16 or F16)");
  if (shape == j.end() || !shape->is_array()) throw bad("expected a shape list");
  uint64_t bytes = file_dtype_size(*kind);
  for (const ordered_json& d : *shape) {
    if (!d.is_number_unsigned() || d.get<uint64_t>() > uint64_t(INT64_MAX) ||
        __builtin_mul_overflow(bytes, d.get<uint64_t>(), &bytes))
      throw bad("bad shape " + shape->dump());
    e.shape.push_back(d.get<int64_t>());
  }
  if (offsets == j.end() || !offsets->is_array() || offsets->size() != 2 ||
      !(*offsets)[0].is_number_unsigned() || !(*offsets)[1].is_number_unsigned())
    throw bad("expected data_offsets [begin, end]");
  e.begin = (*offsets)[0].get<uint64_t>();
  e.end = (*offsets)[1].get<uint64_t>();
  if (e.end < e.begin)
    throw bad("data_offsets " + range(e.begin, e.end) + " end before they begin");
  if (e.end - e.begin != bytes)
    throw bad("data_offsets " + range(e.begin, e.end) + " hold " + std::to_string(e.end - e.begin) +
              " bytes but " + e.dtype + shape_str(e.shape) + " needs " + std::to_string(bytes));
  if (e.end > data_bytes)
    throw bad("data_offsets " + range(e.begin, e.end) + " run past the data's " +
              std::to_string(data_bytes) + " bytes (truncated?)");
  return e;
}

// The tensors must tile the data: no two overlap and no byte belongs to none.
void check_tiling(std::vector<SafetensorsEntry> entries, uint64_t data_bytes,
                  const std::string& path) {
  std::stable_sort(
      entries.begin(), entries.end(),
      [](const SafetensorsEntry& a, const SafetensorsEntry& b) {  // an empty tensor before one at its offset
        return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
      });
  uint64_t covered = 0;
  const SafetensorsEntry* previous = nullptr;
  for (const SafetensorsEntry& e : entries) {
    if (e.begin < covered)
      throw UserError(path + ": tensor " + e.name + ": data_offsets " + range(e.begin, e.end) +
                      " overlap tensor " + previous->name);
    if (e.begin > covered)
      throw UserError(path + ": data bytes " + range(covered, e.begin) + " belong to no tensor");
    covered = e.end;
    previous = &e;
  }
  if (covered != data_bytes)
    throw UserError(path + ": the tensors cover " + std::to_string(covered) +
                    " bytes but the data has " + std::to_string(data_bytes) +
                    " (extra bytes at the end)");
}

std::string header_json(const std::vector<TensorEntry>& table, DType dtype,
                        const std::map<std::string, std::string>& metadata) {
  ordered_json header = ordered_json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  std::set<std::string> names;
  uint64_t offset = 0;
  for (const TensorEntry& t : table) {
    LLM_CHECK(t.name != "__metadata__" && names.insert(t.name).second,
              "safetensors: tensor name " + t.name + " is reserved or appears twice");
    const uint64_t bytes = shape_numel(t.shape) * dtype_size(dtype);
    header[t.name] = {{"dtype", file_dtype_name(dtype)},
                      {"shape", t.shape},
                      {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
  }
  std::string text = header.dump();
  text.resize((text.size() + 7) / 8 * 8, ' ');  // the data then starts 8-aligned
  return text;
}

std::vector<TensorEntry> table_of(const std::vector<NamedTensor>& tensors) {
  std::vector<TensorEntry> table;
  for (const NamedTensor& t : tensors) {
    LLM_CHECK(t.tensor.defined(), "safetensors: tensor " + t.name + " is undefined");
    table.push_back({t.name, t.tensor.dtype(), t.tensor.shape()});
  }
  return table;
}

// One .safetensors file written a tensor at a time, in any order: the table fixes each tensor's
// offset, so it goes straight there, cast to the file's dtype. Atomic as AtomicFileWriter.
class SafetensorsWriter {
 public:
  SafetensorsWriter(const std::string& path, const std::vector<TensorEntry>& table, DType dtype,
                    const std::map<std::string, std::string>& metadata)
      : out_(path), dtype_(dtype) {
    const std::string header = header_json(table, dtype, metadata);
    const uint64_t header_bytes = header.size();
    out_.write(&header_bytes, 8);
    out_.write(header.data(), header.size());
    uint64_t offset = 8 + header_bytes;
    for (const TensorEntry& t : table) {
      pending_[t.name] = {offset, t.shape};
      offset += shape_numel(t.shape) * dtype_size(dtype);
    }
  }
  bool holds(const std::string& name) const { return pending_.count(name) > 0; }
  void write(const std::string& name, const Tensor& value) {
    const auto it = pending_.find(name);
    LLM_CHECK(it != pending_.end(), "safetensors: tensor " + name + " is not in the table or written twice");
    LLM_CHECK(value.shape() == it->second.second,
              "safetensors: tensor " + name + " is " + value.str() + ", the table says " + shape_str(it->second.second));
    // Cast where the tensor lives (a GPU does it fast), then bring one tensor's bytes over.
    const Tensor host = value.to(dtype_).to(Device::cpu()).contiguous();
    out_.write_at(it->second.first, host.data_ptr(), host.nbytes());
    pending_.erase(it);
  }
  void commit() {
    LLM_CHECK(pending_.empty(), "safetensors: tensor " + (pending_.empty() ? "" : pending_.begin()->first) +
                                    " was never written");
    out_.commit();
  }

 private:
  AtomicFileWriter out_;
  DType dtype_;
  std::map<std::string, std::pair<uint64_t, Shape>> pending_;  // not written yet: offset in the file, shape
};

std::string shard_name(size_t i, size_t n) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "model-%05zu-of-%05zu.safetensors", i + 1, n);
  return buf;
}

bool is_model_file(const std::string& name) {
  static const std::regex shard("model-[0-9]{5}-of-[0-9]{5}\\.safetensors");
  return name == kSingleFile || name == kIndexFile || std::regex_match(name, shard);
}

}  // namespace

SafetensorsFile::SafetensorsFile(const std::string& path) : path_(path) {
  std::error_code ec;
  const uint64_t file_bytes = fs::file_size(path, ec);
  if (ec) throw UserError(path + ": cannot read: " + ec.message());
  if (file_bytes < 8)
    throw UserError(path + ": " + std::to_string(file_bytes) +
                    " bytes, too short for the 8-byte header length (truncated?)");
  uint64_t header_bytes = 0;
  read_at(path, 0, &header_bytes, 8);
  if (header_bytes > file_bytes - 8)
    throw UserError(path + ": header length " + std::to_string(header_bytes) +
                    " runs past the end of the file (" + std::to_string(file_bytes) +
                    " bytes; truncated, or not a safetensors file)");
  if (header_bytes > kMaxHeaderBytes)
    throw UserError(path + ": header length " + std::to_string(header_bytes) +
                    " is over the 100 MiB limit (not a safetensors file?)");
  data_start_ = 8 + header_bytes;
  const uint64_t data_bytes = file_bytes - data_start_;
  std::string text(header_bytes, '\0');
  read_at(path, 8, text.data(), header_bytes);

  const ordered_json header = parse_json_text<ordered_json>(text, path, "a safetensors header");
  if (!header.is_object())
    throw UserError(path + ": header: expected a JSON object, got " + header.type_name());
  for (const auto& [name, value] : header.items()) {
    if (name == "__metadata__") {
      if (value.is_null()) continue;  // the format's Option: none, as the safetensors crate reads it
      if (!value.is_object())
        throw UserError(path + ": __metadata__: expected an object of strings");
      for (const auto& [key, v] : value.items()) {
        if (!v.is_string())
          throw UserError(path + ": __metadata__." + key + ": expected a string, got " + v.dump());
        metadata_[key] = v.get<std::string>();
      }
      continue;
    }
    index_[name] = entries_.size();
    entries_.push_back(parse_entry(name, value, data_bytes, path));
  }
  check_tiling(entries_, data_bytes, path);
}

const SafetensorsEntry* SafetensorsFile::find(const std::string& name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : &entries_[it->second];
}

void SafetensorsFile::read_bytes(uint64_t offset, void* out, uint64_t bytes) const {
  if (bytes > 0) read_at(path_, data_start_ + offset, out, bytes);
}

Tensor SafetensorsFile::read(const std::string& name, DType dtype) const {
  LLM_CHECK(dtype == DType::f32 || dtype == DType::bf16,
            "safetensors: cannot read into " + std::string(dtype_name(dtype)));
  const SafetensorsEntry* e = find(name);
  if (!e) throw UserError(path_ + ": tensor " + name + " is missing");
  const FileDType from = *parse_file_dtype(e->dtype);  // known: checked with the header
  Tensor out = Tensor::empty(e->shape, dtype);
  const uint64_t bytes = e->end - e->begin;
  const bool same = (from == FileDType::f32 && dtype == DType::f32) ||
                    (from == FileDType::bf16 && dtype == DType::bf16);
  if (same) {
    read_at(path_, data_start_ + e->begin, out.data_ptr(), bytes);
    return out;
  }
  std::vector<char> raw(bytes);
  read_at(path_, data_start_ + e->begin, raw.data(), bytes);
  const int64_t n = out.numel();
  if (dtype == DType::f32) {
    widen(from, raw.data(), n, out.data<float>());
  } else {
    std::vector<float> wide(n);
    widen(from, raw.data(), n, wide.data());
    uint16_t* p = out.data<uint16_t>();
    for (int64_t i = 0; i < n; i++) p[i] = f32_to_bf16(wide[i]);
  }
  return out;
}

SafetensorsDir::SafetensorsDir(const std::string& dir) : dir_(dir) {
  std::error_code ec;
  const std::string index_path = (fs::path(dir) / kIndexFile).string();
  const std::string single_path = (fs::path(dir) / kSingleFile).string();
  // transformers' order: model.safetensors first, so an index a sharded save left behind (its
  // save_pretrained removes only the shards) does not hide the newer single file.
  if (fs::exists(single_path, ec) || !fs::exists(index_path, ec)) {
    if (!fs::exists(single_path, ec))
      throw UserError(dir + ": no " + kSingleFile + " or " + kIndexFile +
                      " (HF safetensors weights expected)");
    files_.emplace_back(single_path);
    for (const SafetensorsEntry& e : files_[0].entries()) file_index_[e.name] = 0;
    return;
  }

  const nlohmann::json index = read_json_file(index_path, "a safetensors index (model.safetensors.index.json)");
  const auto map = index.is_object() ? index.find("weight_map") : index.end();
  if (map == index.end() || !map->is_object())
    throw UserError(index_path + ": expected an object with a weight_map {tensor: file}");
  std::map<std::string, size_t> file_position;
  for (const auto& [tensor, file] : map->items()) {
    if (!file.is_string() || file.get<std::string>().find('/') != std::string::npos)
      throw UserError(index_path + ": weight_map." + tensor + ": expected a file name in " + dir +
                      ", got " + file.dump());
    const std::string name = file.get<std::string>();
    if (file_position.count(name)) continue;
    const std::string shard = (fs::path(dir) / name).string();
    if (!fs::exists(shard, ec))
      throw UserError(index_path + ": weight_map." + tensor + " names " + name +
                      ", which does not exist");
    file_position[name] = files_.size();
    files_.emplace_back(shard);
  }
  for (size_t i = 0; i < files_.size(); i++)
    for (const SafetensorsEntry& e : files_[i].entries())
      if (!file_index_.emplace(e.name, i).second)
        throw UserError(files_[i].path() + ": tensor " + e.name + " is also in " +
                        files_[file_index_[e.name]].path());
  for (const auto& [tensor, file] : map->items())
    if (file_index_.count(tensor) == 0 ||
        file_index_[tensor] != file_position[file.get<std::string>()])
      throw UserError((fs::path(dir) / file.get<std::string>()).string() + ": tensor " + tensor +
                      " is missing (" + kIndexFile + " places it there)");
}

std::vector<std::string> SafetensorsDir::names() const {
  std::vector<std::string> out;
  for (const auto& [name, file] : file_index_) out.push_back(name);
  return out;
}

const SafetensorsEntry* SafetensorsDir::find(const std::string& name) const {
  auto it = file_index_.find(name);
  return it == file_index_.end() ? nullptr : files_[it->second].find(name);
}

const std::string& SafetensorsDir::file_of(const std::string& name) const {
  auto it = file_index_.find(name);
  return it == file_index_.end() ? dir_ : files_[it->second].path();
}

Tensor SafetensorsDir::read(const std::string& name, DType dtype) const {
  auto it = file_index_.find(name);
  if (it == file_index_.end()) throw UserError(dir_ + ": tensor " + name + " is missing");
  return files_[it->second].read(name, dtype);
}

uint32_t SafetensorsDir::sampled_checksum() const {
  constexpr uint64_t kSample = 4096;
  uint32_t crc = 0;
  std::vector<char> bytes;
  for (const auto& [name, file] : file_index_) {
    const SafetensorsFile& f = files_[file];
    const SafetensorsEntry& e = *f.find(name);
    const std::string described = name + " " + e.dtype + " " + shape_str(e.shape);
    crc = crc32(described.data(), described.size() + 1, crc);
    const uint64_t size = e.end - e.begin, head = std::min(size, kSample), tail = std::min(size - head, kSample);
    bytes.resize(head + tail);
    f.read_bytes(e.begin, bytes.data(), head);
    f.read_bytes(e.end - tail, bytes.data() + head, tail);
    crc = crc32(bytes.data(), bytes.size(), crc);
  }
  return crc;
}

void write_safetensors(const std::string& path, const std::vector<NamedTensor>& tensors,
                       DType dtype, const std::map<std::string, std::string>& metadata) {
  SafetensorsWriter out(path, table_of(tensors), dtype, metadata);
  for (const NamedTensor& t : tensors) out.write(t.name, t.tensor);
  out.commit();
}

void write_safetensors_dir(const std::string& dir, const std::vector<NamedTensor>& tensors,
                           DType dtype, uint64_t max_shard_bytes) {
  write_safetensors_dir(dir, table_of(tensors), [&tensors](const TensorSink& put) {
    for (const NamedTensor& t : tensors) put(t.name, t.tensor);
  }, dtype, max_shard_bytes);
}

void write_safetensors_dir(const std::string& dir, const std::vector<TensorEntry>& table,
                           const std::function<void(const TensorSink& put)>& produce, DType dtype,
                           uint64_t max_shard_bytes) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) throw UserError(dir + ": cannot create directory: " + ec.message());
  // As transformers does: fill a shard until the next tensor would overflow it.
  std::vector<std::vector<TensorEntry>> shards(1);
  uint64_t shard_bytes = 0, total_bytes = 0;
  for (const TensorEntry& t : table) {
    const uint64_t bytes = shape_numel(t.shape) * dtype_size(dtype);
    if (!shards.back().empty() && shard_bytes + bytes > max_shard_bytes) {
      shards.emplace_back();
      shard_bytes = 0;
    }
    shards.back().push_back(t);
    shard_bytes += bytes;
    total_bytes += bytes;
  }
  // Every shard open at once: the tensors come in the producer's order (a ZeRO export's, bucket
  // by bucket), and each goes straight into its shard.
  std::vector<std::string> names;
  std::vector<std::unique_ptr<SafetensorsWriter>> writers;
  for (size_t i = 0; i < shards.size(); i++) {
    names.push_back(shards.size() == 1 ? kSingleFile : shard_name(i, shards.size()));
    writers.push_back(std::make_unique<SafetensorsWriter>((fs::path(dir) / names.back()).string(), shards[i],
                                                          dtype, std::map<std::string, std::string>{{"format", "pt"}}));
  }
  produce([&writers](const std::string& name, const Tensor& value) {
    for (auto& w : writers)
      if (w->holds(name)) return w->write(name, value);
    LLM_CHECK(false, "safetensors: tensor " + name + " is not in the table or written twice");
  });
  for (auto& w : writers) w->commit();
  // An earlier save's other files go before the index is written: a single model.safetensors
  // would be read before it (transformers' order), and a crash in between leaves an index naming
  // missing shards, refused, never stale weights read.
  std::set<std::string> written(names.begin(), names.end());
  if (shards.size() > 1) written.insert(kIndexFile);
  std::vector<fs::path> stale;
  for (const fs::directory_entry& entry : fs::directory_iterator(dir, ec)) {
    const std::string name = entry.path().filename().string();
    if (is_model_file(name) && !written.count(name)) stale.push_back(entry.path());
  }
  for (const fs::path& path : stale)
    if (!fs::remove(path, ec) && ec)
      throw UserError(path.string() + ": cannot remove: " + ec.message());
  if (shards.size() > 1) {
    nlohmann::json weight_map = nlohmann::json::object();
    for (size_t i = 0; i < shards.size(); i++)
      for (const TensorEntry& t : shards[i]) weight_map[t.name] = names[i];
    // Written last: a reader that finds the index finds every shard it names.
    nlohmann::json index = {{"metadata", {{"total_size", total_bytes}}},
                            {"weight_map", weight_map}};
    write_text_atomically((fs::path(dir) / kIndexFile).string(), index.dump(2) + "\n");
  }
}

}  // namespace llm
