// NF4 dequantisation on the CUDA backend (backend.h, quant/nf4.h): one thread per code byte
// (two weights), grid-stride. The block scale is computed in f32 as the host reference does;
// the 16 levels travel as a kernel argument (64 bytes, from quant/nf4.h's table).
// Memory traffic per weight: 0.5 byte read + 2 (bf16) or 4 (f32) bytes written.
#include "backend/cuda/cuda_backend_impl.h"
#include "backend/cuda/cuda_check.h"
#include "backend/cuda/device_util.cuh"
#include "quant/nf4.h"

namespace llmpi {
namespace cuda {
namespace {

constexpr int kThreads = 256;

struct Levels {
  float v[16];
};

template <class T>
__global__ void nf4_kernel(T* __restrict__ out, const uint8_t* __restrict__ codes,
                           const int8_t* __restrict__ scale_codes,
                           const float* __restrict__ scale_scales, float offset, int64_t n,
                           Levels levels) {
  const int64_t bytes = (n + 1) / 2;
  for (int64_t j = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; j < bytes;
       j += int64_t(gridDim.x) * blockDim.x) {
    const int64_t i = 2 * j, b = i / kNf4Block;  // both weights share a block (64 is even)
    const float s = offset + float(scale_codes[b]) * scale_scales[b / kNf4ScaleGroup] / 127.f;
    const uint8_t byte = codes[j];
    out[i] = from_f32<T>(levels.v[byte >> 4] * s);
    if (i + 1 < n) out[i + 1] = from_f32<T>(levels.v[byte & 0xF] * s);
  }
}

}  // namespace
}  // namespace cuda

using namespace cuda;

void CudaBackend::nf4_dequantize(const Tensor& out, const Tensor& codes,
                                 const Tensor& scale_codes, const Tensor& scale_scales,
                                 double scale_offset) {
  const char* op = "nf4_dequantize";
  const int64_t n = out.numel();
  check_device(op, "out", out);
  check_device(op, "codes", codes);
  check_device(op, "scale_codes", scale_codes);
  check_device(op, "scale_scales", scale_scales);
  check_dtype(op, "codes", codes, DType::u8);
  check_dtype(op, "scale_codes", scale_codes, DType::u8);
  check_dtype(op, "scale_scales", scale_scales, DType::f32);
  op_shapes::nf4_dequantize(op, out, codes, scale_codes, scale_scales);
  LLMPI_CHECK(out.dtype == DType::bf16 || out.dtype == DType::f32, op, ": out is ",
              dtype_name(out.dtype), ", expected bf16 or f32");
  if (n == 0) return;
  Levels levels;
  for (int k = 0; k < 16; ++k) levels.v[k] = kNf4Levels[static_cast<size_t>(k)];
  const dim3 grid = blocks_for((n + 1) / 2, kThreads);
  const float off = static_cast<float>(scale_offset);
  if (out.dtype == DType::bf16)
    nf4_kernel<<<grid, kThreads, 0, stream_>>>(out.ptr<bf16>(), codes.ptr<const uint8_t>(),
                                               scale_codes.ptr<const int8_t>(),
                                               scale_scales.ptr<const float>(), off, n, levels);
  else
    nf4_kernel<<<grid, kThreads, 0, stream_>>>(out.ptr<float>(), codes.ptr<const uint8_t>(),
                                               scale_codes.ptr<const int8_t>(),
                                               scale_scales.ptr<const float>(), off, n, levels);
  LLMPI_CUDA_LAUNCH_CHECK();
}

}  // namespace llmpi
