#pragma once
// Embedding: x[n, :] = tokens[ids[n], :] (+ positions[pos[n], :] for gpt2's learned
// positions). ids, pos: i32 [N] (pos[b·T + t] = t); tokens: [V, C]; positions: [max_T, C];
// x: [N, C]. Backward scatters dx into dtokens (and dpositions), accumulating.
// Saves nothing: backward needs only the ids, which the caller keeps. Frozen tables (a
// frozen store: empty gradients) get no gradient: backward skips them.
// Under vocab parallelism the table is a row slab; row_offset is its first global row. The
// lookup then gives partial rows (zero for ids outside the slab) to be summed over ranks
// BEFORE the positions are added (so they are added once): hence the two halves below.
#include "backend/backend.h"
#include "model/model_config.h"
#include "model/param_store.h"

namespace llmpi {

struct Embedding {
  int64_t row_offset = 0;        // first vocab row of the local table slab
  Tensor tokens, dtokens;        // [V, C] (local vocab rows)
  Tensor positions, dpositions;  // [max_seq_len, C]; empty for llama

  static Embedding bind(const ModelConfig& cfg, const ParamStore& store);
  bool frozen() const { return dtokens.empty(); }

  // Both halves: x = lookup(ids) + positions(pos).
  void forward(Backend& be, const Tensor& x, const Tensor& ids, const Tensor& pos) const;
  void backward(Backend& be, const Tensor& dx, const Tensor& ids, const Tensor& pos) const;

  // x = tokens[ids] (0 for ids outside the local slab); x, ids: N rows.
  void lookup(Backend& be, const Tensor& x, const Tensor& ids) const;
  void lookup_backward(Backend& be, const Tensor& dx, const Tensor& ids) const;
  // x += positions[pos] (no-op without learned positions); x, pos: any number of rows.
  void add_positions(Backend& be, const Tensor& x, const Tensor& pos) const;
  void add_positions_backward(Backend& be, const Tensor& dx, const Tensor& pos) const;
};

}  // namespace llmpi
