#pragma once
// Host kernels: templated on the float type T (float or double), written with Kokkos
// parallel_for / parallel_reduce over raw pointers captured by value. Memory handed to them
// is plain host memory (HostBackend::raw_alloc), so the Kokkos execution space they run on
// must be able to access HostSpace (Serial, OpenMP, Threads; not Cuda) — asserted below.
// Shapes use the names of backend.h: N token rows, C width, V vocab, D head dim.
// Each kernel is defined, and explicitly instantiated for float and double, in the file
// named after its op group; HostBackend (host_backend.h) checks tensors and dispatches.
#include <Kokkos_Core.hpp>
#include <cstdint>

#include "backend/op_shapes.h"
#include "core/error.h"
#include "core/float16.h"
#include "core/tensor.h"

namespace llmpi::host {

using Exec = Kokkos::DefaultExecutionSpace;
using Range = Kokkos::RangePolicy<Exec, Kokkos::IndexType<int64_t>>;
static_assert(Kokkos::SpaceAccessibility<Exec, Kokkos::HostSpace>::accessible,
              "the host backend needs a Kokkos execution space that can access host memory");

// Calls f(T{}) with T = float for f32 tensors and double for f64 ones.
template <class F>
void dispatch_float(DType t, const char* op, F&& f) {
  switch (t) {
    case DType::f32: f(float{}); return;
    case DType::f64: f(double{}); return;
    default: LLMPI_CHECK(false, op, ": host backend computes in f32 or f64, got ", dtype_name(t));
  }
}

// A tensor viewed as [rows, last dim] (backend/op_shapes.h).
using op_shapes::last_dim;
using op_shapes::row_count;

// ---- embedding.cpp ----------------------------------------------------------------------
template <class T>
void embedding_forward(T* out, const int32_t* ids, const T* table, int64_t N, int64_t R,
                       int64_t C, int64_t row_offset, bool accumulate);
template <class T>
void embedding_backward(T* dtable, const T* dout, const int32_t* ids, int64_t N, int64_t R,
                        int64_t C, int64_t row_offset);

// ---- linear.cpp: out[N,O] = in[N,I]·w[O,I]ᵀ (+ bias) --------------------------------------
template <class T>
void linear_forward(T* out, const T* in, const T* w, const T* bias, int64_t N, int64_t I,
                    int64_t O);
template <class T>
void linear_backward(T* din, T* dw, T* dbias, const T* dout, const T* in, const T* w,
                     int64_t N, int64_t I, int64_t O);
// The block products (backend.h): wide [N, C], block = columns [col0, col0 + O); all +=.
template <class T>
void linear_forward_add_block(T* out, int64_t C, int64_t col0, const T* in, const T* w,
                              int64_t N, int64_t I, int64_t O);
template <class T>
void linear_backward_block(T* din, T* dw, const T* dout, int64_t C, int64_t col0, const T* in,
                           const T* w, int64_t N, int64_t I, int64_t O);

// ---- norm.cpp: mean may be null (rmsnorm), bias/dbias may be null ---------------------------
// Forward with a residual (res non-null): sum = x + res is written first (sum may alias x or
// res), then the row of sum is normalized — bitwise add() then the plain forward.
// Backward with a residual gradient (dres non-null): dx = dres + ∂/∂x (dx may alias dres).
template <class T>
void layernorm_forward(T* out, T* mean, T* rstd, const T* x, const T* gain, const T* bias,
                       int64_t N, int64_t C, double eps, const T* res, T* sum);
template <class T>
void layernorm_backward(T* dx, T* dgain, T* dbias, const T* dout, const T* x, const T* gain,
                        const T* mean, const T* rstd, int64_t N, int64_t C, const T* dres);
template <class T>
void rmsnorm_forward(T* out, T* rstd, const T* x, const T* gain, int64_t N, int64_t C,
                     double eps, const T* res, T* sum);
template <class T>
void rmsnorm_backward(T* dx, T* dgain, const T* dout, const T* x, const T* gain, const T* rstd,
                      int64_t N, int64_t C, const T* dres);

// ---- activations.cpp --------------------------------------------------------------------
// Hot f32 loops are compiled for several x86 vector ISAs and picked at load time (GCC/Clang
// target_clones), since the build targets baseline x86-64 (SSE2). Results are deterministic
// on one machine; across ISAs they may differ in the last bits (the AVX-512 clone contracts
// a·b + c into FMAs).
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define LLMPI_HOST_VECTOR_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define LLMPI_HOST_VECTOR_CLONES
#endif

// x[i] = exp(x[i] − shift) in place for i < n; returns Σ x[i] (used by attention's softmax).
// f32: a vectorized polynomial exp, ≤ 2 ulp, 0 below −87; f64: std::exp.
float exp_shifted_sum(float* x, int64_t n, float shift);
double exp_shifted_sum(double* x, int64_t n, double shift);
template <class T>
void gelu_forward(T* out, const T* in, int64_t n);
template <class T>
void gelu_backward(T* din, const T* dout, const T* in, int64_t n);
template <class T>
void swiglu_forward(T* out, const T* in, int64_t N, int64_t F);
template <class T>
void swiglu_backward(T* din, const T* dout, const T* in, int64_t N, int64_t F);

// ---- rope.cpp: rows = B·T rows of width W, the first n_rot heads of each are rotated ------
// doc_start: [rows] document starts (backend.h), or nullptr for one document per row.
template <class T>
void rope(T* x, int64_t rows, int64_t W, int64_t T_len, int64_t n_rot, int64_t D,
          double theta, int64_t pos_offset, const int32_t* doc_start, bool inverse);

// ---- attention.cpp: doc_start [B·T] or nullptr, as rope ---------------------------------
template <class T>
void attention_forward(T* out, T* lse, const T* qkv, int64_t B, int64_t T_len, int64_t Hq,
                       int64_t Hkv, int64_t D, const int32_t* doc_start);
template <class T>
void attention_backward(T* dqkv, const T* dout, const T* qkv, const T* out, const T* lse,
                        int64_t B, int64_t T_len, int64_t Hq, int64_t Hkv, int64_t D,
                        const int32_t* doc_start);

// ---- cross_entropy.cpp ------------------------------------------------------------------
template <class T>
void row_logsumexp(T* lse, const T* logits, int64_t N, int64_t V);
template <class T>
void pick_targets(T* picked, const T* logits, const int32_t* targets, int64_t N, int64_t V,
                  int64_t col_offset);
template <class T>
void cross_entropy_backward(T* dlogits, const T* logits, const T* lse, const int32_t* targets,
                            const T* row_scale, int64_t N, int64_t V, int64_t col_offset);

// ---- adamw.cpp --------------------------------------------------------------------------
template <class T>
double sum_squares(const T* x, int64_t n);
double sum_squares_bf16(const uint16_t* x, int64_t n);
template <class T>
void adamw_update(T* p, const T* g, T* m, T* v, int64_t n, double lr, double beta1,
                  double beta2, double eps, double weight_decay, double grad_scale,
                  double bias_correction1, double bias_correction2);

// ---- bf16 conversion (host_backend.cpp) -------------------------------------------------
// From f32 and to f32: core/float16.h; from f64 exactly rounded (no double rounding via f32).
using llmpi::bf16_to_f32;
using llmpi::f32_to_bf16;
uint16_t f64_to_bf16(double x);

}  // namespace llmpi::host
