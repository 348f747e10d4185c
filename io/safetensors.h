// safetensors: HF's tensor file format, and the model directories built from it.
//
// File layout (little-endian):
//   [0, 8)       u64 header length N
//   [8, 8+N)     header: a JSON object {name: {"dtype", "shape", "data_offsets": [begin, end)}},
//                plus an optional "__metadata__" {string: string}; writers pad it with spaces
//                so the data starts at a multiple of 8
//   [8+N, EOF)   the data: each tensor's bytes, row-major, at its data_offsets counted from 8+N;
//                the tensors cover the data exactly, without holes or overlaps
// A model directory holds model.safetensors, or shards model-00001-of-0000K.safetensors named
// by model.safetensors.index.json {"metadata": {"total_size"}, "weight_map": {name: file}}.
//
// Every check that can fail on a damaged or foreign file is a UserError naming the file and,
// where there is one, the tensor.
#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "engine/tensor.h"
#include "io/tensor_file.h"

namespace llm {

// HF's default max_shard_size, "5GB" (decimal, as transformers reads it).
constexpr uint64_t kDefaultMaxShardBytes = 5000000000ull;

struct SafetensorsEntry {
  std::string name;
  std::string dtype;  // the file's spelling: F32, BF16, F16
  Shape shape;
  uint64_t begin = 0, end = 0;  // byte range within the data section
};

// One .safetensors file: the header is read and validated on construction; tensors are read on
// demand, so a large file never sits in memory whole.
class SafetensorsFile {
 public:
  explicit SafetensorsFile(const std::string& path);

  const std::string& path() const { return path_; }
  const std::vector<SafetensorsEntry>& entries() const { return entries_; }  // in header order
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  const SafetensorsEntry* find(const std::string& name) const;  // nullptr when absent
  // The tensor `name` on the host, converted to `dtype` (f32 or bf16).
  Tensor read(const std::string& name, DType dtype) const;
  // `bytes` raw bytes from `offset` within the data section (an entry's begin..end).
  void read_bytes(uint64_t offset, void* out, uint64_t bytes) const;

 private:
  std::string path_;
  uint64_t data_start_ = 0;
  std::vector<SafetensorsEntry> entries_;
  std::map<std::string, size_t> index_;  // name -> position in entries_
  std::map<std::string, std::string> metadata_;
};

// A model directory's tensors, whichever of the two layouts it uses.
class SafetensorsDir {
 public:
  explicit SafetensorsDir(const std::string& dir);

  const std::string& dir() const { return dir_; }
  std::vector<std::string> names() const;                       // sorted
  const SafetensorsEntry* find(const std::string& name) const;  // nullptr when absent
  const std::string& file_of(const std::string& name) const;    // for messages
  Tensor read(const std::string& name, DType dtype) const;
  // A CRC32 over every tensor's name, dtype, shape and the first and last 4 KiB of its bytes, in
  // name order: which weights these are, read in milliseconds. Another checkpoint, even one
  // fine-tuned from the same model, differs in them; an edit confined to a tensor's middle does not.
  uint32_t sampled_checksum() const;

 private:
  std::string dir_;
  std::vector<SafetensorsFile> files_;
  std::map<std::string, size_t> file_index_;  // tensor name -> position in files_
};

// Writes one .safetensors file atomically (PATH.tmp, then renamed). Tensors on any device are
// converted to `dtype` (f32 or bf16) and copied to the host one at a time.
void write_safetensors(const std::string& path, const std::vector<NamedTensor>& tensors,
                       DType dtype,
                       const std::map<std::string, std::string>& metadata = {{"format", "pt"}});

// Writes a model directory as transformers' save_pretrained does: model.safetensors, or shards of
// at most max_shard_bytes (a larger tensor gets a shard of its own) and the index. Model files of
// the other layout or of a previous shard count are removed, so the directory reads back as
// exactly these tensors.
void write_safetensors_dir(const std::string& dir, const std::vector<NamedTensor>& tensors,
                           DType dtype, uint64_t max_shard_bytes = kDefaultMaxShardBytes);
// The same from a table (names and shapes, in file order) and a producer that puts each of its
// tensors once, in any order, and may free each as soon as `put` returns: an export under ZeRO
// gathers one bucket at a time into it, so the whole model is never in memory.
void write_safetensors_dir(const std::string& dir, const std::vector<TensorEntry>& table,
                           const std::function<void(const TensorSink& put)>& produce, DType dtype,
                           uint64_t max_shard_bytes = kDefaultMaxShardBytes);

}  // namespace llm
