// Pipeline split: balanced blocks per chunk (min-max cost, see pipeline_split.h), the chunks
// of a pp rank, and the parameters of a chunk.
#include "parallel/pipeline_split.h"

#include <cmath>
#include <limits>
#include <set>
#include <string>

#include "config/layout_rules.h"
#include "core/error.h"

namespace llmpi {

namespace {

std::string join(std::span<const int64_t> v) {
  std::string s = "[";
  for (size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + std::to_string(v[i]);
  return s + "]";
}

}  // namespace

std::vector<int64_t> balanced_stage_layers(int64_t n_layer, int64_t n_chunks, SplitCost cost) {
  LLMPI_CHECK(n_layer >= 1 && n_chunks >= 1, "split of ", n_layer, " layers into ", n_chunks);
  LLMPI_CHECK(cost.embedding >= 0 && cost.head >= 0, "negative split cost");
  if (!chunks_have_layers(n_chunks, n_layer))
    user_error("pipeline split: ", n_chunks, " chunks (parallel.pp × parallel.virtual_stages) "
               "but model.n_layer = ", n_layer, ": every chunk needs at least one layer");
  const int64_t K = n_chunks, L = n_layer;
  auto extra = [&](int64_t k) {
    return (k == 0 ? cost.embedding : 0.0) + (k == K - 1 ? cost.head : 0.0);
  };
  constexpr double kEps = 1e-9;
  // Most blocks chunk k may take when no chunk may cost more than M.
  auto cap = [&](int64_t k, double M) {
    return static_cast<int64_t>(std::floor(M - extra(k) + kEps));
  };
  auto feasible = [&](double M) {
    int64_t total = 0;
    for (int64_t k = 0; k < K; ++k) {
      const int64_t c = cap(k, M);
      if (c < 1) return false;
      total += std::min(c, L);
    }
    return total >= L;
  };
  // The optimum is the cost of some chunk: n + extra(k) for some n and k.
  double M = std::numeric_limits<double>::infinity();
  for (int64_t k = 0; k < K; ++k)
    for (int64_t n = 1; n <= L; ++n) {
      const double c = static_cast<double>(n) + extra(k);
      if (c < M && feasible(c)) M = c;
    }
  LLMPI_CHECK(std::isfinite(M), "no feasible split");

  // Among the splits of max cost M: the least Σ cost² (the most even), then fewest blocks
  // early. g[k][r]: least Σ cost² of chunks k..K-1 holding r blocks (inf if impossible).
  const double inf = std::numeric_limits<double>::infinity();
  std::vector<std::vector<double>> g(static_cast<size_t>(K + 1),
                                     std::vector<double>(static_cast<size_t>(L + 1), inf));
  g[static_cast<size_t>(K)][0] = 0.0;
  for (int64_t k = K - 1; k >= 0; --k)
    for (int64_t r = 1; r <= L; ++r)
      for (int64_t n = 1; n <= std::min(r, cap(k, M)); ++n) {
        const double c = static_cast<double>(n) + extra(k);
        const double rest = g[static_cast<size_t>(k + 1)][static_cast<size_t>(r - n)];
        g[static_cast<size_t>(k)][static_cast<size_t>(r)] =
            std::min(g[static_cast<size_t>(k)][static_cast<size_t>(r)], c * c + rest);
      }
  std::vector<int64_t> layers;
  int64_t r = L;
  for (int64_t k = 0; k < K; ++k) {
    const double best = g[static_cast<size_t>(k)][static_cast<size_t>(r)];
    for (int64_t n = 1; n <= std::min(r, cap(k, M)); ++n) {
      const double c = static_cast<double>(n) + extra(k);
      if (std::abs(c * c + g[static_cast<size_t>(k + 1)][static_cast<size_t>(r - n)] - best) <
          1e-6) {
        layers.push_back(n);
        r -= n;
        break;
      }
    }
    LLMPI_CHECK(static_cast<int64_t>(layers.size()) == k + 1, "split reconstruction");
  }
  LLMPI_CHECK(r == 0, "split leaves ", r, " layers");
  return layers;
}

std::vector<StageRange> split_stages(const ModelConfig& cfg, std::span<const int64_t> layers) {
  int64_t sum = 0;
  for (int64_t n : layers) {
    if (n < 1)
      user_error("parallel.stage_layers = ", join(layers), ": every pipeline chunk needs at "
                 "least one layer (expected integers >= 1)");
    sum += n;
  }
  if (layers.empty() || !stage_layers_sum_fits(layers, cfg.n_layer))
    user_error("parallel.stage_layers = ", join(layers), " sums to ", sum,
               ": expected layer counts summing to model.n_layer = ", cfg.n_layer);
  std::vector<StageRange> ranges;
  int64_t first = 0;
  for (size_t k = 0; k < layers.size(); ++k) {
    const int64_t end = first + layers[k];
    ranges.push_back({first, end, k == 0, k + 1 == layers.size()});
    first = end;
  }
  return ranges;
}

std::vector<int64_t> stage_layers(const ModelConfig& cfg, const ParallelSection& par) {
  const int64_t chunks = par.pp * par.virtual_stages;
  if (par.stage_layers.empty()) return balanced_stage_layers(cfg.n_layer, chunks);
  if (!stage_layers_count_fits(par.stage_layers, chunks))
    user_error("parallel.stage_layers = ", join(par.stage_layers), " has ",
               par.stage_layers.size(), " entries: expected one per pipeline chunk, ",
               "parallel.pp × parallel.virtual_stages = ", par.pp, " × ", par.virtual_stages,
               " = ", chunks);
  split_stages(cfg, par.stage_layers);  // validates
  return par.stage_layers;
}

std::vector<StageRange> pipeline_chunks(const ModelConfig& cfg, const ParallelSection& par,
                                        int pp_rank) {
  LLMPI_CHECK(0 <= pp_rank && pp_rank < par.pp, "pp rank ", pp_rank, " of ", par.pp);
  const std::vector<int64_t> layers = stage_layers(cfg, par);
  const std::vector<StageRange> all = split_stages(cfg, layers);
  std::vector<StageRange> mine;
  for (int64_t j = 0; j < par.virtual_stages; ++j)
    mine.push_back(all[static_cast<size_t>(global_chunk(par.pp, pp_rank, j))]);
  return mine;
}

std::vector<ParamInfo> chunk_params(const ModelConfig& cfg, const StageRange& range) {
  std::vector<ParamInfo> ps = transformer_params(cfg, range);
  if (cfg.tied_embeddings && range.head && !range.embedding)
    for (ParamInfo& p : ps)
      if (p.name == "embed.tokens") p.replica = true;
  return ps;
}

std::vector<ParamInfo> rank_params(const ModelConfig& cfg, std::span<const StageRange> chunks) {
  std::vector<ParamInfo> all;
  std::set<std::string> names;
  for (const StageRange& r : chunks)
    for (ParamInfo& p : chunk_params(cfg, r)) {
      LLMPI_CHECK(names.insert(p.name).second, "parameter ", p.name, " in two chunks of a rank");
      all.push_back(std::move(p));
    }
  return all;
}

}  // namespace llmpi
