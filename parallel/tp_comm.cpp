#include "parallel/tp_comm.h"

#include "config/layout_rules.h"
#include "core/error.h"

namespace llmpi {

namespace {

// full is [N, …] and local is [N/p, …] with the same trailing dims and dtype.
void check_sp_pair(const Collectives& tp, const Tensor& full, const Tensor& local,
                   const char* op) {
  LLMPI_CHECK(full.shape.ndim >= 1 && full.shape.ndim == local.shape.ndim, op, ": full ",
              full.shape.str(), " vs local ", local.shape.str());
  LLMPI_CHECK(full.dtype == local.dtype, op, ": dtypes differ");
  LLMPI_CHECK(full.dim(0) == local.dim(0) * tp.size(), op, ": full ", full.shape.str(),
              " is not ", tp.size(), " row chunks of ", local.shape.str());
  for (int d = 1; d < full.shape.ndim; ++d)
    LLMPI_CHECK(full.dim(d) == local.dim(d), op, ": full ", full.shape.str(), " vs local ",
                local.shape.str());
}

}  // namespace

int64_t sp_chunk_rows(int64_t n_rows, int tp_size) {
  LLMPI_CHECK(tp_size >= 1 && sp_splits_rows(true, tp_size, n_rows), n_rows,
              " token rows do not split evenly over ", tp_size, " tp ranks (the layout rules ",
              "were not checked)");
  return n_rows / tp_size;
}

Tensor sp_chunk(const Tensor& full, const Collectives& tp) {
  LLMPI_CHECK(full.shape.ndim >= 1, "sp_chunk of a scalar");
  const int64_t n = sp_chunk_rows(full.dim(0), tp.size());
  return full.rows(tp.rank() * n, n);
}

void copy_to_tp::backward(Collectives& tp, const Tensor& dx) { tp.all_reduce(dx, ReduceOp::sum); }

void reduce_from_tp::forward(Collectives& tp, const Tensor& y) { tp.all_reduce(y, ReduceOp::sum); }

void gather_from_sp::forward(Collectives& tp, const Tensor& full, const Tensor& local) {
  check_sp_pair(tp, full, local, "gather_from_sp::forward");
  tp.all_gather(full, local);
}

void gather_from_sp::backward(Collectives& tp, const Tensor& dlocal, const Tensor& dfull) {
  check_sp_pair(tp, dfull, dlocal, "gather_from_sp::backward");
  tp.reduce_scatter(dlocal, dfull);
}

void reduce_scatter_to_sp::forward(Collectives& tp, const Tensor& local, const Tensor& full) {
  check_sp_pair(tp, full, local, "reduce_scatter_to_sp::forward");
  tp.reduce_scatter(local, full);
}

void reduce_scatter_to_sp::backward(Collectives& tp, const Tensor& dfull, const Tensor& dlocal) {
  check_sp_pair(tp, dfull, dlocal, "reduce_scatter_to_sp::backward");
  tp.all_gather(dfull, dlocal);
}

void scatter_to_sp::backward(Collectives& tp, const Tensor& dfull, const Tensor& dlocal) {
  check_sp_pair(tp, dfull, dlocal, "scatter_to_sp::backward");
  tp.all_gather(dfull, dlocal);
}

}  // namespace llmpi
