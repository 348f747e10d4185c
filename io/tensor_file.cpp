// defines: crc32, TensorFileWriter, write_tensor_file, read_tensor_file, verify_tensor_file, TensorFile lookups
#include "io/tensor_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <nlohmann/json.hpp>
#include <set>
#include <utility>

#include "engine/check.h"
#include "engine/user_error.h"
#include "io/json_text.h"

namespace llm {
namespace {

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "tensor files are little-endian");

constexpr char kMagic[8] = {'L', 'L', 'M', 'C', 'K', 'P', 'T', '\0'};
constexpr uint64_t kPreambleBytes = 20;  // magic, version, header length, header CRC

uint64_t align_up(uint64_t x) {
  return (x + kTensorFileAlignment - 1) / kTensorFileAlignment * kTensorFileAlignment;
}

std::string errno_text() { return std::strerror(errno); }

// Owns a file descriptor; close() reports errors where the caller needs them (writes).
class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(Fd&& o) noexcept : fd_(o.release()) {}
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }
  int release() { return std::exchange(fd_, -1); }

 private:
  int fd_;
};

void pwrite_all(int fd, const void* data, uint64_t bytes, uint64_t offset,
                const std::string& path) {
  const char* p = static_cast<const char*>(data);
  while (bytes > 0) {
    ssize_t n = ::pwrite(fd, p, std::min<uint64_t>(bytes, 1u << 30), static_cast<off_t>(offset));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) throw UserError(path + ": cannot write: " + errno_text());
    p += n;
    bytes -= n;
    offset += n;
  }
}

// The file's size was checked against every range before reading, so a short read means the file
// shrank underneath us: report it the same way as a truncated file.
void pread_all(int fd, void* data, uint64_t bytes, uint64_t offset, const std::string& path) {
  char* p = static_cast<char*>(data);
  while (bytes > 0) {
    ssize_t n = ::pread(fd, p, std::min<uint64_t>(bytes, 1u << 30), static_cast<off_t>(offset));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw UserError(path + ": cannot read: " + errno_text());
    if (n == 0)
      throw UserError(path + ": unexpected end of file at byte " + std::to_string(offset) +
                      " (truncated?)");
    p += n;
    bytes -= n;
    offset += n;
  }
}

struct TableEntry {
  std::string name;
  DType dtype = DType::f32;
  Shape shape;
  uint64_t offset = 0, bytes = 0;
  uint32_t crc = 0;
};

std::string header_json(const std::map<std::string, std::string>& metadata,
                        const std::vector<TableEntry>& table) {
  nlohmann::ordered_json tensors = nlohmann::ordered_json::array();
  for (const TableEntry& e : table)
    tensors.push_back({{"name", e.name}, {"dtype", dtype_name(e.dtype)}, {"shape", e.shape},
                       {"offset", e.offset}, {"bytes", e.bytes}, {"crc32", crc32_hex(e.crc)}});
  nlohmann::ordered_json header = {{"metadata", metadata}, {"tensors", tensors}};
  return header.dump();
}

struct Header {
  std::map<std::string, std::string> metadata;
  std::vector<TableEntry> table;
  uint32_t crc = 0;  // of the header bytes: the file's checksum
};

std::string printable(const char* bytes, size_t n) {
  std::string s;
  for (size_t i = 0; i < n; i++) {
    unsigned char c = static_cast<unsigned char>(bytes[i]);
    if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') {
      s += static_cast<char>(c);
    } else {
      char buf[5];
      std::snprintf(buf, sizeof(buf), "\\x%02x", c);
      s += buf;
    }
  }
  return s;
}

