// Discrete-event replay of the engine's pipeline order (see pipeline_sim.h).
#include "bench/perfmodel/pipeline_sim.h"

#include <algorithm>

#include "core/error.h"
#include "parallel/pipeline_order.h"

namespace llmpi::perf {

PipeResult simulate_pipeline(int64_t pp, int64_t v, int64_t m, const PipeTimes& t) {
  LLMPI_CHECK(pp >= 1 && v >= 1 && m >= 1, "pipeline pp ", pp, " v ", v, " m ", m);
  LLMPI_CHECK(int64_t(t.fwd.size()) == pp && int64_t(t.bwd.size()) == pp, "times for ",
              t.fwd.size(), " ranks, pipeline of ", pp);
  const int64_t K = pp * v;
  // done_f[g][micro], done_b[g][micro]: end time of a pass (-1: not yet run).
  std::vector<std::vector<double>> done_f(size_t(K), std::vector<double>(size_t(m), -1.0));
  std::vector<std::vector<double>> done_b = done_f;
  std::vector<std::vector<PipelineStep>> order(static_cast<size_t>(pp));
  for (int64_t r = 0; r < pp; ++r) {
    order[size_t(r)] = pipeline_order(pp, r, m, v);
    LLMPI_CHECK(int64_t(t.fwd[size_t(r)].size()) == v && int64_t(t.bwd[size_t(r)].size()) == v,
                "rank ", r, ": times for ", t.fwd[size_t(r)].size(), " chunks, expected ", v);
  }
  PipeResult res;
  res.finish.assign(size_t(pp), 0.0);
  res.busy.assign(size_t(pp), 0.0);
  std::vector<size_t> next(size_t(pp), 0);
  size_t remaining = 0;
  for (const auto& o : order) remaining += o.size();
  while (remaining > 0) {
    bool progress = false;
    for (int64_t r = 0; r < pp; ++r) {
      auto& o = order[size_t(r)];
      while (next[size_t(r)] < o.size()) {
        const PipelineStep& s = o[next[size_t(r)]];
        const int64_t g = r + s.chunk * pp;
        double ready = 0.0;
        if (s.op == PipeOp::forward) {
          if (g > 0) {
            const double d = done_f[size_t(g - 1)][size_t(s.micro)];
            if (d < 0) break;
            ready = d + t.message_s;
          }
        } else {
          if (g + 1 < K) {
            const double d = done_b[size_t(g + 1)][size_t(s.micro)];
            if (d < 0) break;
            ready = d + t.message_s;
          }
        }
        const double dur = s.op == PipeOp::forward ? t.fwd[size_t(r)][size_t(s.chunk)]
                                                   : t.bwd[size_t(r)][size_t(s.chunk)];
        const double start = std::max(res.finish[size_t(r)], ready);
        const double end = start + dur;
        (s.op == PipeOp::forward ? done_f : done_b)[size_t(g)][size_t(s.micro)] = end;
        res.finish[size_t(r)] = end;
        res.busy[size_t(r)] += dur;
        ++next[size_t(r)];
        --remaining;
        progress = true;
      }
    }
    LLMPI_CHECK(progress, "pipeline order deadlocks (pp ", pp, ", v ", v, ", m ", m, ")");
  }
  res.makespan = *std::max_element(res.finish.begin(), res.finish.end());
  return res;
}

double bubble_fraction_1f1b(int64_t pp, int64_t m) { return double(pp - 1) / double(m); }

double bubble_fraction_interleaved(int64_t pp, int64_t v, int64_t m) {
  return double(pp - 1) / (double(v) * double(m));
}

}  // namespace llmpi::perf
