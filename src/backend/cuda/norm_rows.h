#pragma once
// One-pass LayerNorm / RMSNorm kernels over rows of x[N, C] (bf16, C % 8 == 0, C ≤ 4096),
// with the pre-norm residual add fused in (issue 16). A row group of G threads (a multiple
// of 32) holds one row in registers, eight bf16 per thread in one 16-byte access; a block
// runs 512 / G row groups side by side over a grid-stride loop of rows, each group loading
// its next row before it reduces the current one.
//   forward:  [sum = x + res, stored] → statistics from the registers (mean, then the
//             centred sum of squares: a second pass over registers, not memory) → out.
//             Bytes: read x (+ res), write out (+ sum): the floor.
//   backward: reads x, dout (+ dres) once, writes dx = [dres +] ∂/∂x; each thread
//             accumulates dgain, dbias for its columns over the block's rows in registers,
//             the row groups combine in shared memory in a fixed order, each block writes one
//             partial row, and column_sum_finish adds the partials in a fixed order: no atomics,
//             the same bits every run for a given GPU and shape.
// The statistics of a fused forward are those of the stored bf16 sum, so norm_forward of
// that sum later (activation recomputation) gives the same bits.
#include <cuda_runtime.h>

#include <cstdint>

#include "backend/cuda/device_util.cuh"

namespace llmpi::cuda {

// Whether the one-pass kernels take rows of width C. Pointers must also be 16-byte aligned.
bool norm_rows_support(int64_t C);

// out, rstd (and mean for layernorm) ← norm(x), or with res non-null norm(sum) where
// sum = x + res is stored first (sum may alias x or res; null when res is).
void norm_rows_forward(cudaStream_t stream, bool layer, bf16* out, float* mean, float* rstd,
                       const bf16* x, const bf16* res, bf16* sum, const bf16* gain,
                       const bf16* bias, int64_t N, int64_t C, float eps);

// dx ← ∂/∂x (+ dres when non-null; dx may alias dout or dres); dgain += Σ dout·x̂ and, for
// layernorm, dbias += Σ dout (dgain null: no parameter gradients; dbias may be null).
// sm_count sizes the grid (and so the partials): the same device gives the same bits.
void norm_rows_backward(cudaStream_t stream, int sm_count, bool layer, bf16* dx, float* dgain,
                        float* dbias, const bf16* dout, const bf16* dres, const bf16* x,
                        const bf16* gain, const float* mean, const float* rstd, int64_t N,
                        int64_t C);

}  // namespace llmpi::cuda