// Parses the table and checks each entry's own consistency and its bounds against the file size.
std::vector<TableEntry> parse_table(const nlohmann::json& tensors, uint64_t data_start,
                                    uint64_t file_bytes, const std::string& path) {
  auto corrupt = [&](const std::string& name, const std::string& what) {
    return UserError(path + ": header corrupt: tensor " + name + ": " + what);
  };
  std::vector<TableEntry> table;
  std::set<std::string> names;
  for (const nlohmann::json& t : tensors) {
    TableEntry e;
    e.name = t.at("name").get<std::string>();
    if (!names.insert(e.name).second) throw corrupt(e.name, "appears twice");
    std::string dtype = t.at("dtype").get<std::string>();
    bool known = false;
    for (DType d : {DType::f32, DType::bf16, DType::i32, DType::u8})
      if (dtype == dtype_name(d)) e.dtype = d, known = true;
    if (!known) throw corrupt(e.name, "unknown dtype \"" + dtype + "\" (expected f32, bf16, i32 or u8)");
    e.shape = t.at("shape").get<Shape>();
    e.offset = t.at("offset").get<uint64_t>();
    e.bytes = t.at("bytes").get<uint64_t>();
    std::string crc = t.at("crc32").get<std::string>();
    char* end = nullptr;
    e.crc = static_cast<uint32_t>(std::strtoul(crc.c_str(), &end, 16));
    if (crc.size() != 8 || *end != '\0') throw corrupt(e.name, "crc32 is not 8 hex digits");

    uint64_t expected = dtype_size(e.dtype);
    for (int64_t d : e.shape)
      if (d < 0 || __builtin_mul_overflow(expected, static_cast<uint64_t>(d), &expected))
        throw corrupt(e.name, "bad shape " + shape_str(e.shape));
    if (e.bytes != expected)
      throw corrupt(e.name, std::to_string(e.bytes) + " bytes for " + dtype + shape_str(e.shape) +
                                " (expected " + std::to_string(expected) + ")");
    if (e.offset % kTensorFileAlignment != 0 || e.offset < data_start)
      throw corrupt(e.name, "data offset " + std::to_string(e.offset) +
                                " is not a 4096-aligned offset past the header");
    if (e.offset + e.bytes > file_bytes || e.offset + e.bytes < e.offset)
      throw UserError(path + ": tensor " + e.name + " needs bytes [" + std::to_string(e.offset) +
                      ", " + std::to_string(e.offset + e.bytes) + ") but the file has " +
                      std::to_string(file_bytes) + " bytes (truncated?)");
    table.push_back(std::move(e));
  }
  return table;
}

// Validates everything up to the tensor data: magic, version, header bounds,
// header checksum, and each table entry.
Header read_header(int fd, const std::string& path) {
  struct stat st;
  if (::fstat(fd, &st) != 0) throw UserError(path + ": cannot stat: " + errno_text());
  uint64_t file_bytes = static_cast<uint64_t>(st.st_size);
  auto too_short = [&](uint64_t need, const std::string& what) {
    return UserError(path + ": " + what + " needs bytes [0, " + std::to_string(need) +
                     ") but the file has " + std::to_string(file_bytes) + " bytes (truncated?)");
  };
  if (file_bytes < sizeof(kMagic)) throw too_short(sizeof(kMagic), "the magic");
  char pre[kPreambleBytes] = {};
  pread_all(fd, pre, std::min<uint64_t>(file_bytes, kPreambleBytes), 0, path);
  if (std::memcmp(pre, kMagic, sizeof(kMagic)) != 0)
    throw UserError(path + ": not an llm_train checkpoint file (magic \"" +
                    printable(pre, sizeof(kMagic)) + "\", expected \"" +
                    printable(kMagic, sizeof(kMagic)) + "\")");
  if (file_bytes < kPreambleBytes) throw too_short(kPreambleBytes, "the preamble");
  uint32_t version, header_bytes, header_crc;
  std::memcpy(&version, pre + 8, 4);
  std::memcpy(&header_bytes, pre + 12, 4);
  std::memcpy(&header_crc, pre + 16, 4);
  if (version != kTensorFileVersion)
    throw UserError(path + ": format version " + std::to_string(version) +
                    " is not supported (this build reads version " +
                    std::to_string(kTensorFileVersion) + ")");
  uint64_t header_end = kPreambleBytes + header_bytes;
  if (header_end > file_bytes)
    throw UserError(path + ": header needs bytes [" + std::to_string(kPreambleBytes) + ", " +
                    std::to_string(header_end) + ") but the file has " +
                    std::to_string(file_bytes) + " bytes (truncated?)");
  std::string text(header_bytes, '\0');
  pread_all(fd, text.data(), header_bytes, kPreambleBytes, path);
  if (crc32(text.data(), text.size()) != header_crc)
    throw UserError(path + ": header checksum mismatch (file corrupt)");

  Header header;
  header.crc = header_crc;
  try {
    const nlohmann::json json = parse_json_text(text, path, "a tensor file header");
    header.metadata = json.at("metadata").get<std::map<std::string, std::string>>();
    header.table = parse_table(json.at("tensors"), header_end, file_bytes, path);
  } catch (const nlohmann::json::exception& e) {
    // nlohmann's text after its "[json.exception.type_error.302] " tag says what was found.
    const std::string what = e.what(), found = what.substr(what.find("] ") == std::string::npos ? 0 : what.find("] ") + 2);
    throw UserError(path + ": header corrupt: expected {\"metadata\": {names: strings}, \"tensors\": [{name, dtype, "
                    "shape, offset, bytes, crc32}]}, got JSON where " + found);
  }
  return header;
}

