// Layout enumeration and search (see layout_search.h).
#include "bench/perfmodel/layout_search.h"

#include <algorithm>

namespace llmpi::perf {

std::vector<int64_t> divisors(int64_t n) {
  std::vector<int64_t> d;
  for (int64_t i = 1; i <= n; ++i)
    if (n % i == 0) d.push_back(i);
  return d;
}

std::vector<Plan> enumerate_plans(const ModelConfig& m, int64_t gpus, int64_t per_node,
                                  int64_t global_sequences, int64_t seq_len, const SearchSpace& s) {
  std::vector<Plan> out;
  for (int64_t tp : s.tp) {
    if (tp > per_node || per_node % tp != 0 || gpus % tp != 0) continue;
    for (int64_t pp : divisors(gpus / tp)) {
      if (pp > s.max_pp || pp > m.n_layer) continue;
      const int64_t dp = gpus / (tp * pp);
      for (int zero : s.zero) {
        if (zero >= 1 && dp == 1) continue;  // nothing to shard
        if (zero >= 2 && pp > 1) continue;   // the engine refuses 3, runs 2 as 1
        for (int64_t B : s.batch) {
          if (global_sequences % (B * dp) != 0) continue;
          const int64_t M = global_sequences / (B * dp);
          for (int64_t v : s.virtual_stages) {
            if (v > 1 && (pp == 1 || M % pp != 0 || pp * v > m.n_layer)) continue;
            for (int sp = 0; sp <= (tp > 1 ? 1 : 0); ++sp)
              for (Recompute rc : s.recompute) {
                Plan p;
                p.tp = tp, p.pp = pp, p.dp = dp, p.zero = zero, p.batch = B, p.micro_batches = M;
                p.seq_len = seq_len, p.virtual_stages = v, p.sp = sp == 1, p.recompute = rc;
                out.push_back(p);
              }
          }
        }
      }
    }
  }
  return out;
}

SearchResult search_layouts(const ModelConfig& m, int64_t gpus, int64_t per_node,
                            int64_t global_sequences, int64_t seq_len, double memory_limit_bytes,
                            const SearchSpace& s, const OpProfile& prof, const CommCost& comm,
                            const ModelOptions& o, size_t keep) {
  SearchResult res;
  for (const Plan& p : enumerate_plans(m, gpus, per_node, global_sequences, seq_len, s)) {
    ++res.considered;
    if (!plan_problems(m, p).empty()) continue;
    ++res.valid;
    if (peak_rank_memory(m, p, o.device).total() > memory_limit_bytes) continue;
    ++res.fitting;
    Candidate c{p, predict_step(m, p, prof, comm, o)};
    res.best.push_back(c);
    std::sort(res.best.begin(), res.best.end(), [](const Candidate& a, const Candidate& b) {
      return a.pred.tokens_per_s > b.pred.tokens_per_s;
    });
    if (res.best.size() > keep) res.best.pop_back();
  }
  return res;
}

}  // namespace llmpi::perf
