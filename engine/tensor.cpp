// defines: Storage, Tensor (construction, views, copies, host transfer)
#include "engine/tensor.h"

#include <algorithm>
#include <stdexcept>

#include "engine/autograd.h"
#include "engine/backend.h"
#include "engine/check.h"

namespace llm {

Storage::Storage(size_t bytes_, Device device_, bool allocate) : bytes(bytes_), device(device_) {
  allocator = &backend(device).allocator();
  if (allocate) data = allocator->allocate(bytes);
}

Storage::~Storage() { allocator->deallocate(data); }  // null when released

void Storage::release() {
  allocator->deallocate(data);
  data = nullptr;
}

void Storage::reacquire() {
  if (!data) data = allocator->allocate(bytes);
}

std::string shape_str(const Shape& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); i++) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

namespace {
// a * b for shape arithmetic: a size that does not fit in 64 bits is refused, never wrapped
// into a small allocation that later writes overrun.
int64_t checked_mul(int64_t a, int64_t b, const Shape& shape, const char* what) {
  int64_t product = 0;
  LLM_CHECK(!__builtin_mul_overflow(a, b, &product),
            "shape " + shape_str(shape) + ": " + what + " overflows 64 bits");
  return product;
}
}  // namespace

int64_t shape_numel(const Shape& shape) {
  int64_t n = 1;
  for (int64_t d : shape) n = checked_mul(n, d, shape, "the element count");
  return n;
}

size_t shape_nbytes(const Shape& shape, DType dtype) {
  return checked_mul(shape_numel(shape), dtype_size(dtype), shape, "the byte size");
}

Shape contiguous_strides(const Shape& shape) {
  Shape strides(shape.size());
  int64_t s = 1;
  for (int i = static_cast<int>(shape.size()) - 1; i >= 0; i--) {
    strides[i] = s;
    s = checked_mul(s, shape[i], shape, "a stride");
  }
  return strides;
}

Tensor Tensor::empty(const Shape& shape, DType dtype, Device device) {
  Tensor t = released(shape, dtype, device);
  t.reacquire_storage();
  return t;
}

Tensor Tensor::released(const Shape& shape, DType dtype, Device device) {
  for (int64_t d : shape) LLM_CHECK(d >= 0, "negative dimension in shape " + shape_str(shape));
  Tensor t;
  t.storage_ = std::make_shared<Storage>(shape_nbytes(shape, dtype), device, false);
  t.shape_ = shape;
  t.strides_ = contiguous_strides(shape);
  t.dtype_ = dtype;
  return t;
}

Tensor Tensor::full(const Shape& shape, float value, DType dtype, Device device) {
  Tensor t = empty(shape, dtype, device);
  backend(device).fill(t, value);
  return t;
}

Tensor Tensor::zeros(const Shape& shape, DType dtype, Device device) {
  return full(shape, 0.0f, dtype, device);
}

namespace {
// A tensor on `device` holding a copy of host `values` (4-byte elements of `dtype`).
template <class T>
Tensor from_host(const std::vector<T>& values, const Shape& shape, DType dtype, Device device) {
  LLM_CHECK(static_cast<int64_t>(values.size()) == shape_numel(shape),
            std::to_string(values.size()) + " values for shape " + shape_str(shape));
  Tensor t = Tensor::empty(shape, dtype, device);
  backend(device).copy_from_host(t.data_ptr(), values.data(), t.nbytes());
  return t;
}
}  // namespace

Tensor Tensor::from_floats(const std::vector<float>& values, const Shape& shape, Device device) {
  return from_host(values, shape, DType::f32, device);
}

Tensor Tensor::from_ints(const std::vector<int32_t>& values, const Shape& shape, Device device) {
  return from_host(values, shape, DType::i32, device);
}

int64_t Tensor::size(int d) const {
  int n = dim();
  if (d < 0) d += n;
  LLM_CHECK(d >= 0 && d < n, "dimension " + std::to_string(d) + " out of range for " + str());
  return shape_[d];
}

bool Tensor::is_contiguous() const { return strides_ == contiguous_strides(shape_); }

void* Tensor::data_ptr() const {
  LLM_CHECK(defined(), "data_ptr of an undefined tensor");
  LLM_CHECK(storage_->data, "data_ptr of " + str() + " whose storage is released (a ZeRO-3 weight outside its gather)");
  return static_cast<char*>(storage_->data) + offset_ * dtype_size(dtype_);
}

Tensor Tensor::reshape(Shape shape) const {
  LLM_CHECK(is_contiguous(), "reshape of a non-contiguous " + str() + ": call contiguous() first");
  int infer = -1;
  int64_t known = 1;
  for (size_t i = 0; i < shape.size(); i++) {
    if (shape[i] == -1) {
      LLM_CHECK(infer < 0, "reshape: more than one -1 in " + shape_str(shape));
      infer = static_cast<int>(i);
    } else {
      known = checked_mul(known, shape[i], shape, "the element count");
    }
  }
  if (infer >= 0) {
    LLM_CHECK(known > 0 && numel() % known == 0,
              "reshape: cannot infer -1 in " + shape_str(shape) + " for " + str());
    shape[infer] = numel() / known;
  }
  LLM_CHECK(shape_numel(shape) == numel(), "reshape " + str() + " to " + shape_str(shape));
  Tensor t = *this;
  t.meta_.reset();
  t.shape_ = shape;
  t.strides_ = contiguous_strides(shape);
  return t;
}