Fd open_for_reading(const std::string& path) {
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) throw UserError(path + ": cannot open: " + errno_text());
  return fd;
}

void check_crc(const TableEntry& e, uint32_t actual, const std::string& path) {
  if (actual != e.crc)
    throw UserError(path + ": tensor " + e.name + ": checksum mismatch (file corrupt)");
}

// The file's name, metadata and checksum, before its tensors are read or checked.
TensorFile described_by(Header& header, const std::string& path) {
  TensorFile file;
  file.path = path;
  file.metadata = std::move(header.metadata);
  file.checksum = header.crc;
  return file;
}

// Why a tensor's shape differs: 8-bit optimizer state quantised in blocks of 2048 elements, one
// absmax per block, is what llm_train wrote before it took bitsandbytes' 256 (its 0.44 on).
std::string mismatch_reason(const std::string& name, const Shape& found, const Shape& expected) {
  const std::string absmax = ".absmax";
  const bool is_absmax = name.size() > absmax.size() && name.compare(name.size() - absmax.size(), absmax.size(), absmax) == 0;
  if (is_absmax && found.size() == 1 && expected.size() == 1 && found[0] == (expected[0] + 7) / 8)
    return "8-bit optimizer state in blocks of 2048 elements, from llm_train before 2026-12-02; this build keeps "
           "bitsandbytes' blocks of 256 and cannot resume it: start a new run from the weights, or resume with the "
           "build that wrote it";
  return "checkpoint does not match the config";
}

// A tensor the caller's model expects with `shape` and `dtype` (`found`: null when absent).
void check_expected(const std::string& path, const std::string& name, const Shape* found, DType found_dtype,
                    const Shape& shape, DType dtype) {
  if (!found) throw UserError(path + ": tensor " + name + " is missing");
  if (*found != shape || found_dtype != dtype)
    throw UserError(path + ": tensor " + name + " is " + dtype_name(found_dtype) + shape_str(*found) + " but " +
                    dtype_name(dtype) + shape_str(shape) + " was expected (" + mismatch_reason(name, *found, shape) +
                    ")");
}

}  // namespace

const Tensor* TensorFile::find(const std::string& name) const {
  for (const NamedTensor& t : tensors)
    if (t.name == name) return &t.tensor;
  return nullptr;
}

