// H100 reference figures for projections (see h100_reference.h).
#include "bench/perfmodel/h100_reference.h"

#include "model/param_layout.h"

namespace llmpi::perf {
namespace {

// docs/performance.md, "Latest: cuDNN attention backward (2026-11-25, one H100 80GB HBM3)",
// TinyLlama-shape table: milliseconds per step of each op kind.
constexpr double kLinearFwdMs = 45.6, kLinearBwdMs = 93.6;
constexpr double kAttnFwdMs = 8.81, kAttnBwdMs = 31.02;
constexpr double kSwigluMs = 19.96, kNormMs = 11.38, kAddMs = 5.88, kRopeMs = 3.29;
constexpr double kAdamwMs = 12.93;
constexpr double kCopyGBs = 3010;  // measured 1 GiB device copy in the same run

}  // namespace

ModelConfig tinyllama_shape() {
  ModelConfig m;
  m.arch = Arch::llama;
  m.vocab_size = 32000;
  m.n_layer = 22;
  m.n_head = 32;
  m.n_kv_head = 4;
  m.d_model = 2048;
  m.d_ff = 5632;
  m.max_seq_len = 2048;
  m.tied_embeddings = false;
  return m;
}

OpProfile h100_reference_profile() {
  OpProfile p;
  p.source = "H100 80GB HBM3, llmpi_gpu_bench --profile of the TinyLlama shape (docs/performance.md, 2026-11-25)";
  p.device = "cuda";
  p.model = tinyllama_shape();
  p.B = 8;
  p.T = 2048;
  for (const ParamInfo& q : transformer_params(p.model, StageRange::full(p.model))) p.params += q.numel();
  p.copy_gbs = kCopyGBs;
  p.fresh_gbs = kCopyGBs;  // the stream-ordered pool: allocation is free, the fill runs at copy speed
  const WorkShape s = p.shape();
  const double L = double(p.model.n_layer), N = double(p.B * p.T), C = double(p.model.d_model);
  const double a = 2.0, V = double(p.model.vocab_size);
  const double bw = kCopyGBs * 1e6;  // bytes per ms
  auto row = [&](Phase ph, const char* op, OpClass c, Role r, double calls, double ms) {
    ProfileRow x;
    x.phase = ph, x.op = op, x.cls = c, x.role = r, x.calls = int64_t(calls), x.ms = ms;
    x.flops = c == OpClass::matmul || c == OpClass::attention ? calls * work(c, r, s) : 0.0;
    p.rows.push_back(x);
  };
  // Matrix products: one rate per direction, spread by FLOPs.
  const Role block_roles[] = {Role::qkv, Role::attn_out, Role::mlp_up, Role::mlp_down};
  double block_flops = 0;
  for (Role r : block_roles) block_flops += work(OpClass::matmul, r, s);
  const double all_flops = L * block_flops + work(OpClass::matmul, Role::head, s);
  for (Role r : block_roles) {
    const double share = L * work(OpClass::matmul, r, s) / all_flops;
    row(Phase::block_fwd, "linear_forward", OpClass::matmul, r, L, kLinearFwdMs * share);
    row(Phase::block_bwd, "linear_backward", OpClass::matmul, r, L, kLinearBwdMs * share);
  }
  const double head_share = work(OpClass::matmul, Role::head, s) / all_flops;
  row(Phase::head_fwd, "linear_forward", OpClass::matmul, Role::head, 1, kLinearFwdMs * head_share);
  row(Phase::head_bwd, "linear_backward", OpClass::matmul, Role::head, 1, kLinearBwdMs * head_share);
  row(Phase::block_fwd, "attention_forward", OpClass::attention, Role::none, L, kAttnFwdMs);
  row(Phase::block_bwd, "attention_backward", OpClass::attention, Role::none, L, kAttnBwdMs);
  // Elementwise kinds: spread by the bytes TimingBackend counts (swiglu 3 : 5 units of F per
  // row forward : backward, norms 2 : 3 of C, adds and rope alike both ways).
  row(Phase::block_fwd, "swiglu_forward", OpClass::feature, Role::act, L, kSwigluMs * 3 / 8);
  row(Phase::block_bwd, "swiglu_backward", OpClass::feature, Role::act, L, kSwigluMs * 5 / 8);
  const double norm_fwd_call = kNormMs * 2 / 5 / (2 * L + 1), norm_bwd_call = kNormMs * 3 / 5 / (2 * L + 1);
  row(Phase::block_fwd, "norm_forward", OpClass::row, Role::none, 2 * L, 2 * L * norm_fwd_call);
  row(Phase::block_bwd, "norm_backward", OpClass::row, Role::none, 2 * L, 2 * L * norm_bwd_call);
  row(Phase::head_fwd, "norm_forward", OpClass::row, Role::none, 1, norm_fwd_call);
  row(Phase::head_bwd, "norm_backward", OpClass::row, Role::none, 1, norm_bwd_call);
  row(Phase::block_fwd, "add", OpClass::row, Role::none, 2 * L, kAddMs / 2);
  row(Phase::block_bwd, "add", OpClass::row, Role::none, 2 * L, kAddMs / 2);
  row(Phase::block_fwd, "rope_forward", OpClass::feature, Role::rope, L, kRopeMs / 2);
  row(Phase::block_bwd, "rope_backward", OpClass::feature, Role::rope, L, kRopeMs / 2);
  // Not in the table: at the measured copy bandwidth, bytes as TimingBackend counts them.
  row(Phase::embed_fwd, "embedding_forward", OpClass::embedding, Role::none, 1, 2 * N * C * a / bw);
  row(Phase::embed_bwd, "embedding_backward", OpClass::embedding, Role::none, 1, 3 * N * C * a / bw);
  row(Phase::head_fwd, "row_logsumexp", OpClass::loss, Role::none, 1, N * V * a / bw);
  row(Phase::head_bwd, "cross_entropy_backward", OpClass::loss, Role::none, 1, 2 * N * V * a / bw);
  row(Phase::step, "fill", OpClass::params, Role::none, 1, 4.0 * double(p.params) / bw);
  row(Phase::step, "sum_squares", OpClass::params, Role::none, 1, 4.0 * double(p.params) / bw);
  row(Phase::step, "adamw_update", OpClass::params, Role::none, 1, kAdamwMs);
  p.step_ms = p.total_ms();
  return p;
}

Cluster h100_cluster(double nvlink_fraction, double ib_fraction, double nvlink_alpha_s,
                     double ib_alpha_s) {
  Cluster k;
  k.per_node = 8;
  k.intra = {nvlink_alpha_s, nvlink_fraction * 450e9};  // NVLink 4: 900 GB/s both ways
  k.inter = {ib_alpha_s, ib_fraction * 50e9};            // 400 Gb/s NDR per GPU
  return k;
}

}  // namespace llmpi::perf
