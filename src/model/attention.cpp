// Causal self-attention layer: packed qkv GEMM, RoPE, Backend::attention_*, out projection.
#include "model/attention.h"

#include "model/dtypes.h"

namespace llmpi {

Attention Attention::bind(const ModelConfig& cfg, const ParamStore& store,
                          const std::string& prefix, const AdapterStore& adapters) {
  Attention a;
  a.head_dim = cfg.head_dim();
  const std::string q = prefix + ".q.", k = prefix + ".k.", v = prefix + ".v.";
  // Head counts of the local slabs (all heads on one rank; Hq/tp and the kv heads those
  // query heads read under tensor parallelism).
  a.n_head = store.info(q + "weight").local_shape[0] / a.head_dim;
  a.n_kv_head = store.info(k + "weight").local_shape[0] / a.head_dim;
  LLMPI_CHECK(a.n_head > 0 && a.n_kv_head > 0 && a.n_head % a.n_kv_head == 0, prefix, ": ",
              a.n_head, " query heads over ", a.n_kv_head, " kv heads");
  a.rope = cfg.arch == Arch::llama;
  a.rope_theta = cfg.rope_theta;
  std::vector<std::string> biases;
  if (cfg.has_bias()) biases = {q + "bias", k + "bias", v + "bias"};
  a.qkv = Linear::bind(store, {q + "weight", k + "weight", v + "weight"}, biases, a.qkv_dim(),
                       cfg.d_model);
  std::vector<std::string> out_bias;
  if (cfg.has_bias()) out_bias = {prefix + ".out.bias"};
  a.proj = Linear::bind(store, {prefix + ".out.weight"}, out_bias, cfg.d_model,
                        a.n_head * a.head_dim);
  a.qkv_lora.in_features = cfg.d_model;
  a.qkv_lora.out_features = a.qkv_dim();
  a.qkv_lora.bind(adapters, prefix + ".q", 0);
  a.qkv_lora.bind(adapters, prefix + ".k", a.n_head * a.head_dim);
  a.qkv_lora.bind(adapters, prefix + ".v", (a.n_head + a.n_kv_head) * a.head_dim);
  a.proj_lora.in_features = a.n_head * a.head_dim;
  a.proj_lora.out_features = cfg.d_model;
  a.proj_lora.bind(adapters, prefix + ".out", 0);
  return a;
}

AttentionActs Attention::alloc_acts(Backend& be, int64_t B, int64_t T, DType compute) const {
  AttentionActs a;
  a.B = B;
  a.T = T;
  a.qkv = be.alloc(Shape{B, T, qkv_dim()}, compute);
  a.out = be.alloc(Shape{B, T, n_head * head_dim}, compute);
  a.lse = be.alloc(Shape{B, n_head, T}, stat_dtype(compute));
  a.qkv_lora = qkv_lora.alloc_acts(be, B * T, compute);
  a.proj_lora = proj_lora.alloc_acts(be, B * T, compute);
  return a;
}

AttentionScratch Attention::alloc_scratch(Backend& be, int64_t B, int64_t T,
                                          DType compute) const {
  AttentionScratch s;
  s.dqkv = be.alloc(Shape{B, T, qkv_dim()}, compute);
  s.dout = be.alloc(Shape{B, T, n_head * head_dim}, compute);
  return s;
}

void Attention::forward(Backend& be, AttentionActs& a, const Tensor& y, const Tensor& x) const {
  const int64_t N = a.B * a.T;
  const Tensor qkv2 = a.qkv.tensor().view(Shape{N, qkv_dim()});
  qkv.forward(be, qkv2, x);
  if (!qkv_lora.empty()) qkv_lora.forward_add(be, a.qkv_lora, qkv2, x);
  if (rope)
    be.rope(a.qkv, a.T, n_head + n_kv_head, head_dim, rope_theta, 0, a.doc_start, false);
  be.attention_forward(a.out, a.lse, a.qkv, a.B, a.T, n_head, n_kv_head, head_dim,
                       a.doc_start);
  const Tensor out2 = a.out.tensor().view(Shape{N, n_head * head_dim});
  proj.forward(be, y, out2);
  if (!proj_lora.empty()) proj_lora.forward_add(be, a.proj_lora, y, out2);
}

void Attention::backward(Backend& be, const AttentionActs& a, AttentionScratch& s,
                         const Tensor& dx, const Tensor& dy, const Tensor& x) const {
  const int64_t N = a.B * a.T;
  const Tensor dqkv = s.dqkv.tensor().slice(0, Shape{a.B, a.T, qkv_dim()});
  const Tensor dout = s.dout.tensor().slice(0, Shape{a.B, a.T, n_head * head_dim});
  const Tensor out2 = a.out.tensor().view(Shape{N, n_head * head_dim});
  proj.backward(be, dout.view(Shape{N, n_head * head_dim}), dy, out2);
  if (!proj_lora.empty())
    proj_lora.backward(be, a.proj_lora, *a.lora, dout.view(Shape{N, n_head * head_dim}), dy, out2);
  be.attention_backward(dqkv, dout, a.qkv, a.out, a.lse, a.B, a.T, n_head, n_kv_head, head_dim,
                        a.doc_start);
  if (rope) be.rope(dqkv, a.T, n_head + n_kv_head, head_dim, rope_theta, 0, a.doc_start, true);
  qkv.backward(be, dx, dqkv.view(Shape{N, qkv_dim()}), x);
  if (!qkv_lora.empty()) qkv_lora.backward(be, a.qkv_lora, *a.lora, dx, dqkv.view(Shape{N, qkv_dim()}), x);
}

}  // namespace llmpi