const Tensor& TensorFile::require(const std::string& name, const Shape& shape,
                                  DType dtype) const {
  const Tensor* t = find(name);
  check_expected(path, name, t ? &t->shape() : nullptr, t ? t->dtype() : dtype, shape, dtype);
  return *t;
}

const std::string& TensorFile::require_metadata(const std::string& key) const {
  auto it = metadata.find(key);
  if (it == metadata.end()) throw UserError(path + ": metadata key \"" + key + "\" is missing");
  return it->second;
}

TensorFileSource source_of(const TensorFile& file) {
  TensorFileSource source{file.metadata, {}, [&file](const TensorSink& put) {
                            for (const NamedTensor& t : file.tensors) put(t.name, t.tensor);
                          }};
  for (const NamedTensor& t : file.tensors) {
    LLM_CHECK(t.tensor.defined(), file.path + ": tensor " + t.name + " is undefined");
    source.table.push_back({t.name, t.tensor.dtype(), t.tensor.shape()});
  }
  return source;
}

struct TensorFileWriter::Layout {
  std::map<std::string, std::string> metadata;
  std::vector<TableEntry> table;
  std::map<std::string, size_t> index;  // name -> position in table
  std::vector<bool> written;
  uint64_t header_bytes = 0, file_end = 0;
};

TensorFileWriter::TensorFileWriter(const std::string& path, const std::map<std::string, std::string>& metadata,
                                   const std::vector<TensorEntry>& table)
    : path_(path), layout_(std::make_unique<Layout>()) {
  Layout& l = *layout_;
  l.metadata = metadata;
  for (const TensorEntry& e : table) {
    LLM_CHECK(l.index.emplace(e.name, l.table.size()).second, path + ": tensor name " + e.name + " appears twice");
    l.table.push_back({e.name, e.dtype, e.shape, 0, shape_numel(e.shape) * dtype_size(e.dtype), 0});
  }
  l.written.assign(l.table.size(), false);
  // The header holds the offsets and the offsets start after the header: grow the data start
  // until the header fits in front of it.
  uint64_t data_start = kTensorFileAlignment;
  for (;;) {
    uint64_t cursor = data_start;
    for (TableEntry& e : l.table) {
      e.offset = cursor;
      cursor = align_up(cursor + e.bytes);
    }
    l.header_bytes = header_json(l.metadata, l.table).size();
    if (kPreambleBytes + l.header_bytes <= data_start) break;
    data_start = align_up(kPreambleBytes + l.header_bytes);
  }
  // Empty tensors still point at an offset inside the file, so readers can bounds-check uniformly.
  l.file_end = kPreambleBytes + l.header_bytes;
  for (const TableEntry& e : l.table) l.file_end = std::max(l.file_end, e.offset + e.bytes);
  fd_ = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd_ < 0) throw UserError(path + ": cannot create: " + errno_text());
}

TensorFileWriter::~TensorFileWriter() {
  if (fd_ >= 0) ::close(fd_);
}

void TensorFileWriter::write(const std::string& name, const Tensor& value) {
  Layout& l = *layout_;
  const auto it = l.index.find(name);
  LLM_CHECK(it != l.index.end() && !l.written[it->second], path_ + ": tensor " + name + " is not in the table or written twice");
  TableEntry& e = l.table[it->second];
  LLM_CHECK(value.dtype() == e.dtype && value.shape() == e.shape,
            path_ + ": tensor " + name + " is " + value.str() + ", the table says " + dtype_name(e.dtype) + shape_str(e.shape));
  const Tensor host = value.to(Device::cpu()).contiguous();  // a copy only when not on the host already
  e.crc = crc32(host.data_ptr(), e.bytes);
  pwrite_all(fd_, host.data_ptr(), e.bytes, e.offset, path_);
  l.written[it->second] = true;
}

