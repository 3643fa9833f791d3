// Causal attention on the CUDA backend: argument checks and the choice of implementation.
//   forward:  cuDNN's fused flash attention (attention_cudnn.h) when the options allow it
//             and cuDNN accepts the shape; else the own kernel (attention_own.h).
//             CudaAttention::automatic falls back silently (a refusal is cached per shape);
//             CudaAttention::cudnn lets the refusal throw; CudaAttention::own never asks cuDNN.
//   backward: cuDNN's fused backward graph (attention_cudnn.h) when the options
//             allow cuDNN and the run is not deterministic; else (or when cuDNN refuses, under
//             automatic) the tensor-core kernels (attention_tc.h) when D is 32/64/96/128 on
//             sm_80+, else the SIMT kernels (attention_own.h). All consume the forward's stats
//             (cuDNN's equal the own log-sum-exp). LLMPI_ATTENTION_BACKWARD = auto (default) |
//             tc | simt (CudaBackendOptions::attention_backward) forces the own kernels. Δ goes to
//             stream-ordered scratch.
// Packed documents (doc_start given): always the own kernels (forward own, backward tc or
// simt), which mask per document and skip the key tiles before a block's first document.
// The cuDNN graphs here mask causally only; a document mask through cuDNN would need its
// ragged (THD) layout with one plan per number of documents, which varies per micro-batch.
// Under LLMPI_ATTENTION=cudnn a packed batch is refused (InternalError) rather than rerouted.
// dtypes: qkv, out, dout, dqkv bf16; lse f32 [B, Hq, T]; doc_start i32 [B·T].
#include "backend/cuda/attention_cudnn.h"
#include "backend/cuda/attention_own.h"
#include "backend/cuda/attention_tc.h"
#include "backend/cuda/cuda_backend_impl.h"
#include "core/error.h"

namespace llmpi {

using namespace cuda;

namespace {

// The forward's shapes (backend/op_shapes.h), then what the own kernels support.
AttentionShape checked_shape(const char* op, const Tensor& qkv, const Tensor& out,
                             const Tensor& lse, int64_t B, int64_t T, int64_t Hq, int64_t Hkv,
                             int64_t D) {
  check_device(op, "qkv", qkv);
  check_dtype(op, "qkv", qkv, DType::bf16);
  op_shapes::attention(op, qkv, out, lse, B, T, Hq, Hkv, D);
  const AttentionShape s{B, T, Hq, Hkv, D};
  LLMPI_CHECK(own_attention_supports(s), op, ": head dim ", D,
              " must be even and at most ", kOwnAttentionMaxD);
  return s;
}

}  // namespace

void CudaBackend::attention_forward(const Tensor& out, const Tensor& lse, const Tensor& qkv,
                                    int64_t B, int64_t T, int64_t Hq, int64_t Hkv, int64_t D,
                                    const Tensor& doc_start) {
  const char* op = "attention_forward";
  check_device(op, "out", out);
  check_device(op, "lse", lse);
  check_dtype(op, "out", out, DType::bf16);
  check_dtype(op, "lse", lse, DType::f32);
  const AttentionShape s = checked_shape(op, qkv, out, lse, B, T, Hq, Hkv, D);
  const int32_t* docs = checked_doc_start(op, doc_start, B * T);
  if (B * T == 0) return;
  const CudaAttention mode = options_.attention;
  LLMPI_CHECK(!docs || mode != CudaAttention::cudnn, op,
              ": LLMPI_ATTENTION=cudnn, but packed documents run the own kernels only");
  if (docs) {
    own_attention_forward(out.data, lse.ptr<float>(), qkv.data, s, docs, stream_);
    return;
  }
  if (mode == CudaAttention::cudnn) {
    LLMPI_CHECK(CudnnAttention::may_support(s), op, ": LLMPI_ATTENTION=cudnn, but cuDNN is not ",
                "offered T=", T, " D=", D, " (needs T % 64 == 0, D % 8 == 0, D <= 256)");
    cudnn_attention()->forward(out.data, lse.ptr<float>(), qkv.data, s);
    return;
  }
  if (mode == CudaAttention::automatic && CudnnAttention::may_support(s)) {
    try {
      cudnn_attention()->forward(out.data, lse.ptr<float>(), qkv.data, s);
      return;
    } catch (const InternalError&) {
      // Refused (and remembered): the own kernel below computes the same function.
    }
  }
  own_attention_forward(out.data, lse.ptr<float>(), qkv.data, s, nullptr, stream_);
}

void CudaBackend::attention_backward(const Tensor& dqkv, const Tensor& dout, const Tensor& qkv,
                                     const Tensor& out, const Tensor& lse, int64_t B,
                                     int64_t T, int64_t Hq, int64_t Hkv, int64_t D,
                                     const Tensor& doc_start) {
  const char* op = "attention_backward";
  check_device(op, "dqkv", dqkv);
  check_device(op, "dout", dout);
  check_device(op, "out", out);
  check_device(op, "lse", lse);
  check_dtype(op, "dqkv", dqkv, DType::bf16);
  check_dtype(op, "dout", dout, DType::bf16);
  check_dtype(op, "out", out, DType::bf16);
  check_dtype(op, "lse", lse, DType::f32);
  const AttentionShape s = checked_shape(op, qkv, out, lse, B, T, Hq, Hkv, D);
  op_shapes::attention_grads(op, qkv, dqkv, dout, B, T, Hq, D);
  const int32_t* docs = checked_doc_start(op, doc_start, B * T);
  if (B * T == 0) return;
  LLMPI_CHECK(!docs || options_.attention != CudaAttention::cudnn, op,
              ": LLMPI_ATTENTION=cudnn, but packed documents run the own kernels only");
  // cuDNN's fused backward, unless the own kernels are asked for or the run must
  // be deterministic (cuDNN accumulates dQ over key blocks in an order it does not fix).
  // Under LLMPI_ATTENTION=cudnn a refusal throws; under auto it falls back.
  const bool try_cudnn = !docs && options_.attention != CudaAttention::own &&
                         !options_.deterministic &&
                         options_.attention_backward == CudaAttentionBackward::automatic &&
                         CudnnAttention::may_support_backward(s);
  if (try_cudnn) {
    try {
      cudnn_attention()->backward(dqkv.data, dout.data, qkv.data, out.data,
                                  lse.ptr<const float>(), s);
      return;
    } catch (const InternalError&) {
      if (options_.attention == CudaAttention::cudnn) throw;
    }
  }
  Scratch delta(stream_, static_cast<size_t>(B * Hq * T) * sizeof(float));
  if (options_.attention_backward != CudaAttentionBackward::simt && tc_attention_supports(s)) {
    tc_attention_backward(dqkv.data, dout.data, qkv.data, out.data, lse.ptr<const float>(),
                          delta.as<float>(), s, docs, stream_);
    return;
  }
  own_attention_backward(dqkv.data, dout.data, qkv.data, out.data, lse.ptr<const float>(),
                         delta.as<float>(), s, docs, stream_);
}

}  // namespace llmpi
