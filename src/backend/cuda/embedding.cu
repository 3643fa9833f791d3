// Embedding lookup on the CUDA backend (vocab-parallel aware, see backend.h).
//   forward:  out[n, :] (= or +=) table[ids[n] − row_offset, :], zero for ids outside the
//             shard. ids i32 [N]; table bf16 [R, C]; out bf16 [N, C]. One thread per eight
//             columns with 16-byte accesses when C % 8 == 0, else one per element.
//   backward: dtable[ids[n] − row_offset, :] += dout[n, :]. dtable f32 [R, C]; dout bf16.
//             Default: repeated ids are summed with f32 atomicAdd, so the order of the
//             additions (and the last bits of dtable) may differ between runs.
//             Deterministic mode (CudaBackendOptions::deterministic): the positions are
//             sorted by id (CUB's radix sort is stable, so equal ids keep increasing n), and
//             one block per run of equal ids adds its rows in that order, one thread per
//             column: the same bits on every run, at the cost of a sort and a serial sum
//             over the most frequent id's occurrences.
#include "backend/cuda/cuda_backend_impl.h"
#include "backend/cuda/cuda_check.h"
#include "backend/cuda/device_util.cuh"

#include <cub/device/device_radix_sort.cuh>

#include <algorithm>
#include <cstdint>

namespace llmpi {
namespace cuda {
namespace {

constexpr int kThreads = 256;

__global__ void embedding_forward_x8(bf16* out, const int32_t* ids, const bf16* table,
                                     int64_t N, int64_t R, int64_t C, int64_t row_offset,
                                     bool accumulate) {
  const int64_t C8 = C / 8;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < N * C8;
       i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t n = i / C8, c = (i % C8) * 8;
    const int64_t r = static_cast<int64_t>(ids[n]) - row_offset;
    float v[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    if (r >= 0 && r < R) load8(table + r * C + c, v);
    if (accumulate) {
      float o[8];
      load8(out + n * C + c, o);
#pragma unroll
      for (int k = 0; k < 8; ++k) v[k] += o[k];
    }
    store8(out + n * C + c, v);
  }
}

__global__ void embedding_forward_x1(bf16* out, const int32_t* ids, const bf16* table,
                                     int64_t N, int64_t R, int64_t C, int64_t row_offset,
                                     bool accumulate) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < N * C;
       i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t n = i / C, c = i % C;
    const int64_t r = static_cast<int64_t>(ids[n]) - row_offset;
    float v = r >= 0 && r < R ? to_f32(table[r * C + c]) : 0.f;
    if (accumulate) v += to_f32(out[i]);
    out[i] = from_f32<bf16>(v);
  }
}

__global__ void embedding_backward_kernel(float* dtable, const bf16* dout, const int32_t* ids,
                                          int64_t N, int64_t R, int64_t C,
                                          int64_t row_offset) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < N * C;
       i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t n = i / C, c = i % C;
    const int64_t r = static_cast<int64_t>(ids[n]) - row_offset;
    if (r >= 0 && r < R) atomicAdd(dtable + r * C + c, to_f32(dout[i]));
  }
}

__global__ void iota_kernel(int32_t* p, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x)
    p[i] = static_cast<int32_t>(i);
}

// sorted_ids, pos: [N], ids in non-decreasing order and the positions n they came from
// (increasing within equal ids). Block j handles the run of equal ids that starts at j (other
// blocks return at once); its threads stride over the columns.
__global__ void embedding_backward_sorted(float* dtable, const bf16* dout,
                                          const int32_t* sorted_ids, const int32_t* pos,
                                          int64_t N, int64_t R, int64_t C, int64_t row_offset) {
  for (int64_t j = blockIdx.x; j < N; j += gridDim.x) {
    const int32_t id = sorted_ids[j];
    if (j > 0 && sorted_ids[j - 1] == id) continue;
    const int64_t r = static_cast<int64_t>(id) - row_offset;
    if (r < 0 || r >= R) continue;
    int64_t end = j + 1;
    while (end < N && sorted_ids[end] == id) ++end;
    for (int64_t c = threadIdx.x; c < C; c += blockDim.x) {
      float s = dtable[r * C + c];
      for (int64_t k = j; k < end; ++k) s += to_f32(dout[int64_t(pos[k]) * C + c]);
      dtable[r * C + c] = s;
    }
  }
}

}  // namespace
}  // namespace cuda

