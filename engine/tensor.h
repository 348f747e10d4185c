// Tensor: shared storage + shape + strides + dtype + device. Views (reshape, transpose, narrow,
// slice) share storage and never copy; contiguous(), to() and clone() are the explicit copies.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "engine/device.h"
#include "engine/dtype.h"

namespace llm {

using Shape = std::vector<int64_t>;
class CachingAllocator;
struct AutogradMeta;  // engine/autograd.h

// One allocation, owned by every tensor that views it; returned to its allocator at the end.
struct Storage {
  void* data = nullptr;
  size_t bytes = 0;
  Device device;
  CachingAllocator* allocator = nullptr;
  Storage(size_t bytes, Device device, bool allocate = true);  // !allocate: released from the start
  ~Storage();
  // ZeRO-3 (as FSDP's storage resize to 0): the bytes go back to the allocator while every tensor
  // viewing them, including those an autograd node saved, stays valid to reacquire them later.
  void release();
  void reacquire();  // fresh, uninitialised bytes of the same size
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;
};

std::string shape_str(const Shape& shape);
// Element count and byte size; a count or size past 64 bits throws instead of wrapping.
int64_t shape_numel(const Shape& shape);
size_t shape_nbytes(const Shape& shape, DType dtype);

class Tensor {
 public:
  Tensor() = default;  // undefined: no storage
  static Tensor empty(const Shape& shape, DType dtype, Device device = Device::cpu());
  // A tensor whose storage has no bytes until reacquire_storage(): ZeRO-3's units before their
  // first gather, never allocated (and counted) at start-up.
  static Tensor released(const Shape& shape, DType dtype, Device device);
  static Tensor zeros(const Shape& shape, DType dtype, Device device = Device::cpu());
  static Tensor full(const Shape& shape, float value, DType dtype, Device device = Device::cpu());
  static Tensor from_floats(const std::vector<float>& values, const Shape& shape,
                            Device device = Device::cpu());
  static Tensor from_ints(const std::vector<int32_t>& values, const Shape& shape,
                          Device device = Device::cpu());

  bool defined() const { return storage_ != nullptr; }
  const Shape& shape() const { return shape_; }
  const Shape& strides() const { return strides_; }
  int dim() const { return static_cast<int>(shape_.size()); }
  int64_t size(int d) const;  // negative d counts from the end
  int64_t numel() const { return shape_numel(shape_); }
  size_t nbytes() const { return shape_nbytes(shape_, dtype_); }
  DType dtype() const { return dtype_; }
  Device device() const { return storage_ ? storage_->device : Device::cpu(); }
  bool is_contiguous() const;
  bool shares_storage(const Tensor& o) const { return storage_ == o.storage_; }
  bool sole_owner() const { return storage_.use_count() == 1; }  // no other tensor views the data
  void* data_ptr() const;
  template <class T>
  T* data() const { return static_cast<T*>(data_ptr()); }

  // Views: same storage, no autograd (the differentiable reshape lives in ops.h).
  Tensor reshape(Shape shape) const;  // needs a contiguous tensor; one -1 is inferred
  Tensor transpose(int d0, int d1) const;
  Tensor narrow(int d, int64_t start, int64_t length) const;
  Tensor slice(int d, int64_t begin, int64_t end) const { return narrow(d, begin, end - begin); }
  // A contiguous `shape` of `dtype` starting `byte_offset` bytes into this contiguous tensor's
  // data, on the same storage: tensors of several dtypes laid out in one byte buffer (ZeRO-3's
  // frozen weights, engine/frozen_shards.h). The offset must be a multiple of dtype's size.
  Tensor view_bytes(size_t byte_offset, const Shape& shape, DType dtype) const;

  // Copies.
  Tensor contiguous() const;  // itself when already contiguous
  Tensor clone() const;       // always a fresh contiguous copy
  Tensor to(Device device) const;
  Tensor to(DType dtype) const;
  void copy_from(const Tensor& src);  // same shape; any device, dtype converted
  std::vector<float> to_floats() const;  // host copy, converted to f32
  std::vector<int32_t> to_ints() const;
  float item() const;

  // Autograd state (engine/autograd.h).
  bool requires_grad() const;
  Tensor& set_requires_grad(bool value);
  Tensor grad() const;
  void zero_grad();  // drops the accumulated gradient
  const std::shared_ptr<AutogradMeta>& autograd_meta() const { return meta_; }
  void set_autograd_meta(std::shared_ptr<AutogradMeta> meta) { meta_ = std::move(meta); }
  Tensor detach() const;  // same data, no autograd history

  // Storage::release / reacquire of the whole storage this tensor views (ZeRO-3's weights).
  void release_storage() const { storage_->release(); }
  void reacquire_storage() const { storage_->reacquire(); }
  bool storage_resident() const { return storage_ && storage_->data; }

  std::string str() const;  // "f32[2, 3] cpu"

 private:
  std::shared_ptr<Storage> storage_;
  Shape shape_, strides_;  // strides in elements
  int64_t offset_ = 0;     // in elements
  DType dtype_ = DType::f32;
  std::shared_ptr<AutogradMeta> meta_;
};

Shape contiguous_strides(const Shape& shape);

// A tensor as a file's table lists it before its bytes exist: a writer lays the file out from
// these, then takes the tensors one at a time (a save that streams, io/tensor_file.h).
struct TensorEntry {
  std::string name;
  DType dtype;
  Shape shape;
};
// Receives one named tensor, which the caller may free as soon as it returns.
using TensorSink = std::function<void(const std::string& name, const Tensor& value)>;

}  // namespace llm
