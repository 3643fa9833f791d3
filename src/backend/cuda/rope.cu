// Rotary position embedding ("rotate_half", Hugging Face Llama) in place on the bf16
// qkv[rows = B·T, W = (Hq + 2·Hkv)·D]: in each of the first n_rot heads of a row at position
// p = row mod T − doc_start[row] (packed documents, backend.h; without them p = row mod T),
// pairs (i, i + D/2) turn by angle = (p + pos_offset)·theta^(−2i/D);
// inverse = true turns by −angle (the backward). One thread per (row, i): the angle is
// computed once (f32 sincosf of an angle reduced in f64 for long contexts) and applied to
// every rotated head of the row.
#include <cmath>

#include "backend/cuda/cuda_backend_impl.h"
#include "backend/cuda/cuda_check.h"
#include "backend/cuda/device_util.cuh"

namespace llmpi {
namespace cuda {
namespace {

constexpr int kThreads = 256;

__global__ void rope_kernel(bf16* x, int64_t rows, int64_t W, int64_t T, int64_t n_rot,
                            int64_t D, double log_theta, int64_t pos_offset,
                            const int32_t* doc_start, float sign) {
  const int64_t half = D / 2;
  for (int64_t idx = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; idx < rows * half;
       idx += int64_t(gridDim.x) * blockDim.x) {
    const int64_t r = idx / half, i = idx % half;
    const int64_t first = doc_start ? doc_start[r] : 0;
    const double pos = static_cast<double>(r % T - first + pos_offset);
    // Angle in f64, reduced modulo 2π before the f32 sin/cos (positions reach 10⁵+).
    const double angle = remainder(pos * exp(-log_theta * (2.0 * i) / D), 6.283185307179586);
    float s, c;
    sincosf(static_cast<float>(angle), &s, &c);
    s *= sign;
    bf16* row = x + r * W;
    for (int64_t h = 0; h < n_rot; ++h) {
      bf16* a = row + h * D + i;
      bf16* b = a + half;
      const float av = to_f32(*a), bv = to_f32(*b);
      *a = from_f32<bf16>(av * c - bv * s);
      *b = from_f32<bf16>(bv * c + av * s);
    }
  }
}

}  // namespace
}  // namespace cuda

using namespace cuda;

void CudaBackend::rope(const Tensor& qkv, int64_t T, int64_t n_rot_heads, int64_t head_dim,
                       double theta, int64_t pos_offset, const Tensor& doc_start,
                       bool inverse) {
  const char* op = "rope";
  check_device(op, "qkv", qkv);
  check_dtype(op, "qkv", qkv, DType::bf16);
  const op_shapes::RowSizes s = op_shapes::rope(op, qkv, T, n_rot_heads, head_dim, theta);
  const int64_t rows = s.N, W = s.C;
  const int32_t* docs = checked_doc_start(op, doc_start, rows);
  const int64_t work = rows * (head_dim / 2);
  if (work == 0 || n_rot_heads == 0) return;
  rope_kernel<<<blocks_for(work, kThreads), kThreads, 0, stream_>>>(
      qkv.ptr<bf16>(), rows, W, T, n_rot_heads, head_dim, std::log(theta), pos_offset, docs,
      inverse ? -1.f : 1.f);
  LLMPI_CUDA_LAUNCH_CHECK();
}

}  // namespace llmpi
