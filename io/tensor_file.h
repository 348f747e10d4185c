// Tensor file: the binary container behind model.bin, optimizer.bin and trainer.bin. An ordered
// list of named tensors plus string metadata, every byte covered by a CRC-32; reading refuses a
// damaged file with a one-line UserError naming the file and the tensor.
//
// Layout (little-endian):
//   [0, 8)    magic "LLMCKPT\0"
//   [8, 12)   u32 format version (kTensorFileVersion)
//   [12, 16)  u32 header length H
//   [16, 20)  u32 CRC-32 of the header bytes
//   [20, 20+H) header: JSON {"metadata": {key: value}, "tensors": [{"name", "dtype", "shape",
//             "offset", "bytes", "crc32"}]}; offsets count from the start of the file
//   then each tensor's bytes, contiguous row-major, at a 4096-byte-aligned offset.
#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "engine/communicator.h"
#include "engine/tensor.h"
#include "io/crc32.h"

namespace llm {

constexpr uint32_t kTensorFileVersion = 1;
// Page-aligned data can be mmap'd or read with O_DIRECT straight into pinned buffers.
constexpr uint64_t kTensorFileAlignment = 4096;

struct NamedTensor {
  std::string name;
  Tensor tensor;
};

struct TensorFile {
  std::vector<NamedTensor> tensors;  // in file order; names are unique
  std::map<std::string, std::string> metadata;  // UTF-8 text (JSON strings)
  std::string path;  // set by read_tensor_file; names the file in error messages
  uint32_t checksum = 0;  // set by read_tensor_file: the file's checksum (write_tensor_file's)

  void add(const std::string& name, const Tensor& tensor) { tensors.push_back({name, tensor}); }
  const Tensor* find(const std::string& name) const;  // nullptr when absent
  // The tensor `name`, checked against what the caller's model expects; a missing tensor or a
  // different shape or dtype is a UserError naming the file and the tensor.
  const Tensor& require(const std::string& name, const Shape& shape, DType dtype) const;
  // The metadata value for `key`; a missing key is a UserError naming the file.
  const std::string& require_metadata(const std::string& key) const;
};

// A tensor file read a piece at a time (a resume: each rank reads only what it keeps). The
// header is checked as read_tensor_file checks it, at construction; a tensor's bytes when asked
// for. A whole tensor is checked against its CRC-32 as it is read; a part cannot be alone, so
// its CRC is kept for verify_parts, where the ranks check their parts together.
class TensorFileReader {
 public:
  explicit TensorFileReader(const std::string& path);
  ~TensorFileReader();
  const TensorFile& file() const { return file_; }  // path, metadata and checksum; no tensors
  // Elements [begin, begin + count) of tensor `name` (row-major), on the host. The tensor must
  // have `shape` and `dtype`: a missing one or another shape or dtype is a UserError naming the
  // file and the tensor, as TensorFile::require's.
  Tensor read(const std::string& name, const Shape& shape, DType dtype, int64_t begin, int64_t count);
  Tensor read(const std::string& name, const Shape& shape, DType dtype);  // whole, its CRC checked
  // Collective: each tensor read in parts, its parts from every rank (at most one a rank) must
  // cover it exactly, and their CRCs, combined in order (crc32_combine), must be its CRC-32; a
  // mismatch is the UserError a whole read gives. So every byte any rank uses is verified, though
  // none reads more than its own.
  void verify_parts(Communicator& comm);
  uint64_t bytes_read() const { return bytes_read_; }  // tensor data, since construction

 private:
  struct Table;
  TensorFile file_;
  int fd_ = -1;
  std::unique_ptr<Table> table_;
  uint64_t bytes_read_ = 0;
};

// A tensor file's contents made while it is written: the metadata and the table (every tensor's
// name, dtype and shape, in file order) up front, the tensors from `produce`, which puts each of
// the table's once, in any order, and may free each as soon as `put` returns. A save under ZeRO
// gathers one bucket at a time into it, so no rank holds the whole model or optimizer state.
struct TensorFileSource {
  std::map<std::string, std::string> metadata;
  std::vector<TensorEntry> table;
  std::function<void(const TensorSink& put)> produce;
};
// `file`'s tensors as a source (`file` must outlive it).
TensorFileSource source_of(const TensorFile& file);

// Writes a tensor file a tensor at a time. The metadata and the table fix the layout, header
// length included (checksums are fixed-width hex), so each tensor goes straight to its offset
// whatever order it comes in, its CRC-32 taken as it goes out, and finish() writes the header
// last. Holds no tensor: a device tensor or a strided one is copied to the host one at a time.
// The bytes are the same whatever the order, and the same as write_tensor_file's.
class TensorFileWriter {
 public:
  TensorFileWriter(const std::string& path, const std::map<std::string, std::string>& metadata,
                   const std::vector<TensorEntry>& table);  // creates or truncates `path`
  ~TensorFileWriter();
  void write(const std::string& name, const Tensor& value);  // a table entry not yet written
  // Every entry written: the header, the file's size, fsync, close. Returns the file's checksum.
  uint32_t finish();

 private:
  struct Layout;
  std::string path_;
  int fd_ = -1;
  std::unique_ptr<Layout> layout_;
};

// Writes the source to `path` (replacing it) through a TensorFileWriter and fsyncs it before
// returning. Atomicity is the caller's: checkpoints write into a .tmp directory and rename it.
// Returns the file's checksum: the CRC-32 of its header, which holds every tensor's CRC-32, so it
// covers every byte the readers verify while costing no second pass over the data.
uint32_t write_tensor_file(const std::string& path, const TensorFileSource& source);
uint32_t write_tensor_file(const std::string& path, const TensorFile& file);  // source_of(file)

// Reads and validates every byte (magic, version, header checksum, each tensor's bounds and
// checksum); tensors land on the CPU. Any damage is a UserError naming `path`.
TensorFile read_tensor_file(const std::string& path);

// The same validation as read_tensor_file, streaming the data through a small buffer so a large
// file is checked without holding its tensors in memory. Returns the file without its tensors:
// path, metadata and checksum.
TensorFile verify_tensor_file(const std::string& path);

}  // namespace llm
