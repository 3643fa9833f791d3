// Memory and elementwise ops of the CUDA backend: dtype-converting copy (f32/f64/bf16, either
// side in host or device memory; same-dtype copies of any dtype, i32 included), fill, add,
// scale. bf16 is rounded to nearest even. Host memory taking part in a copy is staged through
// device scratch and the stream is synchronized before returning, so the host side may be
// reused at once. add/scale compute in f32 (f64 for f64 tensors), eight bf16 per 16-byte
// access where size and alignment allow.
#include <cmath>
#include <optional>

#include "backend/cuda/cuda_backend_impl.h"
#include "backend/cuda/cuda_check.h"
#include "backend/cuda/device_util.cuh"

namespace llmpi {
namespace cuda {
namespace {

constexpr int kThreads = 256;

template <class D, class S>
__device__ __forceinline__ D convert(S x) {
  if constexpr (std::is_same_v<D, bf16>) {
    if constexpr (std::is_same_v<S, double>) return __double2bfloat16(x);
    else return __float2bfloat16_rn(to_f32(x));
  } else if constexpr (std::is_same_v<S, bf16>) {
    return static_cast<D>(__bfloat162float(x));
  } else {
    return static_cast<D>(x);
  }
}

template <class D, class S>
__global__ void convert_kernel(D* __restrict__ dst, const S* __restrict__ src, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x)
    dst[i] = convert<D>(src[i]);
}

template <class T>
__global__ void fill_kernel(T* __restrict__ p, int64_t n, T v) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x)
    p[i] = v;
}

template <class T>
__global__ void add_kernel(T* out, const T* a, const T* b, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x) {
    if constexpr (std::is_same_v<T, double>) out[i] = a[i] + b[i];
    else out[i] = from_f32<T>(to_f32(a[i]) + to_f32(b[i]));
  }
}

// n8 groups of eight bf16; all pointers 16-byte aligned.
__global__ void add_bf16x8_kernel(bf16* out, const bf16* a, const bf16* b, int64_t n8) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n8;
       i += int64_t(gridDim.x) * blockDim.x) {
    float x[8], y[8];
    load8(a + 8 * i, x);
    load8(b + 8 * i, y);
#pragma unroll
    for (int k = 0; k < 8; ++k) x[k] += y[k];
    store8(out + 8 * i, x);
  }
}

template <class T>
__global__ void scale_kernel(T* p, int64_t n, double s) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x) {
    if constexpr (std::is_same_v<T, double>) p[i] *= s;
    else p[i] = from_f32<T>(to_f32(p[i]) * static_cast<float>(s));
  }
}

__global__ void scale_bf16x8_kernel(bf16* p, int64_t n8, float s) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n8;
       i += int64_t(gridDim.x) * blockDim.x) {
    float x[8];
    load8(p + 8 * i, x);
#pragma unroll
    for (int k = 0; k < 8; ++k) x[k] *= s;
    store8(p + 8 * i, x);
  }
}

// Calls f(T{}) with T = float, double or bf16 for a floating dtype.
template <class F>
void dispatch_float(DType t, const char* op, F&& f) {
  switch (t) {
    case DType::f32: f(float{}); return;
    case DType::f64: f(double{}); return;
    case DType::bf16: f(bf16{}); return;
    case DType::i32:
    case DType::u8: break;
  }
  LLMPI_CHECK(false, op, ": expected a floating dtype (f32, f64, bf16), got ", dtype_name(t));
}

void launch_convert(void* dst, DType dt, const void* src, DType st, int64_t n,
                    cudaStream_t stream) {
  dispatch_float(dt, "copy", [&](auto dtag) {
    using D = decltype(dtag);
    dispatch_float(st, "copy", [&](auto stag) {
      using S = decltype(stag);
      convert_kernel<D, S><<<blocks_for(n, kThreads), kThreads, 0, stream>>>(
          static_cast<D*>(dst), static_cast<const S*>(src), n);
      LLMPI_CUDA_LAUNCH_CHECK();
    });
  });
}

}  // namespace
}  // namespace cuda

using namespace cuda;

