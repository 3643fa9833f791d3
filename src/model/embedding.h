#pragma once
// Embedding: x[n, :] = tokens[ids[n], :] (+ positions[pos[n], :] for gpt2's learned
// positions). ids, pos: i32 [N] (pos[b·T + t] = t); tokens: [V, C]; positions: [max_T, C];
// x: [N, C]. Backward scatters dx into dtokens (and dpositions), accumulating.
// Saves nothing: backward needs only the ids, which the caller keeps.
// Under vocab parallelism the table is a row slab; row_offset is its first global row.
#include "backend/backend.h"
#include "model/model_config.h"
#include "model/param_store.h"

namespace llmpi {

struct Embedding {
  int64_t row_offset = 0;        // first vocab row of the local table slab
  Tensor tokens, dtokens;        // [V, C]
  Tensor positions, dpositions;  // [max_seq_len, C]; empty for llama

  static Embedding bind(const ModelConfig& cfg, const ParamStore& store);

  void forward(Backend& be, const Tensor& x, const Tensor& ids, const Tensor& pos) const;
  void backward(Backend& be, const Tensor& dx, const Tensor& ids, const Tensor& pos) const;
};

}  // namespace llmpi