uint32_t TensorFileWriter::finish() {
  const Layout& l = *layout_;
  for (size_t i = 0; i < l.table.size(); i++) LLM_CHECK(l.written[i], path_ + ": tensor " + l.table[i].name + " was never written");
  const std::string header = header_json(l.metadata, l.table);
  LLM_CHECK(header.size() == l.header_bytes, path_ + ": header length changed while writing");
  char pre[kPreambleBytes];
  uint32_t version = kTensorFileVersion, header_bytes = static_cast<uint32_t>(header.size());
  uint32_t header_crc = crc32(header.data(), header.size());
  std::memcpy(pre, kMagic, 8);
  std::memcpy(pre + 8, &version, 4);
  std::memcpy(pre + 12, &header_bytes, 4);
  std::memcpy(pre + 16, &header_crc, 4);
  pwrite_all(fd_, pre, kPreambleBytes, 0, path_);
  pwrite_all(fd_, header.data(), header.size(), kPreambleBytes, path_);
  if (::ftruncate(fd_, static_cast<off_t>(l.file_end)) != 0)
    throw UserError(path_ + ": cannot set the file size: " + errno_text());
  if (::fsync(fd_) != 0) throw UserError(path_ + ": fsync failed: " + errno_text());
  if (::close(std::exchange(fd_, -1)) != 0) throw UserError(path_ + ": close failed: " + errno_text());
  return header_crc;
}

uint32_t write_tensor_file(const std::string& path, const TensorFileSource& source) {
  TensorFileWriter out(path, source.metadata, source.table);
  source.produce([&out](const std::string& name, const Tensor& value) { out.write(name, value); });
  return out.finish();
}

uint32_t write_tensor_file(const std::string& path, const TensorFile& file) {
  return write_tensor_file(path, source_of(file));
}

TensorFile read_tensor_file(const std::string& path) {
  Fd fd = open_for_reading(path);
  Header header = read_header(fd.get(), path);
  TensorFile file = described_by(header, path);
  for (const TableEntry& e : header.table) {
    Tensor t = Tensor::empty(e.shape, e.dtype, Device::cpu());
    pread_all(fd.get(), t.data_ptr(), e.bytes, e.offset, path);
    check_crc(e, crc32(t.data_ptr(), e.bytes), path);
    file.tensors.push_back({e.name, std::move(t)});
  }
  return file;
}

TensorFile verify_tensor_file(const std::string& path) {
  Fd fd = open_for_reading(path);
  Header header = read_header(fd.get(), path);
  TensorFile file = described_by(header, path);
  std::vector<char> buffer(8u << 20);
  for (const TableEntry& e : header.table) {
    uint32_t crc = 0;
    for (uint64_t done = 0; done < e.bytes;) {
      uint64_t n = std::min<uint64_t>(buffer.size(), e.bytes - done);
      pread_all(fd.get(), buffer.data(), n, e.offset + done, path);
      crc = crc32(buffer.data(), n, crc);
      done += n;
    }
    check_crc(e, crc, path);
  }
  return file;
}

struct TensorFileReader::Table {
  std::vector<TableEntry> entries;
  // Per entry: the part this rank read of it, if any (offset and length in bytes, CRC-32).
  struct Part {
    uint64_t offset = 0, bytes = 0;
    uint32_t crc = 0;
  };
  std::vector<Part> parts;
};

TensorFileReader::TensorFileReader(const std::string& path) : table_(std::make_unique<Table>()) {
  Fd fd = open_for_reading(path);
  Header header = read_header(fd.get(), path);
  file_ = described_by(header, path);
  table_->entries = std::move(header.table);
  table_->parts.resize(table_->entries.size());
  fd_ = fd.release();
}

TensorFileReader::~TensorFileReader() {
  if (fd_ >= 0) ::close(fd_);
}

Tensor TensorFileReader::read(const std::string& name, const Shape& shape, DType dtype) {
  return read(name, shape, dtype, 0, shape_numel(shape)).reshape(shape);
}

