// Token (+ learned position) embedding.
#include "model/embedding.h"

namespace llmpi {

Embedding Embedding::bind(const ModelConfig& cfg, const ParamStore& store) {
  Embedding e;
  e.row_offset = store.info("embed.tokens").local_start[0];
  e.tokens = store.weight("embed.tokens");
  e.dtokens = store.grad("embed.tokens");
  if (cfg.learned_positions()) {
    e.positions = store.weight("embed.positions");
    e.dpositions = store.grad("embed.positions");
  }
  return e;
}

void Embedding::forward(Backend& be, const Tensor& x, const Tensor& ids,
                        const Tensor& pos) const {
  lookup(be, x, ids);
  add_positions(be, x, pos);
}

void Embedding::backward(Backend& be, const Tensor& dx, const Tensor& ids,
                         const Tensor& pos) const {
  lookup_backward(be, dx, ids);
  add_positions_backward(be, dx, pos);
}

void Embedding::lookup(Backend& be, const Tensor& x, const Tensor& ids) const {
  be.embedding_forward(x, ids, tokens, row_offset, /*accumulate=*/false);
}

void Embedding::lookup_backward(Backend& be, const Tensor& dx, const Tensor& ids) const {
  if (!dtokens.empty()) be.embedding_backward(dtokens, dx, ids, row_offset);
}

void Embedding::add_positions(Backend& be, const Tensor& x, const Tensor& pos) const {
  if (!positions.empty()) be.embedding_forward(x, pos, positions, 0, /*accumulate=*/true);
}

void Embedding::add_positions_backward(Backend& be, const Tensor& dx, const Tensor& pos) const {
  if (!dpositions.empty()) be.embedding_backward(dpositions, dx, pos, 0);
}

}  // namespace llmpi
