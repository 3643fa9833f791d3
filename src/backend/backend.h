#pragma once
// Backend: the set of tensor operations the model is written against. Two implementations:
// `host` (Kokkos kernels + CBLAS; f32, and f64 for gradient checks) and `cuda` (bf16
// compute with fp32 accumulation). Model code never knows which one runs it.
//
// Conventions for every op:
//  - Tensors are contiguous row-major. N = B*T token rows. C = width. V = (local) vocab.
//  - Outputs are preallocated by the caller; launchers assert dtypes and shapes.
//  - Activation gradients (din, dq, ...) are OVERWRITTEN.
//  - Parameter gradients (dw, db, dtable, dgain) are ACCUMULATED (+=), so that gradient
//    accumulation over micro-batches needs no extra pass.
//  - Statistics kept for backward (norm rstd/mean, attention and loss log-sum-exp) are f32
//    on every backend (f64 in the host f64 mode).
//  - Ops are asynchronous on the backend's stream; values read back on the host
//    (`sum_squares`, `to_host`) synchronize.
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <vector>

#include "core/tensor.h"

namespace llmpi {

class Backend;

// An owned allocation on a backend's device; freed by that backend. Move-only (RAII).
class Buffer {
 public:
  Buffer() = default;
  Buffer(Backend* be, Tensor t) : be_(be), t_(t) {}
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;
  Buffer(Buffer&& o) noexcept : be_(o.be_), t_(o.t_) { o.be_ = nullptr; o.t_ = {}; }
  Buffer& operator=(Buffer&& o) noexcept;
  ~Buffer();

  const Tensor& tensor() const { return t_; }
  operator const Tensor&() const { return t_; }
  template <class T> T* ptr() const { return t_.ptr<T>(); }

 private:
  Backend* be_ = nullptr;
  Tensor t_;
};

enum class NormKind : uint8_t { layernorm, rmsnorm };

// One parameter tensor's slice for the fused multi-tensor AdamW.
struct AdamWSlice {
  Tensor param;  // master weights (f32), updated in place
  Tensor grad;   // same shape, f32
  Tensor m, v;   // first and second moments, f32, updated in place
  float weight_decay = 0.f;  // 0 for norm gains and biases
  // Optional compute copy of `param` (same numel, e.g. the bf16 weights read by forward):
  // when given, it receives the updated param, converted, in the same pass.
  Tensor compute;
};

struct AdamWHyper {
  float lr = 0.f, beta1 = 0.9f, beta2 = 0.95f, eps = 1e-8f;
  int64_t step = 1;        // 1-based step for bias correction
  float grad_scale = 1.f;  // multiplies every gradient first (global-norm clipping)
};

// Ops recorded once by Backend::record and replayed as one unit (a CUDA graph).
class RecordedWork {
 public:
  virtual ~RecordedWork() = default;
  // Enqueues the recorded ops again, in order, on the backend's stream.
  virtual void replay() = 0;
};

class Backend {
 public:
  virtual ~Backend() = default;
  virtual Device device() const = 0;
  virtual const char* name() const = 0;
  // The device stream every op is enqueued on (a cudaStream_t on CUDA), so that device
  // collectives (parallel/group_collectives.h) order with compute; nullptr on the host.
  virtual void* native_stream() const { return nullptr; }
  // The high-water mark of the device memory this backend's allocations used, in bytes
  // (CUDA: the stream-ordered pool's); -1 where it is not tracked (host).
  virtual int64_t peak_bytes() const { return -1; }
  // The device's dense peak FLOP/s in the compute dtype, MFU's denominator (CUDA: the table of
  // backend/peak_flops.h by device name); 0 where it is not known (host, other GPUs).
  virtual double peak_flops() const { return 0.0; }
  // The device memory this process may still allocate, in bytes (CUDA: cudaMemGetInfo's
  // free); -1 where not known (host: parallel/memory_estimate.h reads MemAvailable instead).
  virtual double free_bytes() const { return -1; }