using namespace cuda;

void CudaBackend::embedding_forward(const Tensor& out, const Tensor& ids, const Tensor& table,
                                    int64_t row_offset, bool accumulate) {
  const char* op = "embedding_forward";
  check_device(op, {{"out", &out}, {"ids", &ids}, {"table", &table}});
  check_dtype(op, "out", out, DType::bf16);
  check_dtype(op, "ids", ids, DType::i32);
  check_dtype(op, "table", table, DType::bf16);
  const op_shapes::EmbeddingSizes s = op_shapes::embedding(op, "table", table, ids, "out", out);
  const int64_t N = s.N, R = s.R, C = s.C;
  if (N * C == 0) return;
  if (C % 8 == 0 && aligned16(out.data) && aligned16(table.data)) {
    embedding_forward_x8<<<blocks_for(N * C / 8, kThreads), kThreads, 0, stream_>>>(
        out.ptr<bf16>(), ids.ptr<const int32_t>(), table.ptr<const bf16>(), N, R, C,
        row_offset, accumulate);
  } else {
    embedding_forward_x1<<<blocks_for(N * C, kThreads), kThreads, 0, stream_>>>(
        out.ptr<bf16>(), ids.ptr<const int32_t>(), table.ptr<const bf16>(), N, R, C,
        row_offset, accumulate);
  }
  LLMPI_CUDA_LAUNCH_CHECK();
}

void CudaBackend::embedding_backward(const Tensor& dtable, const Tensor& dout, const Tensor& ids,
                                     int64_t row_offset) {
  const char* op = "embedding_backward";
  check_device(op, {{"dtable", &dtable}, {"dout", &dout}, {"ids", &ids}});
  check_dtype(op, "dtable", dtable, DType::f32);
  check_dtype(op, "dout", dout, DType::bf16);
  check_dtype(op, "ids", ids, DType::i32);
  const op_shapes::EmbeddingSizes s = op_shapes::embedding(op, "dtable", dtable, ids, "dout", dout);
  const int64_t N = s.N, R = s.R, C = s.C;
  if (N * C == 0) return;
  if (options_.deterministic) {
    LLMPI_CHECK(N <= INT32_MAX, "embedding_backward: ", N, " ids");
    // Scratch: sorted ids, positions in and out, and CUB's temporary storage.
    size_t temp = 0;
    LLMPI_CUDA(cub::DeviceRadixSort::SortPairs(nullptr, temp, static_cast<const int32_t*>(nullptr),
                                               static_cast<int32_t*>(nullptr),
                                               static_cast<const int32_t*>(nullptr),
                                               static_cast<int32_t*>(nullptr), int(N), 0, 32,
                                               stream_));
    const size_t n4 = size_t(N) * sizeof(int32_t), pad = 256;
    const size_t at_pos_in = (n4 + pad - 1) / pad * pad, at_pos = 2 * at_pos_in,
                 at_temp = 3 * at_pos_in;
    Scratch s(stream_, at_temp + temp);
    char* base = s.as<char>();
    auto* keys = reinterpret_cast<int32_t*>(base);
    auto* pos_in = reinterpret_cast<int32_t*>(base + at_pos_in);
    auto* pos = reinterpret_cast<int32_t*>(base + at_pos);
    iota_kernel<<<blocks_for(N, kThreads), kThreads, 0, stream_>>>(pos_in, N);
    LLMPI_CUDA_LAUNCH_CHECK();
    LLMPI_CUDA(cub::DeviceRadixSort::SortPairs(base + at_temp, temp, ids.ptr<const int32_t>(),
                                               keys, pos_in, pos, int(N), 0, 32, stream_));
    const int threads = C >= 256 ? 256 : int((C + 31) / 32 * 32);
    embedding_backward_sorted<<<int(std::min<int64_t>(N, 65535)), threads, 0, stream_>>>(
        dtable.ptr<float>(), dout.ptr<const bf16>(), keys, pos, N, R, C, row_offset);
    LLMPI_CUDA_LAUNCH_CHECK();
    return;
  }
  embedding_backward_kernel<<<blocks_for(N * C, kThreads), kThreads, 0, stream_>>>(
      dtable.ptr<float>(), dout.ptr<const bf16>(), ids.ptr<const int32_t>(), N, R, C,
      row_offset);
  LLMPI_CUDA_LAUNCH_CHECK();
}

}  // namespace llmpi
