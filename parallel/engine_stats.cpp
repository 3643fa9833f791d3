// ParallelEngine's per-layer statistics for the logbook (see engine.h): per global parameter
// tensor the norm, the gradient norm (before clipping) and ‖ΔW‖/‖W‖ of the step's update, and
// the RMS of each block's output (parallel/activation_stats.h) — each computed on the state
// this rank holds (ZeroPath::owned) and summed over the world, every element counted once:
//   ZeroStore (ZeRO 0/1, 2 with pp): parameters and updates by dp rank 0 (replicated over dp
//     after the step); gradients by dp rank 0 (ZeRO 0, all-reduced) or over the rank's shard
//     range (ZeRO 1/2);
//   ZeroUnits (ZeRO 2/3): the rank's shard store, disjoint over dp.
//   tp replicas and the last stage's copy of a tied embedding are never counted.
// The update is W after the step minus a copy of W taken before it (only on armed steps).
#include <algorithm>
#include <cmath>
#include <map>

#include "model/param_layout.h"
#include "parallel/communicator.h"
#include "parallel/engine.h"
#include "parallel/zero_shard.h"

namespace llmpi {

void ParallelEngine::arm_layer_stats() {
  stats_armed_ = true;
  activations_->arm();
}

void ParallelEngine::snapshot_for_update() {
  if (!stats_armed_) return;
  const Tensor& w = path_->owned().store->master();
  before_update_ = be_.alloc(Shape{std::max<int64_t>(w.numel(), 1)}, cfg_.train.master_dtype);
  be_.copy(flat_view(before_update_, 0, w.numel()), w);
}

std::vector<std::string> ParallelEngine::global_param_names() const {
  std::vector<std::string> names;
  for (const ParamInfo& p : transformer_params(cfg_.model, StageRange::full(cfg_.model)))
    names.push_back(p.name);
  return names;
}

LayerStats ParallelEngine::layer_stats(bool applied) {
  LLMPI_CHECK(stats_armed_, "layer_stats() on a step that was not armed");
  const std::vector<std::string> names = global_param_names();
  std::map<std::string, size_t, std::less<>> index;
  for (size_t i = 0; i < names.size(); ++i) index.emplace(names[i], i);
  const size_t P = names.size();
  // Σw², Σg², Σ(Δw)² per tensor, then the counts of blocks' activations.
  std::vector<double> sums(3 * P, 0.0);
  const OwnedState o = path_->owned();
  const ParamStore& s = *o.store;
  const bool params_here = o.count_params, grads_here = o.count_grads;
  const int64_t lo = o.grad_begin, hi = o.grad_end;
  if (applied && stats_armed_) {  // before_update_ ← W_after − W_before
    be_.scale(before_update_, -1.0);
    const Tensor d = flat_view(before_update_, 0, s.numel());
    be_.add(d, d, s.master());
  }
  for (const ParamInfo& p : s.params()) {
    if (p.replica) continue;
    const size_t i = index.at(p.name);
    if (params_here) {
      const Tensor w[] = {flat_view(s.master(), p.offset, p.numel())};
      sums[i] += be_.sum_squares(w);
      if (applied) {
        const Tensor d[] = {flat_view(before_update_, p.offset, p.numel())};
        sums[2 * P + i] += be_.sum_squares(d);
      }
    }
    const int64_t b = std::max(lo, p.offset), e = std::min(hi, p.offset + p.numel());
    if (grads_here && b < e) {
      const Tensor g[] = {flat_view(s.grads(), b, e - b)};
      sums[P + i] += be_.sum_squares(g);
    }
  }
  const MPI_Comm world = topo_.world_communicator().get();
  check_mpi(MPI_Allreduce(MPI_IN_PLACE, sums.data(), int(sums.size()), MPI_DOUBLE, MPI_SUM, world),
            "MPI_Allreduce");
  LayerStats r;
  r.param_norm.resize(P);
  r.grad_norm.resize(P);
  r.update_ratio.resize(P);
  for (size_t i = 0; i < P; ++i) {
    r.param_norm[i] = std::sqrt(sums[i]);
    r.grad_norm[i] = std::sqrt(sums[P + i]);
    r.update_ratio[i] = sums[i] > 0 ? std::sqrt(sums[2 * P + i] / sums[i]) : 0.0;
  }
  r.activation_rms = activations_->reduce(world);
  activations_->disarm();
  before_update_ = Buffer{};
  stats_armed_ = false;
  return r;
}

}  // namespace llmpi
