// Evaluation (ParallelEngine::eval, see engine.h): the loss of one micro-batch without
// gradients, on any layout. The ZeRO path runs the forward passes only — through the
// pipeline schedule's forward-only order (activations over the pp group, one slot per
// chunk) or the unit chain (each unit gathered, run and freed) — and never touches
// gradients or optimizer state; with pp > 1 the last stage's loss is summed over the pp
// group so that every rank returns it. Every dp rank may evaluate the same batch.
#include "parallel/engine.h"

namespace llmpi {

LossSum ParallelEngine::eval(std::span<const int32_t> ids, std::span<const int32_t> targets,
                             std::span<const int32_t> doc_start) {
  const int64_t N = B_ * T_;
  LLMPI_CHECK(int64_t(ids.size()) == N && targets.size() == ids.size(), "eval: ", ids.size(),
              " ids for B·T = ", N);
  LLMPI_CHECK(doc_start.empty() || (doc_start.size() == ids.size() && topo_.layout().pp == 1),
              "eval: ", doc_start.size(), " document starts for ", ids.size(), " ids under pp = ",
              topo_.layout().pp);
  LossSum l = path_->forward_only({ids, targets, doc_start});
  if (topo_.layout().pp > 1) {
    l.sum = groups_->pp().all_reduce_value(l.sum);
    l.count = int64_t(groups_->pp().all_reduce_value(double(l.count)));
  }
  return l;
}

}  // namespace llmpi
