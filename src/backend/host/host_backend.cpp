// HostBackend memory and elementwise ops: aligned host allocation, dtype-converting copy
// (f32/f64/bf16, bf16 rounded to nearest even), fill, add, scale; the shared argument
// checks; and make_host_backend(). The op groups live in their own files.
#include "backend/host/host_backend.h"

#include <bit>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>

#include "backend/host/host_kernels.h"
#include "core/documents.h"

namespace llmpi {

namespace host {

void check_host(const char* op, const char* what, const Tensor& t) {
  LLMPI_CHECK(t.device == Device::host, op, ": ", what, " is not in host memory");
  LLMPI_CHECK(t.numel() == 0 || t.data != nullptr, op, ": ", what, " ", t.shape.str(),
              " has no data");
}

void check_host(const char* op, std::initializer_list<std::pair<const char*, const Tensor*>> ts) {
  for (const auto& [what, t] : ts) check_host(op, what, *t);
}

void check_dtype(const char* op, const char* what, const Tensor& t, DType want) {
  LLMPI_CHECK(t.dtype == want, op, ": ", what, " is ", dtype_name(t.dtype), ", expected ",
              dtype_name(want));
}

const int32_t* checked_doc_start(const char* op, const Tensor& doc_start, int64_t B, int64_t T) {
  if (doc_start.empty()) return nullptr;
  check_host(op, "doc_start", doc_start);
  check_dtype(op, "doc_start", doc_start, DType::i32);
  check_numel(op, "doc_start", doc_start, B * T);
  const int32_t* p = doc_start.ptr<const int32_t>();
  check_doc_start({p, static_cast<size_t>(B * T)}, T, op);
  return p;
}

uint16_t f64_to_bf16(double x) {
  if (std::isnan(x)) return f32_to_bf16(std::numeric_limits<float>::quiet_NaN());
  // Round to odd into f32 (truncate toward zero, set the last bit if inexact): f32 keeps 16
  // more bits than bf16, so the following round-to-nearest-even is exact (no double rounding).
  float f = static_cast<float>(x);
  if (std::isfinite(f) && static_cast<double>(f) != x) {
    if (std::fabs(static_cast<double>(f)) > std::fabs(x))
      f = std::nextafter(f, 0.0f);
    f = std::bit_cast<float>(std::bit_cast<uint32_t>(f) | 1u);
  }
  return f32_to_bf16(f);
}

namespace {

// dst[i] = convert(src[i]) for one (Dst, Src) pair of f32/f64/bf16 (bf16 held as uint16_t).
template <class Dst, class Src>
void convert(Dst* dst, const Src* src, int64_t n) {
  Kokkos::parallel_for("llmpi::host::convert", Range(0, n), KOKKOS_LAMBDA(int64_t i) {
    if constexpr (std::is_same_v<Dst, uint16_t>) {
      if constexpr (std::is_same_v<Src, float>) dst[i] = f32_to_bf16(src[i]);
      else dst[i] = f64_to_bf16(src[i]);
    } else if constexpr (std::is_same_v<Src, uint16_t>) {
      dst[i] = static_cast<Dst>(bf16_to_f32(src[i]));
    } else {
      dst[i] = static_cast<Dst>(src[i]);
    }
  });
}

template <class Dst>
void convert_from(Dst* dst, const Tensor& src, int64_t n) {
  switch (src.dtype) {
    case DType::f32: convert(dst, src.ptr<const float>(), n); return;
    case DType::f64: convert(dst, src.ptr<const double>(), n); return;
    case DType::bf16: convert(dst, src.ptr<const uint16_t>(), n); return;
    case DType::i32:
    case DType::u8: break;
  }
  LLMPI_CHECK(false, "copy: cannot convert i32 to a float dtype");
}

template <class T>
void fill_with(T* p, int64_t n, T value) {
  Kokkos::parallel_for("llmpi::host::fill", Range(0, n), KOKKOS_LAMBDA(int64_t i) { p[i] = value; });
}

}  // namespace
}  // namespace host

using namespace host;

void* HostBackend::raw_alloc(size_t bytes) {
  if (bytes == 0) return nullptr;
  constexpr size_t kAlign = 64;
  const size_t rounded = (bytes + kAlign - 1) / kAlign * kAlign;  // aligned_alloc requires it
  void* p = std::aligned_alloc(kAlign, rounded);
  if (!p) throw InternalError(detail::concat("host backend: out of memory allocating ", bytes,
                                             " bytes"));
  return p;
}

void HostBackend::raw_free(void* p) { std::free(p); }

void HostBackend::synchronize() { Kokkos::fence(); }

void HostBackend::copy(const Tensor& dst, const Tensor& src) {
  check_host("copy", "dst", dst);
  check_host("copy", "src", src);
  check_numel("copy", "dst", dst, src.numel());
  const int64_t n = src.numel();
  if (n == 0) return;
  if (dst.dtype == src.dtype) {
    Kokkos::fence();
    std::memmove(dst.data, src.data, src.bytes());
    return;
  }
  switch (dst.dtype) {
    case DType::f32: convert_from(dst.ptr<float>(), src, n); return;
    case DType::f64: convert_from(dst.ptr<double>(), src, n); return;
    case DType::bf16: convert_from(dst.ptr<uint16_t>(), src, n); return;
    case DType::i32:
    case DType::u8: break;
  }
  LLMPI_CHECK(false, "copy: cannot convert ", dtype_name(src.dtype), " to ",
              dtype_name(dst.dtype));
}

void HostBackend::fill(const Tensor& t, double value) {
  check_host("fill", "t", t);
  const int64_t n = t.numel();
  switch (t.dtype) {
    case DType::f32: fill_with(t.ptr<float>(), n, static_cast<float>(value)); return;
    case DType::f64: fill_with(t.ptr<double>(), n, value); return;
    case DType::bf16: fill_with(t.ptr<uint16_t>(), n, f64_to_bf16(value)); return;
    case DType::i32:
      LLMPI_CHECK(value == std::trunc(value) && std::fabs(value) <= 2147483647.0,
                  "fill: ", value, " is not an i32 value");
      fill_with(t.ptr<int32_t>(), n, static_cast<int32_t>(value));
      return;
    case DType::u8:
      LLMPI_CHECK(value == std::trunc(value) && value >= 0 && value <= 255, "fill: ", value,
                  " is not a u8 value");
      fill_with(t.ptr<uint8_t>(), n, static_cast<uint8_t>(value));
      return;
  }
}

void HostBackend::add(const Tensor& out, const Tensor& a, const Tensor& b) {
  check_host("add", "out", out);
  check_host("add", "a", a);
  check_host("add", "b", b);
  check_dtype("add", "a", a, out.dtype);
  check_dtype("add", "b", b, out.dtype);
  op_shapes::same_numel("add", {{"out", &out}, {"a", &a}, {"b", &b}});
  dispatch_float(out.dtype, "add", [&](auto tag) {
    using T = decltype(tag);
    T* o = out.ptr<T>();
    const T* x = a.ptr<const T>();
    const T* y = b.ptr<const T>();
    Kokkos::parallel_for("llmpi::host::add", Range(0, out.numel()),
                         KOKKOS_LAMBDA(int64_t i) { o[i] = x[i] + y[i]; });
  });
}

void HostBackend::scale(const Tensor& t, double s) {
  check_host("scale", "t", t);
  dispatch_float(t.dtype, "scale", [&](auto tag) {
    using T = decltype(tag);
    T* p = t.ptr<T>();
    const T f = static_cast<T>(s);
    Kokkos::parallel_for("llmpi::host::scale", Range(0, t.numel()),
                         KOKKOS_LAMBDA(int64_t i) { p[i] *= f; });
  });
}

std::unique_ptr<Backend> make_host_backend() { return std::make_unique<HostBackend>(); }

}  // namespace llmpi
