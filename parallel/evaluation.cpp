// Evaluation (ParallelEngine::eval, see engine.h): the loss of one micro-batch without
// gradients, on any layout. The ZeRO path runs the forward passes only — through the
// pipeline schedule's forward-only order (activations over the pp group, one slot per
// chunk) or the unit chain (each unit gathered, run and freed) — and never touches
// gradients or optimizer state; with pp > 1 the last stage's loss is summed over the pp
// group so that every rank returns it. Every dp rank may evaluate the same batch.
#include "parallel/engine.h"

#include <mpi.h>

#include "parallel/communicator.h"

namespace llmpi {

LossSum ParallelEngine::eval(std::span<const int32_t> ids, std::span<const int32_t> targets,
                             std::span<const int32_t> doc_start,
                             std::vector<double>* token_losses) {
  const int64_t N = B_ * T_;
  LLMPI_CHECK(int64_t(ids.size()) == N && targets.size() == ids.size(), "eval: ", ids.size(),
              " ids for B·T = ", N);
  LLMPI_CHECK(doc_start.empty() || doc_start.size() == ids.size(), "eval: ", doc_start.size(),
              " document starts for ", ids.size(), " ids");
  if (token_losses) token_losses->assign(size_t(N), 0.0);  // stages without the head: zeros
  LossSum l = path_->forward_only({ids, targets, doc_start, {}, token_losses});
  if (topo_.layout().pp > 1) {
    l.sum = groups_->pp().all_reduce_value(l.sum);
    l.count = int64_t(groups_->pp().all_reduce_value(double(l.count)));
    if (token_losses)  // host values: over the pp group's MPI communicator
      check_mpi(MPI_Allreduce(MPI_IN_PLACE, token_losses->data(), int(N), MPI_DOUBLE, MPI_SUM,
                              topo_.communicator(Axis::pp).get()),
                "MPI_Allreduce");
  }
  return l;
}

}  // namespace llmpi