void CudaBackend::copy(const Tensor& dst, const Tensor& src) {
  check_numel("copy", "dst", dst, src.numel());
  const int64_t n = src.numel();
  if (n == 0) return;
  LLMPI_CHECK(dst.data && src.data, "copy: a tensor of ", n, " elements has no data");
  const bool host_src = src.device == Device::host, host_dst = dst.device == Device::host;
  if (dst.dtype == src.dtype) {
    LLMPI_CUDA(cudaMemcpyAsync(dst.data, src.data, src.bytes(), cudaMemcpyDefault, stream_));
    if (host_src || host_dst) synchronize();
    return;
  }
  LLMPI_CHECK(dst.dtype != DType::i32 && src.dtype != DType::i32 && dst.dtype != DType::u8 &&
                  src.dtype != DType::u8,
              "copy: cannot convert ",
              dtype_name(src.dtype), " to ", dtype_name(dst.dtype));
  std::optional<Scratch> src_stage, dst_stage;
  const void* s = src.data;
  void* d = dst.data;
  if (host_src) {
    src_stage.emplace(stream_, src.bytes());
    LLMPI_CUDA(cudaMemcpyAsync(src_stage->as<void>(), src.data, src.bytes(),
                               cudaMemcpyHostToDevice, stream_));
    s = src_stage->as<void>();
  }
  if (host_dst) {
    dst_stage.emplace(stream_, dst.bytes());
    d = dst_stage->as<void>();
  }
  launch_convert(d, dst.dtype, s, src.dtype, n, stream_);
  if (host_dst)
    LLMPI_CUDA(cudaMemcpyAsync(dst.data, d, dst.bytes(), cudaMemcpyDeviceToHost, stream_));
  if (host_src || host_dst) synchronize();
}

void CudaBackend::fill(const Tensor& t, double value) {
  check_device("fill", "t", t);
  const int64_t n = t.numel();
  if (n == 0) return;
  const unsigned grid = blocks_for(n, kThreads);
  switch (t.dtype) {
    case DType::f32:
      fill_kernel<<<grid, kThreads, 0, stream_>>>(t.ptr<float>(), n, static_cast<float>(value));
      break;
    case DType::f64:
      fill_kernel<<<grid, kThreads, 0, stream_>>>(t.ptr<double>(), n, value);
      break;
    case DType::bf16:
      fill_kernel<<<grid, kThreads, 0, stream_>>>(t.ptr<bf16>(), n, __double2bfloat16(value));
      break;
    case DType::i32:
      LLMPI_CHECK(value == std::trunc(value) && std::fabs(value) <= 2147483647.0, "fill: ", value,
                  " is not an i32 value");
      fill_kernel<<<grid, kThreads, 0, stream_>>>(t.ptr<int32_t>(), n,
                                                  static_cast<int32_t>(value));
      break;
    case DType::u8:
      LLMPI_CHECK(value == std::trunc(value) && value >= 0 && value <= 255, "fill: ", value,
                  " is not a u8 value");
      fill_kernel<<<grid, kThreads, 0, stream_>>>(t.ptr<uint8_t>(), n,
                                                  static_cast<uint8_t>(value));
      break;
  }
  LLMPI_CUDA_LAUNCH_CHECK();
}

void CudaBackend::add(const Tensor& out, const Tensor& a, const Tensor& b) {
  const char* op = "add";
  check_device(op, "out", out);
  check_device(op, "a", a);
  check_device(op, "b", b);
  check_dtype(op, "a", a, out.dtype);
  check_dtype(op, "b", b, out.dtype);
  op_shapes::same_numel(op, {{"out", &out}, {"a", &a}, {"b", &b}});
  const int64_t n = out.numel();
  if (n == 0) return;
  if (out.dtype == DType::bf16 && n % 8 == 0 && aligned16(out.data) && aligned16(a.data) &&
      aligned16(b.data)) {
    add_bf16x8_kernel<<<blocks_for(n / 8, kThreads), kThreads, 0, stream_>>>(
        out.ptr<bf16>(), a.ptr<const bf16>(), b.ptr<const bf16>(), n / 8);
  } else {
    dispatch_float(out.dtype, op, [&](auto tag) {
      using T = decltype(tag);
      add_kernel<<<blocks_for(n, kThreads), kThreads, 0, stream_>>>(
          out.ptr<T>(), a.ptr<const T>(), b.ptr<const T>(), n);
    });
  }
  LLMPI_CUDA_LAUNCH_CHECK();
}

void CudaBackend::scale(const Tensor& t, double s) {
  check_device("scale", "t", t);
  const int64_t n = t.numel();
  if (n == 0) return;
  if (t.dtype == DType::bf16 && n % 8 == 0 && aligned16(t.data)) {
    scale_bf16x8_kernel<<<blocks_for(n / 8, kThreads), kThreads, 0, stream_>>>(
        t.ptr<bf16>(), n / 8, static_cast<float>(s));
  } else {
    dispatch_float(t.dtype, "scale", [&](auto tag) {
      using T = decltype(tag);
      scale_kernel<<<blocks_for(n, kThreads), kThreads, 0, stream_>>>(t.ptr<T>(), n, s);
    });
  }
  LLMPI_CUDA_LAUNCH_CHECK();
}

}  // namespace llmpi
