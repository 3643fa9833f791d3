#pragma once
// Parameter layout of a transformer (or of one pipeline stage of it): the ordered list of
// ParamInfo that a ParamStore packs into its flat buffers. Names are global and fixed (they
// are the checkpoint's dataset names); see docs/model.md for the table of names and shapes.
// Packing invariants the layers rely on: q, k, v weights are adjacent (one packed
// [(Hq + 2·Hkv)·D, C] matrix), likewise q, k, v biases; llama's gate and up weights are
// adjacent (one [2F, C] matrix, gate rows first, matching Backend::swiglu_forward).
// Init (GPT-2): N(0, init_std) for weight matrices and embeddings, residual output
// projections (attn.out, mlp.down) scaled by 1/sqrt(2·n_layer), biases 0, norm gains 1.
#include <cstdint>
#include <string>
#include <vector>

#include "model/model_config.h"
#include "model/param_store.h"

namespace llmpi {

// The part of the model one pipeline stage holds: layers [first_layer, end_layer), plus the
// embedding (first stage) and/or the final norm + head + loss (last stage).
// A head-only stage of a tied-embedding model holds its own copy of `embed.tokens`; the
// pipeline code keeps the copies equal by summing their gradients.
struct StageRange {
  int64_t first_layer = 0;
  int64_t end_layer = 0;
  bool embedding = true;
  bool head = true;

  static StageRange full(const ModelConfig& cfg) { return {0, cfg.n_layer, true, true}; }
  int64_t n_layers() const { return end_layer - first_layer; }
};

// Throws UserError (naming the model.* key) when the shape is inconsistent: non-positive
// sizes, d_model not divisible by n_head, n_head not divisible by n_kv_head, odd head_dim
// with RoPE.
void validate_model_config(const ModelConfig& cfg);

// "layers.<i>." — the name prefix of layer i.
std::string layer_prefix(int64_t layer);

// Ordered parameters of `range` (offsets unset; ParamStore assigns them).
std::vector<ParamInfo> transformer_params(const ModelConfig& cfg, const StageRange& range);

}  // namespace llmpi