Tensor TensorFileReader::read(const std::string& name, const Shape& shape, DType dtype, int64_t begin,
                              int64_t count) {
  const std::vector<TableEntry>& entries = table_->entries;
  size_t i = 0;
  while (i < entries.size() && entries[i].name != name) i++;
  const TableEntry* e = i < entries.size() ? &entries[i] : nullptr;
  // Before 2026-12-02 llm_train kept the token embedding's 8-bit optimizer state 8-bit too.
  if (!e && std::any_of(entries.begin(), entries.end(), [&](const TableEntry& x) { return x.name == name + ".codes"; }))
    throw UserError(file_.path + ": tensor " + name + " is missing: the checkpoint keeps it 8-bit (" + name +
                    ".codes), as llm_train did before 2026-12-02 (with blocks of 2048); this build keeps the token "
                    "embedding's state f32 and blocks of 256, and cannot resume it: start a new run from the "
                    "weights, or resume with the build that wrote it");
  check_expected(file_.path, name, e ? &e->shape : nullptr, e ? e->dtype : dtype, shape, dtype);
  LLM_CHECK(begin >= 0 && count >= 0 && begin + count <= shape_numel(shape),
            file_.path + ": " + name + ": elements [" + std::to_string(begin) + ", +" + std::to_string(count) + ")");
  const uint64_t size = dtype_size(dtype), offset = static_cast<uint64_t>(begin) * size;
  Tensor t = Tensor::empty({count}, dtype, Device::cpu());
  pread_all(fd_, t.data_ptr(), t.nbytes(), e->offset + offset, file_.path);
  bytes_read_ += t.nbytes();
  const uint32_t crc = crc32(t.data_ptr(), t.nbytes());
  if (t.nbytes() == e->bytes) {
    check_crc(*e, crc, file_.path);
  } else if (count > 0) {
    Table::Part& part = table_->parts[i];
    LLM_CHECK(part.bytes == 0, file_.path + ": " + name + " read in two parts by one rank");
    part = {offset, t.nbytes(), crc};
  }
  return t;
}

void TensorFileReader::verify_parts(Communicator& comm) {
  const size_t n = table_->entries.size(), world = static_cast<size_t>(comm.world_size());
  // Every rank's parts to every rank: each fills its own slots, the others stay 0 (the max gathers).
  std::vector<int64_t> all(n * world * 3, 0);
  for (size_t i = 0; i < n; i++) {
    const Table::Part& p = table_->parts[i];
    int64_t* mine = &all[(i * world + static_cast<size_t>(comm.rank())) * 3];
    mine[0] = static_cast<int64_t>(p.offset), mine[1] = static_cast<int64_t>(p.bytes), mine[2] = p.crc;
  }
  comm.allreduce_max(all.data(), static_cast<int64_t>(all.size()));
  for (size_t i = 0; i < n; i++) {
    std::vector<Table::Part> parts;
    for (size_t r = 0; r < world; r++) {
      const int64_t* p = &all[(i * world + r) * 3];
      if (p[1] > 0) parts.push_back({static_cast<uint64_t>(p[0]), static_cast<uint64_t>(p[1]), static_cast<uint32_t>(p[2])});
    }
    if (parts.empty()) continue;  // read whole (checked then), or not at all
    std::sort(parts.begin(), parts.end(), [](const Table::Part& a, const Table::Part& b) { return a.offset < b.offset; });
    const TableEntry& e = table_->entries[i];
    uint64_t covered = 0;
    uint32_t crc = 0;
    for (const Table::Part& p : parts) {
      LLM_CHECK(p.offset == covered, file_.path + ": the ranks' parts of " + e.name + " do not cover it once");
      crc = crc32_combine(crc, p.crc, p.bytes);
      covered += p.bytes;
    }
    LLM_CHECK(covered == e.bytes, file_.path + ": the ranks' parts of " + e.name + " do not cover it once");
    check_crc(e, crc, file_.path);
  }
  for (Table::Part& p : table_->parts) p = {};
}

}  // namespace llm