  // ---- memory -------------------------------------------------------------------------
  Buffer alloc(Shape s, DType t);
  virtual void* raw_alloc(size_t bytes) = 0;
  virtual void raw_free(void* p) = 0;
  // dst = src (same numel; converts dtype f32/f64/bf16; either may be on host or device).
  virtual void copy(const Tensor& dst, const Tensor& src) = 0;
  virtual void fill(const Tensor& t, double value) = 0;
  virtual void synchronize() = 0;
  // Records the ops `work` enqueues, without running them, for RecordedWork::replay (CUDA:
  // stream capture into a graph); nullptr where this backend cannot record (the host, the
  // timing decorator): the caller then runs `work` itself. The work must not synchronize,
  // read back or copy from host memory, and every argument of its ops (addresses, sizes,
  // scalars) is frozen at recording. Stream-ordered scratch it allocates and frees belongs to
  // the recording. A failed recording throws InternalError and leaves the backend usable.
  virtual std::unique_ptr<RecordedWork> record(const std::function<void()>& work) {
    (void)work;
    return nullptr;
  }

  // ---- elementwise -------------------------------------------------------------------
  // out = a + b (out may alias a or b).
  virtual void add(const Tensor& out, const Tensor& a, const Tensor& b) = 0;
  // t *= s
  virtual void scale(const Tensor& t, double s) = 0;

  // ---- embedding -----------------------------------------------------------------------
  // out[n, :] (= or +=) table[ids[n] - row_offset, :] when row_offset <= ids[n] < row_offset
  // + table.rows, else (= 0 | += 0). row_offset is the vocab-parallel shard start.
  // ids: i32 [N]; table: [R, C]; out: [N, C].
  virtual void embedding_forward(const Tensor& out, const Tensor& ids, const Tensor& table,
                                 int64_t row_offset, bool accumulate) = 0;
  // dtable[ids[n] - row_offset, :] += dout[n, :] for ids in this shard's range.
  virtual void embedding_backward(const Tensor& dtable, const Tensor& dout, const Tensor& ids,
                                  int64_t row_offset) = 0;

  // ---- matrix products ---------------------------------------------------------------
  // out[N, O] = in[N, I] · w[O, I]ᵀ + bias[O]   (bias may be empty).
  virtual void linear_forward(const Tensor& out, const Tensor& in, const Tensor& w,
                              const Tensor& bias) = 0;
  // din[N, I] = dout · w          (skipped when din is empty)
  // dw[O, I] += doutᵀ · in        (skipped when dw is empty)
  // dbias[O] += Σ_n dout[n, :]    (skipped when dbias is empty)
  virtual void linear_backward(const Tensor& din, const Tensor& dw, const Tensor& dbias,
                               const Tensor& dout, const Tensor& in, const Tensor& w) = 0;
  // The same products on a column block of a wider row-major matrix, for LoRA's branches of a
  // packed map (model/lora_linear.h): Y [N, C] and its block Y[:, col0 : col0 + O], C ≥ col0
  // + O. Both ACCUMULATE into every output, and leave Y's other columns untouched:
  // out[:, block] += in[N, I] · w[O, I]ᵀ
  virtual void linear_forward_add_block(const Tensor& out, int64_t col0, const Tensor& in,
                                        const Tensor& w) = 0;
  // din[N, I] += dout[:, block] · w     (skipped when din is empty)
  // dw[O, I]  += dout[:, block]ᵀ · in   (skipped when dw is empty)
  virtual void linear_backward_block(const Tensor& din, const Tensor& dw, const Tensor& dout,
                                     int64_t col0, const Tensor& in, const Tensor& w) = 0;

  // ---- normalization -----------------------------------------------------------------
  // layernorm: out = (x - mean) * rstd * gain + bias;  rmsnorm: out = x * rstd * gain.
  // x, out: [N, C]; gain, bias: [C] (bias empty for rmsnorm); mean, rstd: [N] statistics
  // (mean unused and may be empty for rmsnorm).
  virtual void norm_forward(NormKind kind, const Tensor& out, const Tensor& mean,
                            const Tensor& rstd, const Tensor& x, const Tensor& gain,
                            const Tensor& bias, double eps) = 0;
  // dx = ∂/∂x (overwritten); dgain, dbias accumulated (dbias empty for rmsnorm).
  virtual void norm_backward(NormKind kind, const Tensor& dx, const Tensor& dgain,
                             const Tensor& dbias, const Tensor& dout, const Tensor& x,
                             const Tensor& gain, const Tensor& mean, const Tensor& rstd) = 0;

