// Parameter layout of a transformer stage: names, shapes, init and weight-decay flags.
#include "model/param_layout.h"

#include <cmath>

#include "core/error.h"

namespace llmpi {

void validate_model_config(const ModelConfig& c) {
  auto positive = [](const char* key, int64_t v) {
    if (v <= 0) user_error("model.", key, " = ", v, ": expected a positive integer");
  };
  positive("vocab_size", c.vocab_size);
  positive("n_layer", c.n_layer);
  positive("n_head", c.n_head);
  positive("d_model", c.d_model);
  positive("d_ff", c.d_ff);
  positive("max_seq_len", c.max_seq_len);
  if (c.n_kv_head < 0) user_error("model.n_kv_head = ", c.n_kv_head, ": expected >= 0");
  if (c.d_model % c.n_head != 0)
    user_error("model.d_model = ", c.d_model, " must be divisible by model.n_head = ", c.n_head);
  if (c.n_head % c.kv_heads() != 0)
    user_error("model.n_head = ", c.n_head, " must be divisible by model.n_kv_head = ",
               c.kv_heads());
  if (c.arch == Arch::llama && c.head_dim() % 2 != 0)
    user_error("model.d_model / model.n_head = ", c.head_dim(), ": RoPE needs an even head dim");
  if (!(c.norm_eps > 0)) user_error("model.norm_eps = ", c.norm_eps, ": expected > 0");
  if (!(c.init_std > 0)) user_error("model.init_std = ", c.init_std, ": expected > 0");
  if (c.arch == Arch::llama && !(c.rope_theta > 0))
    user_error("model.rope_theta = ", c.rope_theta, ": expected > 0");
}

std::string layer_prefix(int64_t layer) { return "layers." + std::to_string(layer) + "."; }

std::vector<ParamInfo> transformer_params(const ModelConfig& c, const StageRange& r) {
  validate_model_config(c);
  LLMPI_CHECK(0 <= r.first_layer && r.first_layer <= r.end_layer && r.end_layer <= c.n_layer,
              "stage layers [", r.first_layer, ", ", r.end_layer, ") of ", c.n_layer);
  const int64_t V = c.vocab_size, C = c.d_model, F = c.d_ff, D = c.head_dim();
  const int64_t Hq = c.n_head, Hkv = c.kv_heads();
  const double std = c.init_std;
  const double resid_std = std / std::sqrt(2.0 * static_cast<double>(c.n_layer));
  const bool bias = c.has_bias();

  std::vector<ParamInfo> ps;
  auto matrix = [&](std::string name, Shape s, double sd) {
    ps.push_back(full_param(std::move(name), s, InitKind::normal, sd, true));
  };
  auto zeros = [&](std::string name, int64_t n) {
    ps.push_back(full_param(std::move(name), Shape{n}, InitKind::zeros, 0.0, false));
  };
  auto norm = [&](const std::string& prefix) {
    ps.push_back(full_param(prefix + ".weight", Shape{C}, InitKind::ones, 0.0, false));
    if (bias) zeros(prefix + ".bias", C);
  };

  if (r.embedding || (r.head && c.tied_embeddings)) matrix("embed.tokens", Shape{V, C}, std);
  if (r.embedding && c.learned_positions())
    matrix("embed.positions", Shape{c.max_seq_len, C}, std);

  for (int64_t i = r.first_layer; i < r.end_layer; ++i) {
    const std::string p = layer_prefix(i);
    norm(p + "attn_norm");
    matrix(p + "attn.q.weight", Shape{Hq * D, C}, std);  // q, k, v adjacent: one packed GEMM
    matrix(p + "attn.k.weight", Shape{Hkv * D, C}, std);
    matrix(p + "attn.v.weight", Shape{Hkv * D, C}, std);
    if (bias) {
      zeros(p + "attn.q.bias", Hq * D);
      zeros(p + "attn.k.bias", Hkv * D);
      zeros(p + "attn.v.bias", Hkv * D);
    }
    matrix(p + "attn.out.weight", Shape{C, Hq * D}, resid_std);
    if (bias) zeros(p + "attn.out.bias", C);
    norm(p + "mlp_norm");
    if (c.arch == Arch::llama) {
      matrix(p + "mlp.gate.weight", Shape{F, C}, std);  // gate, up adjacent: [2F, C]
      matrix(p + "mlp.up.weight", Shape{F, C}, std);
    } else {
      matrix(p + "mlp.up.weight", Shape{F, C}, std);
      if (bias) zeros(p + "mlp.up.bias", F);
    }
    matrix(p + "mlp.down.weight", Shape{C, F}, resid_std);
    if (bias) zeros(p + "mlp.down.bias", C);
  }

  if (r.head) {
    norm("final_norm");
    if (!c.tied_embeddings) matrix("head.weight", Shape{V, C}, std);
  }
  return ps;
}

}  // namespace llmpi
