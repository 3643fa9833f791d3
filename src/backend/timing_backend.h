#pragma once
// TimingBackend: a decorator of any Backend that times every op it forwards, for profiles
// (bench/op_profile.cpp on the host or a GPU, bench/llmpi_gpu_bench.cpp --profile) and the
// performance model's per-op input (docs/scaling.md). Each op becomes one OpRecord: its
// name, the shape that tells same-named ops apart (a linear's weight [rows x cols]), the
// FLOPs and bytes of its floors, and two clock marks around the forwarded call.
// Clocks: OpClock stamps points in the order ops are issued. The host clock reads a steady
// clock after fencing the backend (host ops complete before they return); a device clock
// (the CUDA one is in backend/cuda/cuda_op_clock.h) records events on the backend's stream,
// so no op is delayed and the times are those of the device. Durations are read after the
// device has finished (ms_between synchronizes as needed).
// Invariants: the decorator changes no result (every op forwards its arguments unchanged);
// records keep issue order; memory ops (alloc, free, synchronize) are not timed.
#include <chrono>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "backend/backend.h"

namespace llmpi {

class OpClock {
 public:
  virtual ~OpClock() = default;
  // A new mark at the current point of the op stream; returns its index.
  virtual int64_t mark() = 0;
  // Milliseconds from mark a to mark b (a issued before b); waits for the device.
  virtual double ms_between(int64_t a, int64_t b) = 0;
  // Forgets every mark (indices restart at 0).
  virtual void clear() = 0;
};

// Steady-clock marks after a fence of `be` (Kokkos fence on the host backend).
class HostOpClock final : public OpClock {
 public:
  explicit HostOpClock(Backend& be) : be_(be) {}
  int64_t mark() override;
  double ms_between(int64_t a, int64_t b) override;
  void clear() override { marks_.clear(); }

 private:
  Backend& be_;
  std::vector<std::chrono::steady_clock::time_point> marks_;
};

// One timed op. `ms` is filled by TimingBackend::records().
struct OpRecord {
  std::string op;     // backend op name: "linear_forward", "norm_backward", ...
  std::string shape;  // linear: weight "rows x cols" ("2304x768"); empty for other ops
  double flops = 0;   // arithmetic of the op (0 for data movement)
  double bytes = 0;   // bytes its tensors occupy (the traffic floor)
  double ms = 0;
  int64_t begin = 0, end = 0;  // clock marks

  std::string label() const { return shape.empty() ? op : op + " " + shape; }
};

class TimingBackend final : public Backend {
 public:
  // `inner` and `clock` must outlive this object.
  TimingBackend(Backend& inner, OpClock& clock) : in_(inner), clock_(clock) {}

  // The records so far, in issue order, with their times (waits for the device).
  std::vector<OpRecord> records();
  // Forgets the records (e.g. after warm-up steps).
  void clear();

  Device device() const override { return in_.device(); }
  const char* name() const override { return in_.name(); }
  void* native_stream() const override { return in_.native_stream(); }
  int64_t peak_bytes() const override { return in_.peak_bytes(); }
  double peak_flops() const override { return in_.peak_flops(); }
  double free_bytes() const override { return in_.free_bytes(); }
  void* raw_alloc(size_t bytes) override { return in_.raw_alloc(bytes); }
  void raw_free(void* p) override { in_.raw_free(p); }
  void synchronize() override { in_.synchronize(); }

