// The step-time model (see step_model.h).
#include "bench/perfmodel/step_model.h"

#include <algorithm>
#include <cstdio>

#include "bench/perfmodel/pipeline_sim.h"
#include "core/error.h"
#include "model/param_layout.h"
#include "parallel/pipeline_split.h"
#include "parallel/tensor_parallel.h"
#include "parallel/zero_shard.h"

namespace llmpi::perf {
namespace {

constexpr int64_t kBucketElems = int64_t{1} << 18;  // parallel.grad_bucket_elems' default
constexpr double kMaster = 4.0;

bool starts_with(const std::string& s, const char* p) { return s.rfind(p, 0) == 0; }

// Profile time (s) of the params-class rows named `op`, per profiled parameter.
double per_param_s(const OpProfile& prof, const char* op) {
  double ms = 0;
  for (const ProfileRow& r : prof.rows)
    if (r.cls == OpClass::params && r.op == op) ms += r.ms;
  return prof.params > 0 ? ms * 1e-3 / double(prof.params) : 0.0;
}

// The elements the tp group all-reduces in sync_grads: row-region parameters under sequence
// parallelism, shared kv slabs (at their global size) when n_kv_head < tp.
double tp_sync_elems(const ModelConfig& m, const Plan& p, std::span<const StageRange> chunks) {
  if (p.tp == 1) return 0;
  double n = 0;
  for (const ParamInfo& q : rank_params(m, chunks)) {
    const TpSplit s = tp_split_of(q.name);
    if (s == TpSplit::row_region && p.sp) n += double(q.global_shape.numel());
    if (s == TpSplit::kv_rows && m.kv_heads() < p.tp) n += double(q.global_shape.numel());
  }
  return n;
}

struct Comm {
  const CommCost& c;
  GroupSpan tp, dp, pp;
  double operator()(Coll k, double bytes, const GroupSpan& g) const { return c.seconds(k, bytes, g); }
};

}  // namespace

std::string StepPrediction::str() const {
  char b[480];
  std::snprintf(b, sizeof b,
                "%.2f ms = pipeline %.2f (compute %.2f, tp comm %.2f, bubble+messages %.2f) + dp/zero "
                "comm %.2f + zero copies %.2f + optimizer %.2f + other comm %.2f + host overhead %.2f"
                " (time share %.2f)",
                total_s * 1e3, pipeline_s * 1e3, compute_s * 1e3, tp_comm_s * 1e3, bubble_s * 1e3,
                dp_comm_s * 1e3, zero_copy_s * 1e3, optimizer_s * 1e3, other_comm_s * 1e3,
                overhead_s * 1e3, time_share);
  return b;
}

PassTimes pass_times(const ModelConfig& m, const Plan& p, const OpProfile& prof) {
  const WorkShape from = prof.shape();
  const WorkShape to{m, p.batch, p.seq_len, p.tp, p.sp};
  const double Lp = double(prof.model.n_layer);
  PassTimes t;
  double mlp_down_fwd = 0, adds_fwd = 0, norms_fwd = 0, act_fwd = 0;
  for (const ProfileRow& r : prof.rows) {
    if (r.cls == OpClass::params) continue;
    const double w0 = work(r.cls, r.role, from);
    const double s = r.ms * 1e-3 * (w0 > 0 ? work(r.cls, r.role, to) / w0 : 1.0);
    switch (r.phase) {
      case Phase::block_fwd:
        t.block_fwd += s / Lp;
        if (r.role == Role::mlp_down) mlp_down_fwd += s / Lp;
        if (r.op == "add") adds_fwd += s / Lp;
        if (starts_with(r.op, "norm")) norms_fwd += s / Lp;
        if (r.role == Role::act) act_fwd += s / Lp;
        break;
      case Phase::block_bwd: t.block_bwd += s / Lp; break;
      case Phase::embed_fwd:
      case Phase::step: t.embed_fwd += s; break;  // step rows here: the micro-batch's input copies
      case Phase::embed_bwd: t.embed_bwd += s; break;
      case Phase::head_fwd: t.head_fwd += s; break;
      case Phase::head_bwd: t.head_bwd += s; break;
    }
  }
  if (p.recompute == Recompute::full) t.recompute = t.block_fwd - mlp_down_fwd - 0.5 * adds_fwd;
  if (p.recompute == Recompute::selective) t.recompute = norms_fwd + act_fwd;
  return t;
}

StepPrediction predict_step(const ModelConfig& m, const Plan& p, const OpProfile& prof,
                            const CommCost& cost, const ModelOptions& o) {
  const std::string problems = plan_problems(m, p);
  if (!problems.empty()) user_error("plan ", p.str(), " is not a valid layout:\n", problems);
  StepPrediction out;
  out.memory = peak_rank_memory(m, p, o.device);
  const PassTimes pt = pass_times(m, p, prof);
  const Comm cc{cost, {int(p.tp), 1}, {int(p.dp), int(p.tp)}, {int(p.pp), int(p.tp * p.dp)}};
  const double a = o.device == Device::cuda ? 2.0 : 4.0;
  const double N = double(p.batch * p.seq_len), C = double(m.d_model);
  const double S = N * C * a, rows_local = p.sp ? N / double(p.tp) : N;
  const double copy_bps = prof.copy_gbs * 1e9, fresh_bps = prof.fresh_gbs * 1e9;
  LLMPI_CHECK(copy_bps > 0 && fresh_bps > 0, "profile without copy bandwidths");
  auto AR = [&](double b, const GroupSpan& g) { return cc(Coll::all_reduce, b, g); };
  auto AG = [&](double b, const GroupSpan& g) { return cc(Coll::all_gather, b, g); };
  auto RS = [&](double b, const GroupSpan& g) { return cc(Coll::reduce_scatter, b, g); };

  // Tensor-parallel collectives of one micro-batch (model/block.cpp, model/transformer.cpp).
  const GroupSpan& tp = cc.tp;
  const double tp_fwd = p.sp ? 2 * AG(S, tp) + 2 * RS(S, tp) : 2 * AR(S, tp);
  const double tp_bwd = p.sp ? 4 * AG(S, tp) + 2 * RS(S, tp) : 2 * AR(S, tp);
  const double tp_rc = p.recompute != Recompute::full ? 0.0 : p.sp ? 2 * AG(S, tp) + RS(S, tp) : AR(S, tp);
  const double tp_emb_fwd = p.sp ? RS(S, tp) : AR(S, tp);
  const double tp_emb_bwd = p.sp ? AG(S, tp) : 0.0;
  const double tp_head_fwd = (p.sp ? AG(S, tp) : 0.0) + AG(double(p.tp) * N * 4, tp) + AR(N * 4, tp);
  const double tp_head_bwd = p.sp ? AG(S, tp) + RS(S, tp) : AR(S, tp);

  // Scalars of every step (engine step(), grad_sum_squares()).
  const double scalars = 2 * AR(8, cc.dp) + AR(8, cc.pp) + (p.zero >= 1 ? AR(8, cc.dp) : 0.0) +
                         AR(8, cc.tp) + AR(8, cc.pp);
  const double adam_pp = per_param_s(prof, "adamw_update"), sumsq_pp = per_param_s(prof, "sum_squares"),
               fill_pp = per_param_s(prof, "fill");

  if (p.units_path()) {
    const UnitSizes us = unit_sizes(m, p);
    const int64_t L = m.n_layer;
    double compute = 0, tpc = 0, gathers = 0, scatters = 0, copies = 0, sync = 0;
    double kept_copy = 0, kept_gather = 0;  // unit 0's forward store and gather, once per micro-batch
    for (int64_t k = 0; k < L; ++k) {
      compute += pt.block_fwd + pt.block_bwd + pt.recompute;
      tpc += tp_fwd + tp_bwd + tp_rc;
      if (k == 0) compute += pt.embed_fwd + pt.embed_bwd, tpc += tp_emb_fwd + tp_emb_bwd;
      if (k == L - 1) compute += pt.head_fwd + pt.head_bwd, tpc += tp_head_fwd + tp_head_bwd;
      const double u = double(us.unit[size_t(k)]);
      double read = 0;
      for (int64_t g : us.reads[size_t(k)]) read += double(us.group[size_t(g)]);
      const int times = k + 1 == L ? 1 : 2;  // gathered for forward and again for backward
      // The unit's zero-filled store (params + grads), its params copied in, and on CUDA
      // the bf16 copy converted (6 of a copy's 8 bytes per element).
      double store = 2 * kMaster * u / fresh_bps + kMaster * u / copy_bps;
      if (o.device == Device::cuda) store += 0.75 * kMaster * u / copy_bps;
      double gather = 0;
      if (p.zero == 3) gather = AG(kMaster * read, cc.dp) + kMaster * read / fresh_bps;
      if (o.overlap && p.zero == 3) gather = std::max(0.0, gather - (pt.block_fwd + tp_fwd));
      copies += times * store;
      gathers += times * gather;
      if (k == 0) {  // kept gathered between micro-batches: only its gradients are zeroed
        kept_copy = store - kMaster * u / fresh_bps;
        kept_gather = gather;
      }
      // Scatter: the unit's gradients added into the (zero-filled) accumulation of their
      // groups (an add moves 1.5 copies' bytes), one reduce-scatter per owned group, the
      // shard added into the persistent gradient shard.
      const double g = double(us.group[size_t(k)]);
      copies += 1.5 * kMaster * u / copy_bps + kMaster * g / fresh_bps +
                (kMaster * g / double(p.dp)) * (1.0 / fresh_bps + 1.5 / copy_bps);
      scatters += RS(kMaster * g, cc.dp);
      const std::vector<StageRange> one{StageRange{k, k + 1, k == 0, k == L - 1}};
      sync += AR(kMaster * tp_sync_elems(m, p, one), cc.tp);
    }
    const int64_t M = p.micro_batches;
    out.compute_s = double(M) * compute;
    out.tp_comm_s = double(M) * tpc;
    out.pipeline_s = out.compute_s + out.tp_comm_s;
    // Micro-batches after the first reuse unit 0 from the one before (engine: ZeroUnits::Carry).
    out.zero_copy_s = double(M) * copies - double(M - 1) * kept_copy;
    out.dp_comm_s = double(M) * (gathers + scatters) - double(M - 1) * kept_gather;
    int64_t shard = 0;
    for (int64_t gsz : us.group) shard += ShardRange::of(gsz, p.dp, p.dp - 1).size();
    if (p.zero == 2)
      for (int64_t gsz : us.group) out.dp_comm_s += AG(kMaster * double(gsz), cc.dp);
    out.optimizer_s = double(shard) * (adam_pp + sumsq_pp + fill_pp);
    out.other_comm_s = scalars + double(M) * sync;  // sync_grads after each unit's backward
  } else {
    const Config cfg = plan_config(m, p);
    const int64_t v = p.virtual_stages;
    PipeTimes pt_s;
    pt_s.fwd.assign(size_t(p.pp), std::vector<double>(size_t(v), 0.0));
    pt_s.bwd = pt_s.fwd;
    std::vector<double> comp(size_t(p.pp), 0.0), tpc(size_t(p.pp), 0.0), last_bwd(size_t(p.pp), 0.0),
        first_fwd(size_t(p.pp), 0.0), post(size_t(p.pp), 0.0), opt(size_t(p.pp), 0.0),
        gather(size_t(p.pp), 0.0), dpc(size_t(p.pp), 0.0), other(size_t(p.pp), 0.0);
    const GroupSpan embed_group{2, int(p.tp * p.dp * (p.pp - 1))};
    for (int64_t r = 0; r < p.pp; ++r) {
      const std::vector<StageRange> chunks =
          p.pp > 1 ? pipeline_chunks(m, cfg.parallel, int(r)) : std::vector<StageRange>{StageRange::full(m)};
      for (int64_t j = 0; j < v; ++j) {
        const StageRange& c = chunks[size_t(j)];
        const double Lc = double(c.n_layers());
        double cf = Lc * pt.block_fwd, cb = Lc * (pt.block_bwd + pt.recompute);
        double tf = Lc * tp_fwd, tb = Lc * (tp_bwd + tp_rc);
        if (c.embedding) cf += pt.embed_fwd, cb += pt.embed_bwd, tf += tp_emb_fwd, tb += tp_emb_bwd;
        if (c.head) cf += pt.head_fwd, cb += pt.head_bwd, tf += tp_head_fwd, tb += tp_head_bwd;
        pt_s.fwd[size_t(r)][size_t(j)] = cf + tf;
        pt_s.bwd[size_t(r)][size_t(j)] = cb + tb;
        comp[size_t(r)] += double(p.micro_batches) * (cf + cb);
        tpc[size_t(r)] += double(p.micro_batches) * (tf + tb);
        last_bwd[size_t(r)] += cb + tb;
        first_fwd[size_t(r)] += cf + tf;
      }
      // After the passes: tp gradient sync, tied embedding, dp reduction; then the update.
      const RankMemory mem = rank_memory(m, p, o.device, r);
      const double P = double(mem.rank_params);
      other[size_t(r)] = AR(kMaster * tp_sync_elems(m, p, chunks), cc.tp);
      const bool ends = chunks.front().embedding || chunks.back().head;
      if (p.pp > 1 && m.tied_embeddings && ends)
        other[size_t(r)] += AR(kMaster * double((m.vocab_size + p.tp - 1) / p.tp) * C, embed_group);
      const bool sharded = p.zero >= 1 && p.dp > 1;
      const double shard = double(ShardRange::of(mem.rank_params, sharded ? p.dp : 1, sharded ? p.dp - 1 : 0).size());
      double dp = 0, last_piece = 0;
      if (p.dp > 1 && p.zero == 0) {
        for (double at = 0; at < P; at += double(kBucketElems)) {
          last_piece = AR(kMaster * std::min(double(kBucketElems), P - at), cc.dp);
          dp += last_piece;
        }
      } else if (sharded) {
        dp = RS(kMaster * P, cc.dp) + kMaster * shard * (1.0 / fresh_bps + 1.0 / copy_bps);
        last_piece = RS(kMaster * std::min(double(kBucketElems) * double(p.dp), P), cc.dp);
        gather[size_t(r)] = AG(kMaster * P, cc.dp);
        if (o.device == Device::cuda) gather[size_t(r)] += 0.75 * kMaster * P / copy_bps;  // refresh_compute
        if (o.overlap) gather[size_t(r)] = std::max(0.0, gather[size_t(r)] - first_fwd[size_t(r)]);
      }
      if (o.overlap && dp > 0) dp = std::max(last_piece, dp - last_bwd[size_t(r)]);
      dpc[size_t(r)] = dp;
      post[size_t(r)] = other[size_t(r)] + dp;
      opt[size_t(r)] = shard * adam_pp + (sharded ? shard : P) * sumsq_pp + P * fill_pp;
    }
    if (p.pp > 1) {
      const double bytes = rows_local * C * a;
      pt_s.message_s = cc(Coll::p2p, bytes, GroupSpan{2, int(p.tp * p.dp)});
      if (o.staging_bytes_per_s > 0) pt_s.message_s += 2 * bytes / o.staging_bytes_per_s;
    }
    PipeResult pr;
    if (p.pp == 1) {
      pr.finish = {double(p.micro_batches) * (pt_s.fwd[0][0] + pt_s.bwd[0][0])};
      pr.busy = pr.finish;
      pr.makespan = pr.finish[0];
    } else {
      pr = simulate_pipeline(p.pp, v, p.micro_batches, pt_s);
    }
    size_t crit = 0;
    double until_update = 0;
    for (size_t r = 0; r < size_t(p.pp); ++r)
      if (pr.finish[r] + post[r] > until_update) until_update = pr.finish[r] + post[r], crit = r;
    double update = 0;
    for (size_t r = 0; r < size_t(p.pp); ++r) update = std::max(update, opt[r] + gather[r]);
    out.pipeline_s = pr.finish[crit];
    out.compute_s = comp[crit];
    out.tp_comm_s = tpc[crit];
    out.bubble_s = pr.finish[crit] - pr.busy[crit];
    out.dp_comm_s = dpc[crit] + gather[crit];
    out.optimizer_s = opt[crit];
    out.other_comm_s = other[crit] + scalars;
    out.total_s = until_update + scalars + update;
  }
  out.overhead_s = double(p.micro_batches) * std::max(0.0, prof.step_ms - prof.total_ms()) * 1e-3;
  if (p.units_path())
    out.total_s = out.pipeline_s + out.zero_copy_s + out.dp_comm_s + out.optimizer_s + out.other_comm_s;
  out.total_s += out.overhead_s;
  if (o.device == Device::host && o.host_cores > 0 && p.world() > o.host_cores) {
    const double f = double(p.world()) / double(o.host_cores);
    out.time_share = f;
    for (double* x : {&out.total_s, &out.pipeline_s, &out.compute_s, &out.tp_comm_s, &out.bubble_s,
                      &out.dp_comm_s, &out.zero_copy_s, &out.optimizer_s, &out.other_comm_s, &out.overhead_s})
      *x *= f;
  }
  out.tokens_per_s = double(p.global_sequences() * p.seq_len) / out.total_s;
  if (o.peak_flops > 0)
    out.mfu = out.tokens_per_s * model_flops_per_token(m, p.seq_len) / (double(p.world()) * o.peak_flops);
  return out;
}

}  // namespace llmpi::perf
