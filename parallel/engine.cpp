// ParallelEngine (see engine.h): construction in the documented order, the two step paths
// (one ParamStore for ZeRO 0/1; just-in-time units for ZeRO 2/3), norms and the update.
#include "parallel/engine.h"

#include <mpi.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>

#include "backend/stopwatch.h"
#include "model/dtypes.h"
#include "model/param_layout.h"
#include "parallel/pipeline_split.h"
#include "optim/grad_clip.h"

namespace llmpi {
namespace {

constexpr int64_t kBucketElems = int64_t{1} << 20;  // ZeRO-0 all-reduce bucket (4 MiB f32)

Tensor host_i32(const int32_t* p, int64_t n) {
  return Tensor{const_cast<int32_t*>(p), Shape{n}, DType::i32, Device::host};
}

Tensor flat_view(const Tensor& t, int64_t offset, int64_t n) {
  return t.view(Shape{t.numel()}).slice(offset, Shape{n});
}

// The box of a parameter's tp-local slab, its elements at `data`.
TensorSlab box_slab(const ParamInfo& p, float* data, bool owner) {
  TensorSlab s;
  s.name = p.name;
  for (int d = 0; d < p.global_shape.ndim; ++d) {
    s.global_shape.push_back(p.global_shape[d]);
    s.local_shape.push_back(p.local_shape[d]);
    s.offset.push_back(p.local_start[d]);
  }
  s.data = data;
  s.owner = owner;
  return s;
}

// The flat elements [b, e) (row-major) of a parameter's tp-local box, stored at `data`.
TensorSlab range_slab(const ParamInfo& p, int64_t b, int64_t e, float* data, bool owner) {
  TensorSlab s = box_slab(p, data, owner);
  s.flat_offset = b;
  s.flat_count = e - b;
  return s;
}

}  // namespace

// One link of the ZeRO-2/3 chain: a stage range and its parameters in the order a
// Transformer over it expects; `source[i]` = (owned group, offset in that group's flat
// buffer) of params[i]. Activations persist (one micro-batch in flight at a time).
struct ParallelEngine::Unit {
  StageRange range;
  std::vector<ParamInfo> params;
  std::vector<std::pair<size_t, int64_t>> source;
  Activations acts;
};

// The parameters a unit owns (its own minus any already owned by an earlier unit, e.g. the
// head's copy of a tied embedding belongs to the embedding's unit), packed flat and split
// over dp by `shard`. ZeRO 2 keeps `full` (the whole group); `accum` is the transient full
// gradient of the group during backward, reduce-scattered when its last consumer is done.
struct ParallelEngine::Owned {
  std::vector<ParamInfo> params;  // offsets: within the group's flat buffer
  int64_t n = 0;
  ShardRange shard;
  int64_t shard_offset = 0;  // where this group's shard starts in the shard store
  Buffer full;               // ZeRO 2: full parameters of the group
  Buffer accum;              // transient gradient accumulation
  int consumers = 0, pending = 0;
};

// A gathered unit: its transient store and the model bound to it.
struct ParallelEngine::Live {
  std::unique_ptr<ParamStore> store;
  std::unique_ptr<Transformer> model;
  int64_t bytes = 0;
};

ParallelEngine::ParallelEngine(const Config& cfg, Topology& topo, Backend& be)
    : cfg_(cfg), topo_(topo), be_(be), zero_(cfg.parallel.zero_stage),
      master_(cfg.train.master_dtype) {
  const Layout& lay = topo.layout();
  LLMPI_CHECK(master_ == DType::f32 || (master_ == DType::f64 && be.device() == Device::host),
              "master dtype ", dtype_name(master_), " on ", be.device() == Device::host ? "host" : "cuda",
              ": f32, or f64 on the host backend");
  // 1. Pipeline split (in build_*: pipeline_chunks). 2. Tensor (+sequence) parallel: the
  // TensorParallel hooks, installed on every model before its activations are allocated.
  // The collectives of each group for this backend's tensors (NCCL on CUDA), built before
  // anything that communicates.
  groups_ = std::make_unique<GroupCollectives>(topo, be);
  if (lay.tp > 1) {
    check_tensor_parallel(cfg.model, lay.tp, cfg.parallel.sequence_parallel,
                          cfg.train.batch_size * cfg.train.seq_len);
    tp_ = std::make_unique<TensorParallel>(groups_->tp(), cfg.parallel.sequence_parallel);
  }
  LLMPI_CHECK(zero_ >= 0 && zero_ <= 3, "zero_stage ", zero_);
  B_ = cfg.train.batch_size;
  T_ = cfg.train.seq_len;
  M_ = cfg.parallel.micro_batches;
  global_params_ = 0;
  for (const ParamInfo& p : transformer_params(cfg.model, StageRange::full(cfg.model)))
    global_params_ += p.global_shape.numel();

  // 3. Recomputation (train.recompute → ModelConfig::recompute) lives in the model: each
  // Transformer rebuilds a block's dropped activations right before its backward, in buffers
  // shared by its blocks and micro-batches (the ZeRO-2/3 units share one set across units).
  // 4. ZeRO sharding, then memory.
  const bool rows_split = lay.tp > 1 && cfg.parallel.sequence_parallel;
  activations_ = std::make_unique<ActivationStats>(cfg.model.n_layer, rows_split || topo.tp_rank() == 0);
  if (!units_path())
    build_full();
  else
    build_units();
  ids_ = be_.alloc(Shape{B_ * T_}, DType::i32);
  targets_ = be_.alloc(Shape{B_ * T_}, DType::i32);
}

ParallelEngine::~ParallelEngine() = default;

// A range's parameters as this rank holds them: the tp slabs when tp > 1.
std::vector<ParamInfo> ParallelEngine::local_params(const StageRange& r) const {
  std::vector<ParamInfo> ps = chunk_params(cfg_.model, r);
  if (!tp_) return ps;
  return shard_params_tp(cfg_.model, std::move(ps), topo_.layout().tp, topo_.tp_rank());
}

void ParallelEngine::build_full() {
  const Layout& lay = topo_.layout();
  chunks_ = lay.pp > 1 ? pipeline_chunks(cfg_.model, cfg_.parallel, topo_.pp_rank())
                       : std::vector<StageRange>{StageRange::full(cfg_.model)};
  std::vector<ParamInfo> ps = rank_params(cfg_.model, chunks_);
  if (tp_) ps = shard_params_tp(cfg_.model, std::move(ps), lay.tp, topo_.tp_rank());
  store_ = std::make_unique<ParamStore>(be_, std::move(ps), master_);
  store_->init(be_, cfg_.train.seed);
  chunk_acts_.resize(chunks_.size());
  chunk_ws_.reserve(chunks_.size());  // pipe_ points into it
  for (size_t j = 0; j < chunks_.size(); ++j) {
    models_.push_back(std::make_unique<Transformer>(cfg_.model, chunks_[j], *store_));
    models_.back()->set_block_observer(activations_.get());
    if (tp_) tp_->install(*models_.back());
    if (lay.pp == 1) chunk_acts_[j].push_back(models_.back()->alloc_activations(be_, B_, T_));
    chunk_ws_.push_back(models_.back()->alloc_workspace(be_, B_, T_));
    pipe_.push_back({models_[j].get(), store_.get(), &chunk_acts_[j], &chunk_ws_[j]});
  }
  if (lay.pp > 1)
    schedule_ = std::make_unique<PipelineSchedule>(groups_->pp(), cfg_.parallel, topo_.pp_rank(), B_, T_);
  const bool sharded = zero_ >= 1 && lay.dp > 1;
  shard_ = ShardRange::of(store_->numel(), sharded ? lay.dp : 1, sharded ? topo_.dp_rank() : 0);
  opt_ = std::make_unique<AdamW>(be_, *store_, AdamWOptions::from(cfg_.train), shard_.begin(),
                                 shard_.end());
  const int64_t f = int64_t(dtype_size(master_));
  mem_.params = store_->numel() * f;
  mem_.grads = store_->numel() * f;  // ZeRO 2 with pp: the accumulation buffer is full
  mem_.optimizer = 2 * shard_.size() * f;
}

void ParallelEngine::build_units() {
  const int64_t L = cfg_.model.n_layer;
  LLMPI_CHECK(L >= 1, "a model without layers");
  const Layout& lay = topo_.layout();
  // Units: embedding + layer 0, layers 1 … L-2, layer L-1 + head (one unit when L == 1).
  for (int64_t l = 0; l < L; ++l) {
    Unit u;
    u.range = {l, l + 1, l == 0, l == L - 1};
    u.params = local_params(u.range);
    units_.push_back(std::move(u));
  }
  // Owned groups: unit k owns its parameters not owned by an earlier unit.
  std::map<std::string, std::pair<size_t, int64_t>, std::less<>> where;
  for (size_t k = 0; k < units_.size(); ++k) {
    Owned o;
    for (const ParamInfo& p : units_[k].params) {
      if (where.count(p.name)) continue;
      ParamInfo q = p;
      q.offset = o.n;
      where.emplace(p.name, std::make_pair(k, o.n));
      o.n += p.numel();
      o.params.push_back(std::move(q));
    }
    o.shard = ShardRange::of(o.n, lay.dp, topo_.dp_rank());
    owned_.push_back(std::move(o));
  }
  for (Unit& u : units_)
    for (const ParamInfo& p : u.params) {
      const auto [k, off] = where.at(p.name);
      u.source.emplace_back(k, off);
      ++owned_[k].consumers;
    }
  // The shard store: for each group, the pieces of its parameters inside this rank's shard.
  std::vector<ParamInfo> pieces;
  int64_t at = 0;
  for (Owned& o : owned_) {
    o.pending = o.consumers;
    o.shard_offset = at;
    for (const ParamInfo& p : o.params) {
      const int64_t b = std::max(p.offset, o.shard.begin());
      const int64_t e = std::min(p.offset + p.numel(), o.shard.end());
      if (b >= e) continue;
      ParamInfo piece = full_param(p.name, Shape{e - b}, InitKind::zeros, 0.0, p.weight_decay);
      piece.replica = p.replica;
      pieces.push_back(std::move(piece));
    }
    at += o.shard.size();
  }
  shard_store_ = std::make_unique<ParamStore>(be_, std::move(pieces), master_);
  LLMPI_CHECK(shard_store_->numel() == at, "shard store ", shard_store_->numel(), " != ", at);

  // Init: each group's values come from its unit's layout-independent init.
  const int64_t f = int64_t(dtype_size(master_));
  for (size_t k = 0; k < owned_.size(); ++k) {
    Owned& o = owned_[k];
    ParamStore unit_store(be_, units_[k].params, master_);
    unit_store.init(be_, cfg_.train.seed);
    Transformer m(cfg_.model, units_[k].range, unit_store);
    if (tp_) tp_->install(m);
    Buffer full = be_.alloc(Shape{std::max<int64_t>(o.n, 1)}, master_);
    for (const ParamInfo& p : o.params)
      be_.copy(flat_view(full, p.offset, p.numel()), unit_store.master(p.name).view(Shape{p.numel()}));
    be_.copy(flat_view(shard_store_->master(), o.shard_offset, o.shard.size()),
             flat_view(full, o.shard.begin(), o.shard.size()));
    if (zero_ == 2) o.full = std::move(full);
    // Activations are sized by the unit's shape only (the model was bound to allocate them).
    units_[k].acts = m.alloc_activations(be_, B_, T_, k > 0 ? units_[0].acts.shared : nullptr);
    if (k + 1 == units_.size()) ws_ = m.alloc_workspace(be_, B_, T_);  // has blocks and head
    be_.synchronize();
  }
  opt_ = std::make_unique<AdamW>(be_, *shard_store_, AdamWOptions::from(cfg_.train));
  const int64_t rows = tp_ ? tp_->local_rows(B_ * T_) : B_ * T_;  // sequence-parallel rows
  dgrad_ = be_.alloc(Shape{rows, cfg_.model.d_model}, compute_dtype(be_.device(), master_));
  int64_t full_params = 0;
  for (const Owned& o : owned_) full_params += o.n;
  mem_.params = (zero_ == 2 ? full_params : shard_store_->numel()) * f;
  mem_.grads = shard_store_->numel() * f;
  mem_.optimizer = 2 * shard_store_->numel() * f;
}

Buffer ParallelEngine::transient(Shape s) {
  Buffer b = be_.alloc(s, master_);
  transient_live_ += int64_t(b.tensor().bytes());
  mem_.transient = std::max(mem_.transient, transient_live_);
  return b;
}

void ParallelEngine::release(Buffer& b) {
  if (b.tensor().empty()) return;
  transient_live_ -= int64_t(b.tensor().bytes());
  b = Buffer{};
}

ParallelEngine::Live ParallelEngine::gather_unit(size_t u) {
  Unit& unit = units_[u];
  Live live;
  live.store = std::make_unique<ParamStore>(be_, unit.params, master_);
  live.bytes = 2 * live.store->numel() * int64_t(dtype_size(master_));
  transient_live_ += live.bytes;
  mem_.transient = std::max(mem_.transient, transient_live_);
  // The groups this unit reads, each gathered once (ZeRO 3) or read from `full` (ZeRO 2).
  std::map<size_t, Buffer> gathered;
  for (const auto& [k, off] : unit.source) {
    if (zero_ == 2 || gathered.count(k)) continue;
    Owned& o = owned_[k];
    Buffer full = transient(Shape{o.n});
    all_gather_shard(be_, groups_->dp(), o.shard, full,
                     flat_view(shard_store_->master(), o.shard_offset, o.shard.size()));
    gathered.emplace(k, std::move(full));
  }
  for (size_t i = 0; i < unit.params.size(); ++i) {
    const auto [k, off] = unit.source[i];
    const Tensor& src = zero_ == 2 ? owned_[k].full.tensor() : gathered.at(k).tensor();
    const ParamInfo& p = unit.params[i];
    be_.copy(live.store->master(p.name).view(Shape{p.numel()}), flat_view(src, off, p.numel()));
  }
  live.store->refresh_compute(be_);  // the weights forward/backward read (bf16 on CUDA)
  for (auto& [k, b] : gathered) release(b);
  live.model = std::make_unique<Transformer>(cfg_.model, unit.range, *live.store);
  live.model->set_block_observer(activations_.get());
  if (tp_) tp_->install(*live.model);
  return live;
}

void ParallelEngine::scatter_unit_grads(size_t u, const ParamStore& s) {
  Unit& unit = units_[u];
  for (size_t i = 0; i < unit.params.size(); ++i) {
    const auto [k, off] = unit.source[i];
    Owned& o = owned_[k];
    if (o.accum.tensor().empty()) {
      o.accum = transient(Shape{o.n});
      be_.fill(o.accum, 0.0);
    }
    const ParamInfo& p = unit.params[i];
    const Tensor dst = flat_view(o.accum, off, p.numel());
    be_.add(dst, dst, s.grad(p.name).view(Shape{p.numel()}));
    if (--o.pending > 0) continue;
    // Every consumer of group k is done: reduce-scatter into the persistent shard (+=).
    o.pending = o.consumers;
    Buffer part = transient(Shape{std::max<int64_t>(o.shard.size(), 1)});
    const Tensor mine = flat_view(part, 0, o.shard.size());
    reduce_scatter_shard(be_, groups_->dp(), o.shard, o.accum, mine);
    const Tensor g = flat_view(shard_store_->grads(), o.shard_offset, o.shard.size());
    be_.add(g, g, mine);
    release(part);
    release(o.accum);
  }
}

void ParallelEngine::load_micro(std::span<const int32_t> ids, std::span<const int32_t> targets,
                                int64_t m) {
  const int64_t N = B_ * T_;
  be_.copy(ids_, host_i32(ids.data() + m * N, N));
  be_.copy(targets_, host_i32(targets.data() + m * N, N));
}

double ParallelEngine::run_store(std::span<const int32_t> ids, std::span<const int32_t> targets,
                                 double scale, StepTimes& times) {
  double sum = 0.0;
  Stopwatch clock(be_);
  if (schedule_) {
    const int64_t N = B_ * T_;
    const LossSum l = schedule_->run(
        be_, pipe_,
        [&](int64_t m, const Tensor& i, const Tensor& t) {
          be_.copy(i, host_i32(ids.data() + m * N, N));
          be_.copy(t, host_i32(targets.data() + m * N, N));
        },
        scale);
    sum = l.sum;  // this rank's head chunk only; summed over pp by the caller
    times.forward_s += clock.lap();
    times.backward_s = std::nan("");  // interleaved with the forward passes
  } else {
    const Transformer& model = *models_[0];
    Activations& a = chunk_acts_[0][0];
    for (int64_t m = 0; m < M_; ++m) {
      load_micro(ids, targets, m);
      model.forward(be_, a, ids_);
      sum += model.loss(be_, a, targets_).sum;
      times.forward_s += clock.lap();
      model.backward_loss(be_, a, chunk_ws_[0], ids_, targets_, scale);
      times.backward_s += clock.lap();
    }
  }
  if (tp_) tp_->sync_grads(be_, *store_);
  if (topo_.layout().pp > 1 && cfg_.model.tied_embeddings && topo_.in_embedding_group())
    sync_tied_embedding(be_, groups_->embedding(), pipe_);
  times.backward_s += clock.lap();  // the gradient syncs belong to the backward pass
  return sum;
}

double ParallelEngine::micro_units(const Tensor& ids, const Tensor& targets, double scale,
                                   StepTimes& times) {
  const size_t U = units_.size();
  Stopwatch clock(be_);
  Live live;
  for (size_t u = 0; u < U; ++u) {
    live = gather_unit(u);
    if (u > 0) be_.copy(units_[u].acts.input, units_[u - 1].acts.output());
    live.model->forward(be_, units_[u].acts, ids);
    if (u + 1 < U) {  // the last unit stays gathered for its backward
      transient_live_ -= live.bytes;
      live = Live{};
    }
  }
  const double sum = live.model->loss(be_, units_[U - 1].acts, targets).sum;
  times.forward_s += clock.lap();  // ZeRO-3 gathers included
  for (size_t u = U; u-- > 0;) {
    Activations& a = units_[u].acts;
    if (u + 1 == U) {
      live.model->backward_loss(be_, a, ws_, ids, targets, scale);
    } else {
      live = gather_unit(u);
      live.model->backward(be_, a, ws_, ids, dgrad_);
    }
    if (u > 0) be_.copy(dgrad_, live.model->input_grad(ws_, a));
    if (tp_) tp_->sync_grads(be_, *live.store);
    scatter_unit_grads(u, *live.store);
    transient_live_ -= live.bytes;
    live = Live{};
  }
  times.backward_s += clock.lap();  // gathers and reduce-scatters of the units included
  return sum;
}

double ParallelEngine::grad_sum_squares() {
  // The gradients this rank owns: the whole store, or (reduce-scattered, ZeRO 2 with pp)
  // its shard range; the units path's shard store. Replicas are counted by their owner only.
  const bool units = units_path();
  const ParamStore& s = units ? *shard_store_ : *store_;
  // ZeRO 1/2 on the one-store path reduce-scatter: only the shard range is summed over dp.
  const bool ranged = !units && zero_ >= 1 && topo_.layout().dp > 1;
  const int64_t lo = ranged ? shard_.begin() : 0, hi = ranged ? shard_.end() : s.numel();
  std::vector<Tensor> gs;
  for (const ParamInfo& p : s.params()) {
    const int64_t b = std::max(lo, p.offset), e = std::min(hi, p.offset + p.numel());
    if (!p.replica && b < e) gs.push_back(flat_view(s.grads(), b, e - b));
  }
  double sq = local_sum_squares(be_, gs);
  // Sharded gradients (ZeRO 1–3) are disjoint over dp; all-reduced ones (ZeRO 0) identical.
  if (zero_ >= 1 && topo_.layout().dp > 1) sq = groups_->dp().all_reduce_value(sq);
  if (topo_.layout().tp > 1) sq = groups_->tp().all_reduce_value(sq);
  if (topo_.layout().pp > 1) sq = groups_->pp().all_reduce_value(sq);
  return sq;
}

StepStats ParallelEngine::step(std::span<const int32_t> ids, std::span<const int32_t> targets,
                               double lr) {
  StepStats s = compute(ids, targets);
  if (s.finite) apply(s, lr);
  return s;
}

StepStats ParallelEngine::compute(std::span<const int32_t> ids, std::span<const int32_t> targets,
                                  bool poison) {
  const int64_t N = B_ * T_;
  LLMPI_CHECK(int64_t(ids.size()) == M_ * N && ids.size() == targets.size(), "step: ",
              ids.size(), " ids and ", targets.size(), " targets for M·B·T = ", M_ * N);
  Collectives& dp = groups_->dp();
  const bool multi = topo_.layout().dp > 1;
  StepStats r;
  Stopwatch clock(be_);
  // The loss scale needs the step's counted targets over every dp rank before any backward.
  int64_t counted = 0;
  for (int32_t t : targets) counted += t >= 0;
  if (multi) counted = int64_t(dp.all_reduce_value(double(counted)));  // exact below 2^53
  LLMPI_CHECK(counted > 0, "a training step without any counted target");
  const double scale = 1.0 / double(counted);
  r.times.comm_s += clock.lap();

  double loss_sum = 0.0;
  if (!units_path()) {
    store_->zero_grads(be_);
    loss_sum = run_store(ids, targets, scale, r.times);
    clock.lap();
    if (multi && zero_ == 0) {
      bucketed_all_reduce(dp, store_->grads(), kBucketElems);
    } else if (multi) {  // ZeRO 1, ZeRO 2 with pp: reduce-scatter, then the shard back in place
      Buffer part = be_.alloc(Shape{std::max<int64_t>(shard_.size(), 1)}, master_);
      const Tensor mine = flat_view(part, 0, shard_.size());
      reduce_scatter_shard(be_, dp, shard_, store_->grads(), mine);
      be_.copy(flat_view(store_->grads(), shard_.begin(), shard_.size()), mine);
    }
    r.times.comm_s += clock.lap();
  } else {
    shard_store_->zero_grads(be_);
    for (int64_t m = 0; m < M_; ++m) {
      load_micro(ids, targets, m);
      loss_sum += micro_units(ids_, targets_, scale, r.times);
    }
    clock.lap();
  }
  if (poison) poison_grad();
  if (topo_.layout().pp > 1) loss_sum = groups_->pp().all_reduce_value(loss_sum);
  if (multi) loss_sum = dp.all_reduce_value(loss_sum);
  r.counted = counted;
  r.loss = loss_sum / double(counted);
  const ClipResult clip = clip_from_sum_squares(grad_sum_squares(), cfg_.train.grad_clip);
  r.times.comm_s += clock.lap();
  r.grad_norm = clip.norm;
  r.finite = clip.finite && std::isfinite(r.loss);
  r.clipped = r.finite && clip.scale < 1.0;
  r.applied = false;
  clip_scale_ = clip.scale;
  return r;
}

void ParallelEngine::apply(StepStats& r, double lr) {
  LLMPI_CHECK(r.finite, "apply() after a step whose loss or gradient is not finite");
  const bool multi = topo_.layout().dp > 1;
  Stopwatch clock(be_);
  snapshot_for_update();
  opt_->step(be_, lr, clip_scale_);
  r.times.optimizer_s += clock.lap();
  if (!units_path() && zero_ >= 1 && multi) {
    all_gather_shard(be_, groups_->dp(), shard_, store_->master(),
                     flat_view(store_->master(), shard_.begin(), shard_.size()));
    r.times.comm_s += clock.lap();
    // AdamW refreshed the compute copy of its own shard only; convert the whole store (the
    // shard's 1/dp again: one cheap pass, kept as the GPU runs validated it).
    store_->refresh_compute(be_);
  } else if (units_path() && zero_ == 2) {
    refresh_full_params();
  }
  r.times.optimizer_s += clock.lap();
  r.applied = true;
}

void ParallelEngine::poison_grad() {
  const ParamStore& s = units_path() ? *shard_store_ : *store_;
  const bool ranged = !units_path() && zero_ >= 1 && topo_.layout().dp > 1;
  const int64_t at = ranged ? shard_.begin() : 0;
  if (s.numel() > at) be_.fill(flat_view(s.grads(), at, 1), std::nan(""));
}

void ParallelEngine::refresh_full_params() {
  LLMPI_CHECK(units_path() && zero_ == 2, "refresh_full_params outside the ZeRO-2 units path");
  const bool multi = topo_.layout().dp > 1;
  for (Owned& o : owned_)
    if (multi)
      all_gather_shard(be_, groups_->dp(), o.shard, o.full,
                       flat_view(shard_store_->master(), o.shard_offset, o.shard.size()));
    else
      be_.copy(flat_view(o.full, 0, o.n), flat_view(shard_store_->master(), 0, o.n));
  be_.synchronize();
}

float* ParallelEngine::host_state(const Tensor& flat) {
  LLMPI_CHECK(flat.dtype == DType::f32, "checkpoints hold f32 state; this run's master dtype is ",
              dtype_name(flat.dtype));
  if (flat.device == Device::host) return flat.ptr<float>();
  std::vector<float>& h = ckpt_staging_.emplace_back(size_t(flat.numel()));
  ckpt_staged_.push_back(flat);
  be_.copy(Tensor{h.data(), Shape{flat.numel()}, DType::f32, Device::host}, flat);
  return h.data();
}

CheckpointSlabs ParallelEngine::checkpoint_slabs() {
  ckpt_staging_.clear();
  ckpt_staged_.clear();
  CheckpointSlabs out;
  if (!units_path()) {
    // Parameters: full tp-local slabs on every dp rank; dp rank 0 writes them.
    const bool dp0 = topo_.dp_rank() == 0;
    float* master = host_state(store_->master());
    float* m = host_state(opt_->m());
    float* v = host_state(opt_->v());
    const bool sharded = shard_.parts > 1;
    for (const ParamInfo& p : store_->params()) {
      out.params.push_back(box_slab(p, master + p.offset, dp0 && !p.replica));
      // Moments: the part of the parameter inside the optimizer range [begin, end).
      const int64_t b = std::max(p.offset, shard_.begin());
      const int64_t e = std::min(p.offset + p.numel(), shard_.end());
      if (b >= e) continue;  // another dp rank's shard (the file lists it from theirs)
      const bool owner = !p.replica && (sharded || dp0);
      const int64_t at = b - shard_.begin();
      out.m.push_back(range_slab(p, b - p.offset, e - p.offset, m + at, owner));
      out.v.push_back(range_slab(p, b - p.offset, e - p.offset, v + at, owner));
    }
    be_.synchronize();  // staging copies complete
    return out;
  }
  // ZeRO 2/3 units path: the shard store holds, per owned group, the pieces of its
  // parameters inside this rank's shard of the group's flat buffer (disjoint over dp); the
  // moments cover the whole shard store with its layout.
  float* master = host_state(shard_store_->master());
  float* m = host_state(opt_->m());
  float* v = host_state(opt_->v());
  LLMPI_CHECK(opt_->begin() == 0, "units path: AdamW over the whole shard store");
  for (const Owned& o : owned_)
    for (const ParamInfo& p : o.params) {
      const int64_t b = std::max(p.offset, o.shard.begin());
      const int64_t e = std::min(p.offset + p.numel(), o.shard.end());
      if (b >= e) continue;
      const int64_t lo = b - p.offset, hi = e - p.offset;
      const int64_t at = shard_store_->info(p.name).offset;  // the piece in the shard store
      out.params.push_back(range_slab(p, lo, hi, master + at, !p.replica));
      out.m.push_back(range_slab(p, lo, hi, m + at, !p.replica));
      out.v.push_back(range_slab(p, lo, hi, v + at, !p.replica));
    }
  be_.synchronize();
  return out;
}

OptimizerMeta ParallelEngine::optimizer_meta() const {
  const AdamWOptions& o = opt_->options();
  OptimizerMeta m;
  m.step_count = opt_->step_count();
  m.beta1 = o.beta1;
  m.beta2 = o.beta2;
  m.eps = o.eps;
  m.weight_decay = o.weight_decay;
  return m;
}

CheckpointMeta ParallelEngine::load_state(const std::string& path) {
  CheckpointSlabs slabs = checkpoint_slabs();
  be_.synchronize();
  const CheckpointMeta meta = load_checkpoint(path, topo_.world_communicator().get(), slabs);
  loaded_slabs();
  opt_->set_step_count(meta.optimizer.step_count);
  be_.synchronize();
  return meta;
}

void ParallelEngine::load_params(const std::function<void(std::vector<TensorSlab>&)>& fill) {
  CheckpointSlabs slabs = checkpoint_slabs();
  be_.synchronize();
  fill(slabs.params);
  loaded_slabs();
}

void ParallelEngine::loaded_slabs() {
  for (size_t i = 0; i < ckpt_staged_.size(); ++i)  // device state: staged values back
    be_.copy(ckpt_staged_[i], Tensor{ckpt_staging_[i].data(), Shape{ckpt_staged_[i].numel()},
                                     DType::f32, Device::host});
  be_.synchronize();
  if (units_path() && zero_ == 2) refresh_full_params();
  if (store_) store_->refresh_compute(be_);
  gathered_.reset();
}

LossSum ParallelEngine::eval(std::span<const int32_t> ids, std::span<const int32_t> targets) {
  const int64_t N = B_ * T_;
  LLMPI_CHECK(int64_t(ids.size()) == N && targets.size() == ids.size(), "eval: ", ids.size(),
              " ids for B·T = ", N);
  if (schedule_) {
    LossSum l = schedule_->forward_only(
        be_, pipe_,
        [&](int64_t, const Tensor& i, const Tensor& t) {
          be_.copy(i, host_i32(ids.data(), N));
          be_.copy(t, host_i32(targets.data(), N));
        },
        1);
    l.sum = groups_->pp().all_reduce_value(l.sum);
    l.count = int64_t(groups_->pp().all_reduce_value(double(l.count)));
    return l;
  }
  load_micro(ids, targets, 0);
  if (!units_path()) {
    models_[0]->forward(be_, chunk_acts_[0][0], ids_);
    return models_[0]->loss(be_, chunk_acts_[0][0], targets_);
  }
  const size_t U = units_.size();
  LossSum s;
  for (size_t u = 0; u < U; ++u) {
    Live live = gather_unit(u);
    if (u > 0) be_.copy(units_[u].acts.input, units_[u - 1].acts.output());
    live.model->forward(be_, units_[u].acts, ids_);
    if (u + 1 == U) s = live.model->loss(be_, units_[u].acts, targets_);
    transient_live_ -= live.bytes;
  }
  return s;
}

const ParamStore& ParallelEngine::gathered_params() {
  if (!units_path()) return *store_;
  gathered_.reset();
  gathered_ = std::make_unique<ParamStore>(be_, local_params(StageRange::full(cfg_.model)),
                                           master_);
  for (Owned& o : owned_) {
    Buffer tmp;
    const Tensor* full = &o.full.tensor();
    if (zero_ == 3) {
      tmp = be_.alloc(Shape{std::max<int64_t>(o.n, 1)}, master_);
      all_gather_shard(be_, groups_->dp(), o.shard, flat_view(tmp, 0, o.n),
                       flat_view(shard_store_->master(), o.shard_offset, o.shard.size()));
      full = &tmp.tensor();
    }
    for (const ParamInfo& p : o.params)
      be_.copy(gathered_->master(p.name).view(Shape{p.numel()}), flat_view(*full, p.offset, p.numel()));
    be_.synchronize();
  }
  return *gathered_;
}

void ParallelEngine::save(const std::string& path, const ModelFileMeta& meta) {
  const ParamStore& s = gathered_params();
  save_model_file(path, topo_.world_communicator().get(), be_, s, meta, topo_.dp_rank() == 0);
}

std::string ParallelEngine::memory_table() {
  const int64_t mine[4] = {mem_.params, mem_.grads, mem_.optimizer, mem_.transient};
  const int n = topo_.world_size();
  std::vector<int64_t> all(size_t(4 * n));
  check_mpi(MPI_Allgather(mine, 4, MPI_INT64_T, all.data(), 4, MPI_INT64_T,
                          topo_.world_communicator().get()),
            "MPI_Allgather", &topo_.world_communicator());
  std::string out = "memory per rank (MiB): rank | tp dp pp | params | grads | optimizer | transient peak\n";
  const double mib = 1.0 / (1024.0 * 1024.0);
  for (int r = 0; r < n; ++r) {
    const Coord c = topo_.layout().coord_of(r);
    char line[160];
    std::snprintf(line, sizeof line, "  %4d | %2d %2d %2d | %8.3f | %8.3f | %9.3f | %8.3f\n", r,
                  c.tp, c.dp, c.pp, double(all[size_t(4 * r)]) * mib,
                  double(all[size_t(4 * r + 1)]) * mib, double(all[size_t(4 * r + 2)]) * mib,
                  double(all[size_t(4 * r + 3)]) * mib);
    out += line;
  }
  return out;
}

}  // namespace llmpi