Tensor Tensor::transpose(int d0, int d1) const {
  int n = dim();
  if (d0 < 0) d0 += n;
  if (d1 < 0) d1 += n;
  LLM_CHECK(d0 >= 0 && d0 < n && d1 >= 0 && d1 < n, "transpose dims out of range for " + str());
  Tensor t = *this;
  t.meta_.reset();
  std::swap(t.shape_[d0], t.shape_[d1]);
  std::swap(t.strides_[d0], t.strides_[d1]);
  return t;
}

Tensor Tensor::narrow(int d, int64_t start, int64_t length) const {
  int n = dim();
  if (d < 0) d += n;
  LLM_CHECK(d >= 0 && d < n, "narrow: dim out of range for " + str());
  LLM_CHECK(start >= 0 && length >= 0 && start + length <= shape_[d],
            "narrow: [" + std::to_string(start) + ", " + std::to_string(start + length) +
                ") out of range for dim " + std::to_string(d) + " of " + str());
  Tensor t = *this;
  t.meta_.reset();
  t.offset_ += start * strides_[d];
  t.shape_[d] = length;
  return t;
}

Tensor Tensor::view_bytes(size_t byte_offset, const Shape& shape, DType dtype) const {
  LLM_CHECK(is_contiguous(), "view_bytes of a non-contiguous " + str());
  const size_t begin = offset_ * dtype_size(dtype_) + byte_offset, bytes = shape_nbytes(shape, dtype);
  LLM_CHECK(begin % dtype_size(dtype) == 0 && byte_offset + bytes <= nbytes(),
            "view_bytes: " + std::string(dtype_name(dtype)) + shape_str(shape) + " at byte " +
                std::to_string(byte_offset) + " of " + str());
  Tensor t = *this;
  t.meta_.reset();
  t.shape_ = shape;
  t.strides_ = contiguous_strides(shape);
  t.offset_ = static_cast<int64_t>(begin / dtype_size(dtype));
  t.dtype_ = dtype;
  return t;
}

Tensor Tensor::contiguous() const {
  if (is_contiguous()) return *this;
  return clone();
}

Tensor Tensor::clone() const {
  Tensor t = empty(shape_, dtype_, device());
  backend(device()).copy_strided(*this, t);
  return t;
}

Tensor Tensor::to(DType dtype) const {
  if (dtype == dtype_) return *this;
  Tensor src = contiguous();
  Tensor t = empty(shape_, dtype, device());
  backend(device()).cast(src, t);
  return t;
}

Tensor Tensor::to(Device device) const {
  if (device == this->device()) return *this;
  Tensor src = contiguous();
  Tensor t = empty(shape_, dtype_, device);
  if (src.device().is_cpu()) {
    backend(device).copy_from_host(t.data_ptr(), src.data_ptr(), src.nbytes());
  } else if (device.is_cpu()) {
    backend(src.device()).copy_to_host(t.data_ptr(), src.data_ptr(), src.nbytes());
  } else {  // between two devices: through the host
    t.copy_from(src.to(Device::cpu()));
  }
  return t;
}

void Tensor::copy_from(const Tensor& src) {
  LLM_CHECK(src.shape() == shape_, "copy_from: " + src.str() + " into " + str());
  LLM_CHECK(is_contiguous(), "copy_from into a non-contiguous " + str());
  Tensor converted = src.to(device()).to(dtype_).contiguous();
  backend(device()).copy_strided(converted, *this);
}

namespace {
// t's values in host memory, contiguous, for the host to read: one HostRead.
Tensor read_to_host(const Tensor& t) {
  const HostRead read;
  return t.to(Device::cpu()).contiguous();
}
}  // namespace

std::vector<float> Tensor::to_floats() const {
  const Tensor host = read_to_host(*this);
  std::vector<float> out(numel());
  if (dtype_ == DType::f32) {
    std::copy_n(host.data<float>(), out.size(), out.data());
  } else if (dtype_ == DType::bf16) {
    const uint16_t* p = host.data<uint16_t>();
    for (size_t i = 0; i < out.size(); i++) out[i] = bf16_to_f32(p[i]);
  } else if (dtype_ == DType::u8) {
    const uint8_t* p = host.data<uint8_t>();
    for (size_t i = 0; i < out.size(); i++) out[i] = p[i];
  } else {
    const int32_t* p = host.data<int32_t>();
    for (size_t i = 0; i < out.size(); i++) out[i] = static_cast<float>(p[i]);
  }
  return out;
}

std::vector<int32_t> Tensor::to_ints() const {
  LLM_CHECK(dtype_ == DType::i32, "to_ints of " + str());
  const Tensor host = read_to_host(*this);
  return std::vector<int32_t>(host.data<int32_t>(), host.data<int32_t>() + numel());
}

float Tensor::item() const {
  LLM_CHECK(numel() == 1, "item() of " + str() + ": expected one element");
  return to_floats()[0];
}

std::string Tensor::str() const {
  if (!defined()) return "undefined tensor";
  return std::string(dtype_name(dtype_)) + shape_str(shape_) + " " + device().str();
}

// Autograd accessors: the state itself lives in AutogradMeta (engine/autograd.h).
bool Tensor::requires_grad() const { return meta_ && meta_->requires_grad; }

Tensor& Tensor::set_requires_grad(bool value) {
  if (!meta_) meta_ = std::make_shared<AutogradMeta>();
  LLM_CHECK(meta_->is_leaf, "set_requires_grad on a tensor produced by an op");
  meta_->requires_grad = value;
  return *this;
}

Tensor Tensor::grad() const { return meta_ ? meta_->grad : Tensor(); }

void Tensor::zero_grad() {
  if (meta_) meta_->grad = Tensor();
}

Tensor Tensor::detach() const {
  Tensor t = *this;
  t.meta_.reset();
  return t;
}

}  // namespace llm