  // ---- fused residual add + normalization ----------------------------------------------
  // The pre-norm residual stream: sum = a + b (written; may alias a or b), then out, mean,
  // rstd = norm_forward(sum) — equal to add() followed by norm_forward() on the bf16/f32
  // sum, in one pass. Shapes and dtypes as add() and norm_forward().
  virtual void add_norm_forward(NormKind kind, const Tensor& sum, const Tensor& out,
                                const Tensor& mean, const Tensor& rstd, const Tensor& a,
                                const Tensor& b, const Tensor& gain, const Tensor& bias,
                                double eps) = 0;
  // norm_backward with the residual gradient added: dx = dres + ∂/∂x (overwritten; dx may
  // alias dres or dout); dgain, dbias accumulated. dres: [N, C] like dx.
  virtual void norm_backward_add(NormKind kind, const Tensor& dx, const Tensor& dgain,
                                 const Tensor& dbias, const Tensor& dout, const Tensor& dres,
                                 const Tensor& x, const Tensor& gain, const Tensor& mean,
                                 const Tensor& rstd) = 0;

  // ---- activations -------------------------------------------------------------------
  // tanh-approximated GELU. in, out: [N, F].
  virtual void gelu_forward(const Tensor& out, const Tensor& in) = 0;
  virtual void gelu_backward(const Tensor& din, const Tensor& dout, const Tensor& in) = 0;
  // A linear map followed by the GELU: pre = in · wᵀ + bias (kept for backward), out =
  // gelu(pre); as linear_forward then gelu_forward (pre, out: [N, O]; bias may be empty).
  virtual void linear_gelu_forward(const Tensor& out, const Tensor& pre, const Tensor& in,
                                   const Tensor& w, const Tensor& bias) = 0;
  // linear_backward of a map whose input came from a GELU, in = gelu(pre): the input
  // gradient goes on through the GELU, din = (dout · w) ⊙ gelu′(pre) (overwritten); dw, dbias
  // accumulated as linear_backward. pre, din: [N, I].
  virtual void linear_backward_gelu(const Tensor& din, const Tensor& dw, const Tensor& dbias,
                                    const Tensor& dout, const Tensor& in, const Tensor& w,
                                    const Tensor& pre) = 0;
  // SwiGLU: in[N, 2F] holds [gate | up] per row; out[N, F] = silu(gate) * up.
  virtual void swiglu_forward(const Tensor& out, const Tensor& in) = 0;
  virtual void swiglu_backward(const Tensor& din, const Tensor& dout, const Tensor& in) = 0;

  // ---- packed documents ----------------------------------------------------------------
  // A row of a batch may hold several documents back to back (packing). They are described
  // by doc_start: i32 [B·T] (any shape of that numel), doc_start[b·T + t] = the position in
  // row b of the first token of t's document; hence doc_start[b·T] = 0 and doc_start[b·T + t]
  // ∈ {doc_start[b·T + t − 1], t} (documents are contiguous; core/documents.h checks it).
  // An EMPTY doc_start means one document per row (doc_start ≡ 0). A token's position is
  // t − doc_start (RoPE and learned positions restart at each document) and query t attends
  // keys [doc_start, t] only (block-diagonal causal attention).

  // ---- rotary position embedding -----------------------------------------------------
  // In place on qkv[B, T, (Hq + 2·Hkv) · D]: rotates the first n_rot = Hq + Hkv heads of
  // every row (the q and k heads), pairs (i, i + D/2) ("rotate_half", as Hugging Face
  // Llama), angle = (t − doc_start + pos_offset) · theta^(-2i/D). inverse = true rotates by
  // the negative angle, which is the backward of the forward rotation.
  virtual void rope(const Tensor& qkv, int64_t T, int64_t n_rot_heads, int64_t head_dim,
                    double theta, int64_t pos_offset, const Tensor& doc_start,
                    bool inverse) = 0;

