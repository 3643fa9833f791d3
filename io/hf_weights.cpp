// The HF ↔ llmpi tensor table and the stack/transpose/trim transforms; see hf_weights.h.
#include "io/hf_weights.h"

#include "core/error.h"
#include "model/param_layout.h"

namespace llmpi {

namespace {

int64_t rows_of(const std::vector<int64_t>& s) { return s.empty() ? 1 : s[0]; }
int64_t cols_of(const std::vector<int64_t>& s) { return s.size() == 2 ? s[1] : 1; }
bool ends_with(const std::string& s, const std::string& tail) {
  return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}

}  // namespace

std::vector<HfTensorMap> hf_tensor_map(const ModelConfig& m, int64_t vocab_rows,
                                       const std::string& gp) {
  LLMPI_CHECK(vocab_rows > 0 && vocab_rows <= m.vocab_size, "vocab_rows ", vocab_rows);
  const int64_t C = m.d_model, F = m.d_ff, D = m.head_dim();
  const int64_t Q = m.n_head * D, KV = m.kv_heads() * D;
  std::vector<HfTensorMap> out;
  auto add = [&](std::string hf, std::vector<int64_t> shape, std::vector<std::string> params,
                 bool transpose = false, int64_t rows = -1) {
    out.push_back({std::move(hf), std::move(shape), std::move(params), transpose, rows});
  };
  if (m.arch == Arch::gpt2) {
    add(gp + "wte.weight", {vocab_rows, C}, {"embed.tokens"}, false, vocab_rows);
    add(gp + "wpe.weight", {m.max_seq_len, C}, {"embed.positions"});
    for (int64_t i = 0; i < m.n_layer; ++i) {
      const std::string h = gp + "h." + std::to_string(i) + ".", p = layer_prefix(i);
      add(h + "ln_1.weight", {C}, {p + "attn_norm.weight"});
      add(h + "ln_1.bias", {C}, {p + "attn_norm.bias"});
      add(h + "attn.c_attn.weight", {C, Q + 2 * KV},
          {p + "attn.q.weight", p + "attn.k.weight", p + "attn.v.weight"}, true);
      add(h + "attn.c_attn.bias", {Q + 2 * KV}, {p + "attn.q.bias", p + "attn.k.bias", p + "attn.v.bias"});
      add(h + "attn.c_proj.weight", {Q, C}, {p + "attn.out.weight"}, true);
      add(h + "attn.c_proj.bias", {C}, {p + "attn.out.bias"});
      add(h + "ln_2.weight", {C}, {p + "mlp_norm.weight"});
      add(h + "ln_2.bias", {C}, {p + "mlp_norm.bias"});
      add(h + "mlp.c_fc.weight", {C, F}, {p + "mlp.up.weight"}, true);
      add(h + "mlp.c_fc.bias", {F}, {p + "mlp.up.bias"});
      add(h + "mlp.c_proj.weight", {F, C}, {p + "mlp.down.weight"}, true);
      add(h + "mlp.c_proj.bias", {C}, {p + "mlp.down.bias"});
    }
    add(gp + "ln_f.weight", {C}, {"final_norm.weight"});
    add(gp + "ln_f.bias", {C}, {"final_norm.bias"});
  } else {
    add("model.embed_tokens.weight", {vocab_rows, C}, {"embed.tokens"}, false, vocab_rows);
    for (int64_t i = 0; i < m.n_layer; ++i) {
      const std::string h = "model.layers." + std::to_string(i) + ".", p = layer_prefix(i);
      add(h + "input_layernorm.weight", {C}, {p + "attn_norm.weight"});
      add(h + "self_attn.q_proj.weight", {Q, C}, {p + "attn.q.weight"});
      add(h + "self_attn.k_proj.weight", {KV, C}, {p + "attn.k.weight"});
      add(h + "self_attn.v_proj.weight", {KV, C}, {p + "attn.v.weight"});
      add(h + "self_attn.o_proj.weight", {C, Q}, {p + "attn.out.weight"});
      add(h + "post_attention_layernorm.weight", {C}, {p + "mlp_norm.weight"});
      add(h + "mlp.gate_proj.weight", {F, C}, {p + "mlp.gate.weight"});
      add(h + "mlp.up_proj.weight", {F, C}, {p + "mlp.up.weight"});
      add(h + "mlp.down_proj.weight", {C, F}, {p + "mlp.down.weight"});
    }
    add("model.norm.weight", {C}, {"final_norm.weight"});
  }
  if (!m.tied_embeddings) add("lm_head.weight", {vocab_rows, C}, {"head.weight"}, false, vocab_rows);
  return out;
}

std::vector<float> hf_values(const HfTensorMap& map,
                             const std::function<GlobalTensor(const std::string&)>& param) {
  // Stack the parameters' rows (only the first map.rows rows when trimming).
  std::vector<float> stacked;
  int64_t rows = 0, cols = -1;
  for (const std::string& name : map.params) {
    const GlobalTensor t = param(name);
    const int64_t c = cols_of(t.shape);
    LLMPI_CHECK(cols < 0 || c == cols, map.hf_name, ": ", name, " has ", c, " columns");
    cols = c;
    const int64_t keep = map.rows >= 0 ? std::min(map.rows, rows_of(t.shape)) : rows_of(t.shape);
    stacked.insert(stacked.end(), t.values.begin(), t.values.begin() + keep * c);
    rows += keep;
  }
  if (!map.transpose) return stacked;
  std::vector<float> out(stacked.size());
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) out[size_t(c * rows + r)] = stacked[size_t(r * cols + c)];
  return out;
}

void split_hf_values(const HfTensorMap& map, std::span<const float> hf,
                     const std::function<std::vector<int64_t>(const std::string&)>& shape_of,
                     const std::function<void(const std::string&, std::vector<float>)>& put) {
  int64_t rows = 0, cols = 1;
  for (const std::string& name : map.params) {
    const std::vector<int64_t> s = shape_of(name);
    rows += map.rows >= 0 ? map.rows : rows_of(s);
    cols = cols_of(s);
  }
  LLMPI_CHECK(int64_t(hf.size()) == rows * cols, map.hf_name, ": ", hf.size(), " values for ",
              rows, " x ", cols);
  int64_t row0 = 0;
  for (const std::string& name : map.params) {
    const std::vector<int64_t> s = shape_of(name);
    const int64_t n_rows = map.rows >= 0 ? map.rows : rows_of(s);
    std::vector<float> v(size_t(rows_of(s) * cols), 0.0f);  // padding rows (if any) stay 0
    for (int64_t r = 0; r < n_rows; ++r)
      for (int64_t c = 0; c < cols; ++c)
        v[size_t(r * cols + c)] = map.transpose ? hf[size_t(c * rows + row0 + r)]
                                                : hf[size_t((row0 + r) * cols + c)];
    row0 += n_rows;
    put(name, std::move(v));
  }
}

bool hf_ignorable_buffer(const std::string& n) {
  return ends_with(n, ".attn.bias") || ends_with(n, ".attn.masked_bias") ||
         ends_with(n, ".rotary_emb.inv_freq");
}

}  // namespace llmpi
