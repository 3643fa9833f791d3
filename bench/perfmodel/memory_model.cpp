// Per-rank memory of a Plan (see memory_model.h).
#include "bench/perfmodel/memory_model.h"

#include <algorithm>
#include <map>
#include <set>

#include "core/error.h"
#include "model/block.h"
#include "model/param_layout.h"
#include "parallel/pipeline_order.h"
#include "parallel/pipeline_split.h"
#include "parallel/tensor_parallel.h"
#include "parallel/zero_shard.h"

namespace llmpi::perf {
namespace {

constexpr double kMaster = 4.0;  // f32 master weights, gradients, moments
constexpr double kStat = 4.0;    // f32 statistics

double act_bytes(Device dev) { return dev == Device::cuda ? 2.0 : 4.0; }

// Local widths under tensor parallelism.
struct Local {
  double N, n, C, D, Hq, Hkv, qkv, F, pre, V, B, T;
};

Local local_dims(const ModelConfig& m, const Plan& p) {
  Local l;
  const double tp = double(p.tp);
  l.B = double(p.batch), l.T = double(p.seq_len);
  l.N = l.B * l.T;
  l.n = p.sp ? l.N / tp : l.N;
  l.C = double(m.d_model);
  l.D = double(m.head_dim());
  l.Hq = double(m.n_head) / tp;
  l.Hkv = m.kv_heads() % p.tp == 0 ? double(m.kv_heads()) / tp : 1.0;
  l.qkv = (l.Hq + 2 * l.Hkv) * l.D;
  l.F = double(m.d_ff) / tp;
  l.pre = m.arch == Arch::llama ? 2 * l.F : l.F;
  l.V = double((m.vocab_size + p.tp - 1) / p.tp);
  return l;
}

// Bytes of block buffer i (block_buffers order, model/block.h).
double block_buffer_bytes(const ModelConfig& m, const Local& l, double a, size_t i) {
  const bool ln = m.arch == Arch::gpt2;
  switch (i) {
    case 0: case 7: return ln ? l.n * kStat : 0.0;  // norm means (LayerNorm only)
    case 1: case 8: return l.n * kStat;             // norm rstd
    case 2: case 6: case 9: case 12: return l.n * l.C * a;  // h1, mid, h2, out
    case 3: return l.N * l.qkv * a;
    case 4: return l.N * l.Hq * l.D * a;
    case 5: return l.B * l.Hq * l.T * kStat;
    case 10: return l.N * l.pre * a;
    case 11: return l.N * l.F * a;
  }
  return 0.0;
}

std::vector<ParamInfo> local_params(const ModelConfig& m, const Plan& p, std::span<const StageRange> chunks) {
  std::vector<ParamInfo> ps = rank_params(m, chunks);
  if (p.tp > 1) ps = shard_params_tp(m, std::move(ps), int(p.tp), 0);
  return ps;
}

int64_t numel(const std::vector<ParamInfo>& ps) {
  int64_t n = 0;
  for (const ParamInfo& q : ps) n += q.numel();
  return n;
}

int64_t range_params(const ModelConfig& m, const Plan& p, const StageRange& r) {
  const std::vector<StageRange> one{r};
  return numel(local_params(m, p, one));
}

}  // namespace

double chunk_activation_bytes(const ModelConfig& m, const Plan& p, Device dev, int64_t layers,
                              bool embedding, bool head) {
  const Local l = local_dims(m, p);
  const double a = act_bytes(dev);
  double kept = 0;
  for (size_t i = 0; i < kBlockBuffers; ++i)
    if (block_keeps(p.recompute, i)) kept += block_buffer_bytes(m, l, a, i);
  double b = l.n * l.C * a + double(layers) * kept;  // input + blocks
  if (embedding && m.learned_positions()) b += l.n * 4.0;  // positions (i32)
  if (head) {
    b += (m.arch == Arch::gpt2 ? 2 : 1) * l.n * kStat;  // final norm statistics
    b += l.n * l.C * a;                                  // hf
    b += l.N * l.V * a;                                  // logits
    b += 2 * l.N * kStat;                                // lse, picked
  }
  if (p.sp) b += l.N * l.C * a;  // full-row forward scratch
  return b;
}

double chunk_shared_bytes(const ModelConfig& m, const Plan& p, Device dev) {
  if (p.recompute == Recompute::none) return 0.0;
  const Local l = local_dims(m, p);
  double b = 0;
  for (size_t i = 0; i < kBlockBuffers; ++i)
    if (!block_keeps(p.recompute, i)) b += block_buffer_bytes(m, l, act_bytes(dev), i);
  return b;
}

double chunk_workspace_bytes(const ModelConfig& m, const Plan& p, Device dev, int64_t layers,
                             bool head) {
  const Local l = local_dims(m, p);
  const double a = act_bytes(dev);
  double b = l.n * l.C * a;  // dres
  if (layers > 0)
    b += 2 * l.n * l.C * a + l.N * (l.qkv + l.Hq * l.D + l.pre + l.F) * a;  // BlockScratch
  if (head) b += l.n * l.C * a + l.N * kStat;  // dhf, row_scale
  if (p.sp) b += 2 * l.N * l.C * a;             // x_full, d_full
  return b;
}

int64_t chunk_params_local(const ModelConfig& m, const Plan& p, std::span<const StageRange> chunks) {
  // All layers have the same parameters: count one, the embedding and the head once each.
  const int64_t L = m.n_layer;
  const int64_t layer = range_params(m, p, StageRange{0, 1, false, false});
  const int64_t embed = range_params(m, p, StageRange{0, 0, true, false});
  const int64_t head = range_params(m, p, StageRange{L, L, false, true});
  // A chunk with both ends holds a tied matrix once (the head-only chunk keeps a copy).
  const int64_t both = range_params(m, p, StageRange{L, L, true, true});
  int64_t n = 0;
  for (const StageRange& c : chunks) {
    n += c.n_layers() * layer;
    if (c.embedding && c.head) n += both;
    else n += (c.embedding ? embed : 0) + (c.head ? head : 0);
  }
  return n;
}

UnitSizes unit_sizes(const ModelConfig& m, const Plan& p) {
  const int64_t L = m.n_layer;
  UnitSizes us;
  us.unit.assign(size_t(L), 0);
  us.group.assign(size_t(L), 0);
  us.reads.resize(size_t(L));
  std::map<std::string, int64_t> owner;
  for (int64_t k = 0; k < L; ++k) {
    const std::vector<StageRange> one{StageRange{k, k + 1, k == 0, k == L - 1}};
    std::set<int64_t> reads;
    for (const ParamInfo& q : local_params(m, p, one)) {
      us.unit[size_t(k)] += q.numel();
      auto [it, fresh] = owner.try_emplace(q.name, k);
      if (fresh) us.group[size_t(k)] += q.numel();
      reads.insert(it->second);
    }
    us.reads[size_t(k)].assign(reads.begin(), reads.end());
  }
  return us;
}

RankMemory rank_memory(const ModelConfig& m, const Plan& p, Device dev, int64_t pp_rank) {
  RankMemory r;
  const Config cfg = plan_config(m, p);
  const int64_t dp_rank = p.dp - 1;  // the last shard holds the tail: the largest
  if (!p.units_path()) {
    const std::vector<StageRange> chunks =
        p.pp > 1 ? pipeline_chunks(m, cfg.parallel, int(pp_rank)) : std::vector<StageRange>{StageRange::full(m)};
    const int64_t P = chunk_params_local(m, p, chunks);
    r.rank_params = P;
    const bool sharded = p.zero >= 1 && p.dp > 1;
    const ShardRange shard = ShardRange::of(P, sharded ? p.dp : 1, sharded ? dp_rank : 0);
    r.params = kMaster * double(P);
    r.grads = kMaster * double(P);
    r.optimizer = 2 * kMaster * double(shard.size());
    if (dev == Device::cuda) r.compute_copy = 2.0 * double(P);
    // Activations: per local chunk, the slots its micro-batches occupy at once.
    const int64_t v = int64_t(chunks.size());
    std::vector<int64_t> alive(size_t(v), 0), peak(size_t(v), 0);
    if (p.pp == 1) {
      peak[0] = 1;  // one slot, reused by every micro-batch
    } else {
      for (const PipelineStep& s : pipeline_order(p.pp, pp_rank, p.micro_batches, p.virtual_stages)) {
        int64_t& a = alive[size_t(s.chunk)];
        a += s.op == PipeOp::forward ? 1 : -1;
        peak[size_t(s.chunk)] = std::max(peak[size_t(s.chunk)], a);
      }
      for (int64_t j = 0; j < v; ++j)
        if (global_chunk(p.pp, pp_rank, j) > 0)
          peak[size_t(j)] = std::min(peak[size_t(j)] + 1, p.micro_batches);  // receive posted ahead
    }
    for (int64_t j = 0; j < v; ++j) {
      const StageRange& c = chunks[size_t(j)];
      r.activations += double(peak[size_t(j)]) *
                       chunk_activation_bytes(m, p, dev, c.n_layers(), c.embedding, c.head);
      if (c.n_layers() > 0) r.activations += chunk_shared_bytes(m, p, dev);
      r.workspace += chunk_workspace_bytes(m, p, dev, c.n_layers(), c.head);
    }
    return r;
  }
  // ZeRO 2/3 units path (pp = 1).
  const int64_t L = m.n_layer;
  const UnitSizes us = unit_sizes(m, p);
  const std::vector<int64_t>& unit = us.unit;
  const std::vector<int64_t>& group = us.group;
  int64_t full = 0, shard = 0;
  for (int64_t k = 0; k < L; ++k) {
    full += group[size_t(k)];
    shard += ShardRange::of(group[size_t(k)], p.dp, dp_rank).size();
  }
  r.rank_params = full;
  r.params = kMaster * double(p.zero == 2 ? full : shard);
  r.grads = kMaster * double(shard);
  r.optimizer = 2 * kMaster * double(shard);
  // Transient peak: the live unit's store (params + grads, + bf16 copy on CUDA), the groups it
  // gathers (ZeRO 3), and the gradient accumulation of the groups it reads with their
  // reduce-scatter part; a tied embedding's accumulation lives through the whole backward.
  // ZeRO 3 prefetches one unit ahead: while unit k runs, the next gather of the schedule
  // (forward k+1, or L-2 after the last unit; backward k-1, and for unit 0 with more
  // micro-batches to come, unit 1 of the next forward) is in flight beside it.
  const double tied_accum = (m.tied_embeddings && L > 1) ? kMaster * double(group[0]) : 0.0;
  auto read_of = [&](int64_t k) {
    double read = 0;
    if (k >= 0 && k < L)
      for (int64_t g : us.reads[size_t(k)]) read += double(group[size_t(g)]);
    return kMaster * read;
  };
  for (int64_t k = 0; k < L; ++k) {
    double store = 2 * kMaster * double(unit[size_t(k)]);
    if (dev == Device::cuda) store += 2.0 * double(unit[size_t(k)]);
    const bool z3 = p.zero == 3;
    const double gather = z3 ? read_of(k) : 0.0;
    const double ahead_fwd = z3 ? read_of(k + 1 < L ? k + 1 : L - 2) : 0.0;
    const double ahead_bwd = z3 ? read_of(k > 0 ? k - 1 : (p.micro_batches > 1 ? 1 : -1)) : 0.0;
    const double scatter = read_of(k) * (1.0 + 1.0 / double(p.dp)) + (k > 0 ? tied_accum : 0.0);
    r.transient = std::max(r.transient, store + std::max({gather, ahead_fwd, ahead_bwd + scatter}));
  }
  // Activations: every unit keeps its one micro-batch; one workspace; shared recompute buffers.
  for (int64_t k = 0; k < L; ++k)
    r.activations += chunk_activation_bytes(m, p, dev, 1, k == 0, k == L - 1);
  r.activations += chunk_shared_bytes(m, p, dev);
  r.workspace = chunk_workspace_bytes(m, p, dev, 1, true);
  return r;
}

RankMemory peak_rank_memory(const ModelConfig& m, const Plan& p, Device dev) {
  RankMemory best;
  for (int64_t r = 0; r < p.pp; ++r) {
    const RankMemory x = rank_memory(m, p, dev, r);
    if (r == 0 || x.total() > best.total()) best = x;
  }
  return best;
}

}  // namespace llmpi::perf
