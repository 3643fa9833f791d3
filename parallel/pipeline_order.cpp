// Pipeline order: 1F1B and interleaved 1F1B as lists of passes (see pipeline_order.h).
#include "parallel/pipeline_order.h"

#include <algorithm>

#include "core/error.h"

namespace llmpi {

namespace {

// The micro-batch and local chunk of the k-th forward (or backward) pass of a rank.
PipelineStep nth_pass(PipeOp op, int64_t k, int64_t pp, int64_t v) {
  const int64_t group = k / pp;
  const int64_t in_order = group % v;
  PipelineStep s;
  s.op = op;
  s.micro = (group / v) * pp + k % pp;
  s.chunk = op == PipeOp::forward ? in_order : v - 1 - in_order;
  return s;
}

}  // namespace

int64_t pipeline_warmup(int64_t pp, int64_t pp_rank, int64_t micro_batches,
                        int64_t virtual_stages) {
  LLMPI_CHECK(pp >= 1 && 0 <= pp_rank && pp_rank < pp, "pp rank ", pp_rank, " of ", pp);
  LLMPI_CHECK(micro_batches >= 1 && virtual_stages >= 1, "micro_batches = ", micro_batches,
              ", virtual_stages = ", virtual_stages);
  const int64_t total = micro_batches * virtual_stages;
  const int64_t warmup = virtual_stages == 1
                             ? pp - pp_rank - 1
                             : (pp - pp_rank - 1) * 2 + (virtual_stages - 1) * pp;
  return std::min(warmup, total);
}

std::vector<PipelineStep> pipeline_order(int64_t pp, int64_t pp_rank, int64_t micro_batches,
                                         int64_t virtual_stages) {
  const int64_t v = virtual_stages, m = micro_batches;
  LLMPI_CHECK(v == 1 || m % pp == 0, "interleaved schedule: micro_batches = ", m,
              " is not a multiple of pp = ", pp);
  const int64_t total = m * v;
  const int64_t warmup = pipeline_warmup(pp, pp_rank, m, v);
  std::vector<PipelineStep> order;
  order.reserve(static_cast<size_t>(2 * total));
  int64_t f = 0, b = 0;  // next forward, next backward
  for (; f < warmup; ++f) order.push_back(nth_pass(PipeOp::forward, f, pp, v));
  for (; f < total; ++f, ++b) {
    order.push_back(nth_pass(PipeOp::forward, f, pp, v));
    order.push_back(nth_pass(PipeOp::backward, b, pp, v));
  }
  for (; b < total; ++b) order.push_back(nth_pass(PipeOp::backward, b, pp, v));
  return order;
}

int64_t max_in_flight(const std::vector<PipelineStep>& order) {
  int64_t live = 0, most = 0;
  for (const PipelineStep& s : order) {
    live += s.op == PipeOp::forward ? 1 : -1;
    most = std::max(most, live);
  }
  return most;
}

std::string order_str(const std::vector<PipelineStep>& order) {
  std::string s;
  for (const PipelineStep& p : order) {
    if (!s.empty()) s += ' ';
    s += (p.op == PipeOp::forward ? "F" : "B") + std::to_string(p.micro) + "." +
         std::to_string(p.chunk);
  }
  return s;
}

}  // namespace llmpi