  // ---- causal self-attention ---------------------------------------------------------
  // qkv: [B, T, (Hq + 2·Hkv) · D], per row [q heads | k heads | v heads];
  // out: [B, T, Hq · D]; lse: [B, Hq, T] log-sum-exp of each softmax row (f32).
  // Query head h reads kv head h / (Hq / Hkv) (grouped-query attention).
  // Scores are scaled by 1/sqrt(D) and masked causally, and across documents when doc_start
  // is given (query t sees keys [doc_start, t]). The T×T scores are never stored.
  virtual void attention_forward(const Tensor& out, const Tensor& lse, const Tensor& qkv,
                                 int64_t B, int64_t T, int64_t Hq, int64_t Hkv, int64_t D,
                                 const Tensor& doc_start) = 0;
  // dqkv (overwritten) has the layout of qkv; doc_start as given to the forward.
  virtual void attention_backward(const Tensor& dqkv, const Tensor& dout, const Tensor& qkv,
                                  const Tensor& out, const Tensor& lse, int64_t B, int64_t T,
                                  int64_t Hq, int64_t Hkv, int64_t D,
                                  const Tensor& doc_start) = 0;

  // ---- cross-entropy (split so that a vocab-parallel loss can all-reduce between) ----
  // lse[n] = log Σ_v exp(logits[n, v]); logits: [N, V]. (max and sum combine across
  // vocab shards as lse = log Σ_r exp(lse_r).)
  virtual void row_logsumexp(const Tensor& lse, const Tensor& logits) = 0;
  // picked[n] = logits[n, targets[n] - col_offset] if the target is in this shard, else 0.
  // targets: i32 [N]; a negative target is ignored (picked = 0).
  virtual void pick_targets(const Tensor& picked, const Tensor& logits, const Tensor& targets,
                            int64_t col_offset) = 0;
  // dlogits[n, v] = row_scale[n] · (exp(logits[n, v] - lse[n]) - [v + col_offset ==
  // targets[n]]); rows with a negative target get 0. dlogits may alias logits.
  // row_scale: [N] (f32), usually 1/(number of counted targets).
  virtual void cross_entropy_backward(const Tensor& dlogits, const Tensor& logits,
                                      const Tensor& lse, const Tensor& targets,
                                      const Tensor& row_scale, int64_t col_offset) = 0;

  // ---- NF4 (QLoRA's frozen 4-bit base weights, quant/nf4.h) ---------------------------
  // out[i] = kNf4Levels[c_i] · ŝ_{i/64}, ŝ_b = offset + k_b · g_{b/256} / 127, computed in f32
  // (as the reference nf4_dequantize) and stored in out's dtype. c_i is the high nibble of
  // codes[i/2] for even i, the low nibble for odd i.
  // codes: u8 [ceil(n/2)]; scale_codes: u8 [ceil(n/64)] holding the int8 k_b; scale_scales:
  // f32 [ceil(n/16384)] the g; out: [n] (host: f32 or f64; CUDA: bf16 or f32).
  virtual void nf4_dequantize(const Tensor& out, const Tensor& codes, const Tensor& scale_codes,
                              const Tensor& scale_scales, double scale_offset) = 0;

  // ---- optimizer ---------------------------------------------------------------------
  // Σ x² over all tensors, in f64, read back to the host (synchronizes).
  virtual double sum_squares(std::span<const Tensor> ts) = 0;
  // AdamW with decoupled weight decay on every slice (one fused launch where possible):
  //   g = grad_scale · grad; m = β1 m + (1-β1) g; v = β2 v + (1-β2) g²
  //   p -= lr · ( m/(1-β1^t) / (sqrt(v/(1-β2^t)) + eps) + wd · p )
  virtual void adamw_update(std::span<const AdamWSlice> slices, const AdamWHyper& h) = 0;
};

// The host backend (always built). DefaultExecutionSpace of the Kokkos it was built with.
std::unique_ptr<Backend> make_host_backend();

}  // namespace llmpi
