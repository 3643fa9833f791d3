#pragma once
// Tensor: a non-owning, contiguous, row-major view (pointer + shape + dtype + device).
// Memory is owned elsewhere (a Buffer from a Backend, or a flat parameter store), so a
// tensor is cheap to copy and a ZeRO shard or a layer's weight is just a view at an offset.
#include <array>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <string>

#include "core/error.h"

namespace llmpi {

// u8: raw bytes (packed 4-bit NF4 codes and their int8 scale codes, quant/nf4.h).
enum class DType : uint8_t { f32, f64, bf16, i32, u8 };
enum class Device : uint8_t { host, cuda };

constexpr size_t dtype_size(DType t) {
  switch (t) {
    case DType::f32: return 4;
    case DType::f64: return 8;
    case DType::bf16: return 2;
    case DType::i32: return 4;
    case DType::u8: return 1;
  }
  return 0;
}
const char* dtype_name(DType t);

// C++ type ↔ DType.
template <class T> struct dtype_of;
template <> struct dtype_of<float> { static constexpr DType value = DType::f32; };
template <> struct dtype_of<double> { static constexpr DType value = DType::f64; };
template <> struct dtype_of<int32_t> { static constexpr DType value = DType::i32; };

struct Shape {
  static constexpr int kMaxDims = 4;
  std::array<int64_t, kMaxDims> dims{};
  int ndim = 0;

  Shape() = default;
  Shape(std::initializer_list<int64_t> d) {
    LLMPI_CHECK(d.size() <= kMaxDims, "at most 4 dims");
    for (int64_t x : d) dims[ndim++] = x;
  }
  int64_t operator[](int i) const { return dims[i]; }
  int64_t numel() const {
    int64_t n = 1;
    for (int i = 0; i < ndim; ++i) n *= dims[i];
    return n;
  }
  bool operator==(const Shape& o) const {
    if (ndim != o.ndim) return false;
    for (int i = 0; i < ndim; ++i)
      if (dims[i] != o.dims[i]) return false;
    return true;
  }
  std::string str() const;  // "[2, 3, 4]"
};

struct Tensor {
  void* data = nullptr;
  Shape shape;
  DType dtype = DType::f32;
  Device device = Device::host;

  int64_t numel() const { return shape.numel(); }
  size_t bytes() const { return static_cast<size_t>(numel()) * dtype_size(dtype); }
  bool empty() const { return data == nullptr; }
  int64_t dim(int i) const { return shape[i]; }

  template <class T>
  T* ptr() const {
    return static_cast<T*>(data);
  }
  // Same memory, another shape of equal element count.
  Tensor view(Shape s) const {
    LLMPI_CHECK(s.numel() == numel(), "view ", s.str(), " of ", shape.str());
    Tensor t = *this;
    t.shape = s;
    return t;
  }
  // Elements [offset, offset + s.numel()) of the flat storage, viewed with shape s.
  Tensor slice(int64_t offset, Shape s) const {
    LLMPI_CHECK(offset >= 0 && offset + s.numel() <= numel(), "slice out of range");
    Tensor t = *this;
    t.data = static_cast<char*>(data) + offset * static_cast<int64_t>(dtype_size(dtype));
    t.shape = s;
    return t;
  }
  // Rows [r0, r0 + n) along dim 0.
  Tensor rows(int64_t r0, int64_t n) const {
    LLMPI_CHECK(shape.ndim >= 1, "rows of a scalar");
    Shape s = shape;
    s.dims[0] = n;
    return slice(r0 * (numel() / shape[0]), s);
  }
};

// A view of host memory (staging buffers, token ids, read-backs).
inline Tensor host_tensor(void* data, Shape shape, DType dtype) {
  return Tensor{data, shape, dtype, Device::host};
}

}  // namespace llmpi