  void copy(const Tensor& dst, const Tensor& src) override;
  void fill(const Tensor& t, double value) override;
  void add(const Tensor& out, const Tensor& a, const Tensor& b) override;
  void scale(const Tensor& t, double s) override;
  void embedding_forward(const Tensor& out, const Tensor& ids, const Tensor& table,
                         int64_t row_offset, bool accumulate) override;
  void embedding_backward(const Tensor& dtable, const Tensor& dout, const Tensor& ids,
                          int64_t row_offset) override;
  void linear_forward(const Tensor& out, const Tensor& in, const Tensor& w,
                      const Tensor& bias) override;
  void linear_backward(const Tensor& din, const Tensor& dw, const Tensor& dbias,
                       const Tensor& dout, const Tensor& in, const Tensor& w) override;
  void linear_forward_add_block(const Tensor& out, int64_t col0, const Tensor& in,
                                const Tensor& w) override;
  void linear_backward_block(const Tensor& din, const Tensor& dw, const Tensor& dout,
                             int64_t col0, const Tensor& in, const Tensor& w) override;
  void norm_forward(NormKind kind, const Tensor& out, const Tensor& mean, const Tensor& rstd,
                    const Tensor& x, const Tensor& gain, const Tensor& bias,
                    double eps) override;
  void norm_backward(NormKind kind, const Tensor& dx, const Tensor& dgain, const Tensor& dbias,
                     const Tensor& dout, const Tensor& x, const Tensor& gain,
                     const Tensor& mean, const Tensor& rstd) override;
  void add_norm_forward(NormKind kind, const Tensor& sum, const Tensor& out, const Tensor& mean,
                        const Tensor& rstd, const Tensor& a, const Tensor& b, const Tensor& gain,
                        const Tensor& bias, double eps) override;
  void norm_backward_add(NormKind kind, const Tensor& dx, const Tensor& dgain, const Tensor& dbias,
                         const Tensor& dout, const Tensor& dres, const Tensor& x,
                         const Tensor& gain, const Tensor& mean, const Tensor& rstd) override;
  void gelu_forward(const Tensor& out, const Tensor& in) override;
  void gelu_backward(const Tensor& din, const Tensor& dout, const Tensor& in) override;
  void linear_gelu_forward(const Tensor& out, const Tensor& pre, const Tensor& in, const Tensor& w,
                           const Tensor& bias) override;
  void linear_backward_gelu(const Tensor& din, const Tensor& dw, const Tensor& dbias,
                            const Tensor& dout, const Tensor& in, const Tensor& w,
                            const Tensor& pre) override;
  void swiglu_forward(const Tensor& out, const Tensor& in) override;
  void swiglu_backward(const Tensor& din, const Tensor& dout, const Tensor& in) override;
  void rope(const Tensor& qkv, int64_t T, int64_t n_rot_heads, int64_t head_dim, double theta,
            int64_t pos_offset, const Tensor& doc_start, bool inverse) override;
  void attention_forward(const Tensor& out, const Tensor& lse, const Tensor& qkv, int64_t B,
                         int64_t T, int64_t Hq, int64_t Hkv, int64_t D,
                         const Tensor& doc_start) override;
  void attention_backward(const Tensor& dqkv, const Tensor& dout, const Tensor& qkv,
                          const Tensor& out, const Tensor& lse, int64_t B, int64_t T,
                          int64_t Hq, int64_t Hkv, int64_t D, const Tensor& doc_start) override;
  void row_logsumexp(const Tensor& lse, const Tensor& logits) override;
  void pick_targets(const Tensor& picked, const Tensor& logits, const Tensor& targets,
                    int64_t col_offset) override;
  void cross_entropy_backward(const Tensor& dlogits, const Tensor& logits, const Tensor& lse,
                              const Tensor& targets, const Tensor& row_scale,
                              int64_t col_offset) override;
  void nf4_dequantize(const Tensor& out, const Tensor& codes, const Tensor& scale_codes,
                      const Tensor& scale_scales, double scale_offset) override;
  double sum_squares(std::span<const Tensor> ts) override;
  void adamw_update(std::span<const AdamWSlice> slices, const AdamWHyper& h) override;

 private:
  template <class F>
  void timed(const char* op, std::string shape, double flops, double bytes, F&& f);

  Backend& in_;
  OpClock& clock_;
  std::vector<OpRecord> records_;
};

// Per-label sums over records (calls, ms, flops, bytes), largest time first.
struct OpSummary {
  std::string label;
  int calls = 0;
  double ms = 0, flops = 0, bytes = 0;
};
std::vector<OpSummary> summarize_ops(std::span<const OpRecord> records);

}  // namespace llmpi
