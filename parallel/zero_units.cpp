// ZeRO 2/3 with pp = 1: the chain of just-in-time units (see zero_units.h).
#include "parallel/zero_units.h"

#include <algorithm>
#include <map>
#include <string>
#include <utility>

#include "model/dtypes.h"
#include "model/param_layout.h"
#include "optim/grad_clip.h"
#include "parallel/lora_base.h"
#include "parallel/pipeline_split.h"

namespace llmpi {

ZeroUnits::ZeroUnits(const PathContext& ctx)
    : ctx_(ctx), zero_(ctx.cfg.parallel.zero_stage), batch_(ctx.be, ctx.B * ctx.T) {
  Backend& be = ctx.be;
  const ModelConfig& mc = ctx.cfg.model;
  const int64_t L = mc.n_layer;
  LLMPI_CHECK(L >= 1, "a model without layers");
  LLMPI_CHECK(ctx.topo.layout().pp == 1, "the unit chain runs without pipeline parallelism");
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
    ShardedGroup g;
    for (const ParamInfo& p : units_[k].params) {
      if (where.count(p.name)) continue;
      ParamInfo q = p;
      q.offset = g.n;
      where.emplace(p.name, std::make_pair(k, g.n));
      g.n += p.numel();
      g.params.push_back(std::move(q));
    }
    g.shard = ShardRange::of(g.n, ctx.topo.layout().dp, ctx.topo.dp_rank());
    groups_.push_back(std::move(g));
  }
  state_.resize(groups_.size());
  for (Unit& u : units_)
    for (const ParamInfo& p : u.params) {
      const auto [k, off] = where.at(p.name);
      u.source.emplace_back(k, off);
      ++state_[k].consumers;
    }
  // The shard store: for each group, the pieces of its parameters inside this rank's shard.
  std::vector<ParamInfo> pieces;
  int64_t at = 0;
  for (size_t k = 0; k < groups_.size(); ++k) {
    const ShardedGroup& g = groups_[k];
    state_[k].pending = state_[k].consumers;
    state_[k].shard_offset = at;
    for (const ParamInfo& p : g.params) {
      const int64_t b = std::max(p.offset, g.shard.begin());
      const int64_t e = std::min(p.offset + p.numel(), g.shard.end());
      if (b >= e) continue;
      ParamInfo piece = full_param(p.name, Shape{e - b}, InitKind::zeros, 0.0, p.weight_decay);
      piece.replica = p.replica;
      pieces.push_back(std::move(piece));
    }
    at += g.shard.size();
  }
  shard_store_ = std::make_unique<ParamStore>(be, std::move(pieces), ctx.master);
  LLMPI_CHECK(shard_store_->numel() == at, "shard store ", shard_store_->numel(), " != ", at);

  // Init: each group's values come from its unit's layout-independent init.
  const int64_t f = int64_t(dtype_size(ctx.master));
  for (size_t k = 0; k < groups_.size(); ++k) {
    const ShardedGroup& g = groups_[k];
    ParamStore unit_store(be, units_[k].params, ctx.master);
    unit_store.init(be, ctx.cfg.train.seed);
    const std::unique_ptr<Transformer> model = make_stage_model(ctx.cfg, units_[k].range, ctx.base, unit_store);
    Transformer& m = *model;
    if (ctx.tp) ctx.tp->install(m);
    Buffer full = be.alloc(Shape{std::max<int64_t>(g.n, 1)}, ctx.master);
    for (const ParamInfo& p : g.params)
      be.copy(flat_view(full, p.offset, p.numel()), unit_store.master(p.name).view(Shape{p.numel()}));
    be.copy(flat_view(shard_store_->master(), state_[k].shard_offset, g.shard.size()),
            flat_view(full, g.shard.begin(), g.shard.size()));
    if (zero_ == 2) state_[k].full = std::move(full);
    // Activations are sized by the unit's shape only (the model was bound to allocate them).
    units_[k].acts = m.alloc_activations(be, ctx.B, ctx.T, k > 0 ? units_[0].acts.shared : nullptr);
    if (k + 1 == units_.size()) ws_ = m.alloc_workspace(be, ctx.B, ctx.T);  // has blocks and head
    be.synchronize();
  }
  opt_ = std::make_unique<AdamW>(be, *shard_store_, AdamWOptions::from(ctx.cfg.train));
  const int64_t rows = ctx.tp ? ctx.tp->local_rows(ctx.B * ctx.T) : ctx.B * ctx.T;  // sp rows
  dgrad_ = be.alloc(Shape{rows, mc.d_model}, compute_dtype(be.device(), ctx.master));
  int64_t full_params = 0;
  for (const ShardedGroup& g : groups_) full_params += g.n;
  mem_.params = (zero_ == 2 ? full_params : shard_store_->numel()) * f;
  mem_.grads = shard_store_->numel() * f;
  mem_.optimizer = 2 * shard_store_->numel() * f;
}

std::vector<ParamInfo> ZeroUnits::local_params(const StageRange& r) const {
  return trainable_params(ctx_.cfg, ctx_.topo, std::span<const StageRange>(&r, 1));
}

Buffer ZeroUnits::transient(Shape s) {
  Buffer b = ctx_.be.alloc(s, ctx_.master);
  transient_live_ += int64_t(b.tensor().bytes());
  mem_.transient = std::max(mem_.transient, transient_live_);
  return b;
}

void ZeroUnits::release(Buffer& b) {
  if (b.tensor().empty()) return;
  transient_live_ -= int64_t(b.tensor().bytes());
  b = Buffer{};
}

ZeroUnits::Gather ZeroUnits::start_gather(size_t u) {
  Gather g;
  g.unit = u;
  if (zero_ == 2) return g;
  for (const auto& [k, off] : units_[u].source) {
    if (g.full.count(k)) continue;
    const ShardedGroup& grp = groups_[k];
    Buffer full = transient(Shape{grp.n});
    g.reqs.push_back(iall_gather_shard(
        ctx_.be, ctx_.groups.dp(), grp.shard, full,
        flat_view(shard_store_->master(), state_[k].shard_offset, grp.shard.size())));
    g.full.emplace(k, std::move(full));
  }
  return g;
}

ZeroUnits::Live ZeroUnits::finish_gather(Gather g) {
  Backend& be = ctx_.be;
  Unit& unit = units_[g.unit];
  Live live;
  live.store = std::make_unique<ParamStore>(be, unit.params, ctx_.master);
  live.bytes = 2 * live.store->numel() * int64_t(dtype_size(ctx_.master));
  transient_live_ += live.bytes;
  mem_.transient = std::max(mem_.transient, transient_live_);
  wait_all(g.reqs);  // in posting order (a group's tail is broadcast inside its wait)
  for (size_t i = 0; i < unit.params.size(); ++i) {
    const auto [k, off] = unit.source[i];
    const Tensor& src = zero_ == 2 ? state_[k].full.tensor() : g.full.at(k).tensor();
    const ParamInfo& p = unit.params[i];
    be.copy(live.store->master(p.name).view(Shape{p.numel()}), flat_view(src, off, p.numel()));
  }
  live.store->refresh_compute(be);  // the weights forward/backward read (bf16 on CUDA)
  for (auto& [k, b] : g.full) release(b);
  live.model = make_stage_model(ctx_.cfg, unit.range, ctx_.base, *live.store);
  live.model->set_adapters_enabled(adapters_on_);
  live.model->set_block_observer(ctx_.blocks);
  if (ctx_.tp) ctx_.tp->install(*live.model);
  return live;
}

void ZeroUnits::release_unit(Live& live) {
  transient_live_ -= live.bytes;
  live = Live{};
}

void ZeroUnits::scatter_unit_grads(size_t u, const ParamStore& s) {
  Backend& be = ctx_.be;
  Unit& unit = units_[u];
  for (size_t i = 0; i < unit.params.size(); ++i) {
    const auto [k, off] = unit.source[i];
    const ShardedGroup& g = groups_[k];
    GroupState& st = state_[k];
    if (st.accum.tensor().empty()) {
      st.accum = transient(Shape{g.n});
      be.fill(st.accum, 0.0);
    }
    const ParamInfo& p = unit.params[i];
    const Tensor dst = flat_view(st.accum, off, p.numel());
    be.add(dst, dst, s.grad(p.name).view(Shape{p.numel()}));
    if (--st.pending > 0) continue;
    // Every consumer of group k is done: reduce-scatter into the persistent shard (+=).
    st.pending = st.consumers;
    Buffer part = transient(Shape{std::max<int64_t>(g.shard.size(), 1)});
    const Tensor mine = flat_view(part, 0, g.shard.size());
    reduce_scatter_shard(be, ctx_.groups.dp(), g.shard, st.accum, mine);
    const Tensor grad = flat_view(shard_store_->grads(), st.shard_offset, g.shard.size());
    be.add(grad, grad, mine);
    release(part);
    release(st.accum);
  }
}

double ZeroUnits::train_micro_batch(const Tensor& ids, const Tensor& targets,
                                    const LossScale& scale, Carry& carry, bool more) {
  Backend& be = ctx_.be;
  const size_t U = units_.size();
  // Gathers in schedule order, each posted while the unit before it computes: forward
  // 0 … U-1, then backward U-2 … 0 (the last unit stays gathered for its backward); unit 0
  // and unit 1's gather come from the previous micro-batch when it left them (carry).
  Live live;
  Gather next;
  const bool carried = carry.first.store != nullptr;
  if (carried) {
    live = std::exchange(carry.first, Live{});
    next = std::move(carry.next);
  } else {
    next = start_gather(0);
  }
  for (size_t u = 0; u < U; ++u) {
    if (u > 0 || !carried) {
      live = finish_gather(std::move(next));
      if (U > 1) next = start_gather(u + 1 < U ? u + 1 : U - 2);
    }
    set_documents(be, *live.model, units_[u].acts, batch_.docs);
    if (u > 0) be.copy(units_[u].acts.input, units_[u - 1].acts.output());
    live.model->forward(be, units_[u].acts, ids);
    if (u + 1 < U) release_unit(live);
  }
  const double sum = live.model->loss(be, units_[U - 1].acts, targets).sum;
  ctx_.clock.lap(StepPhase::forward);
  for (size_t u = U; u-- > 0;) {
    Activations& a = units_[u].acts;
    if (u + 1 < U) {
      live = finish_gather(std::move(next));
      if (u > 0) next = start_gather(u - 1);
    }
    if (u == 0 && more && U > 1) next = start_gather(1);  // the next micro-batch's unit 1
    if (u + 1 == U)
      live.model->backward_loss(be, a, ws_, ids, targets, scale);
    else
      live.model->backward(be, a, ws_, ids, dgrad_);
    if (u > 0) be.copy(dgrad_, live.model->input_grad(ws_, a));
    if (ctx_.tp) ctx_.tp->sync_grads(be, *live.store);
    scatter_unit_grads(u, *live.store);
    if (u == 0 && more) {  // unit 0 stays gathered for the next micro-batch's forward
      live.store->zero_grads(be);
      carry.first = std::move(live);
      carry.next = std::move(next);
    } else {
      release_unit(live);
    }
  }
  ctx_.clock.lap(StepPhase::backward);
  return sum;
}

double ZeroUnits::forward_backward(const HostBatch& batch, double scale) {
  shard_store_->zero_grads(ctx_.be);
  double sum = 0.0;
  Carry carry;
  for (int64_t m = 0; m < ctx_.M; ++m) {
    batch_.load(ctx_.be, batch, m);
    sum += train_micro_batch(batch_.ids, batch_.targets,
                             LossScale{scale, batch.token_scale}.of_micro(m, ctx_.B * ctx_.T),
                             carry, m + 1 < ctx_.M);
  }
  return sum;
}

OwnedState ZeroUnits::owned() const {
  // The shard store: this rank's pieces of every group, disjoint over dp.
  OwnedState o;
  o.store = shard_store_.get();
  o.grad_end = shard_store_->numel();
  return o;
}

void ZeroUnits::update(double lr, double clip_scale) {
  opt_->step(ctx_.be, lr, clip_scale);
  ctx_.be.synchronize();
  if (zero_ == 2) refresh_full_params();
}

void ZeroUnits::refresh_full_params() {
  Backend& be = ctx_.be;
  const bool multi = ctx_.topo.layout().dp > 1;
  for (size_t k = 0; k < groups_.size(); ++k) {
    const ShardedGroup& g = groups_[k];
    const Tensor shard = flat_view(shard_store_->master(), state_[k].shard_offset, g.shard.size());
    if (multi)
      all_gather_shard(be, ctx_.groups.dp(), g.shard, state_[k].full, shard);
    else
      be.copy(flat_view(state_[k].full, 0, g.n), shard);
  }
  be.synchronize();
}

LossSum ZeroUnits::forward_only(const HostBatch& batch) {
  Backend& be = ctx_.be;
  batch_.load(be, batch, 0);
  const size_t U = units_.size();
  LossSum s;
  Gather next = start_gather(0);
  for (size_t u = 0; u < U; ++u) {
    Live live = finish_gather(std::move(next));
    if (u + 1 < U) next = start_gather(u + 1);  // in flight while unit u runs
    set_documents(be, *live.model, units_[u].acts, batch_.docs);
    if (u > 0) be.copy(units_[u].acts.input, units_[u - 1].acts.output());
    live.model->forward(be, units_[u].acts, batch_.ids);
    if (u + 1 == U) s = live.model->loss(be, units_[u].acts, batch_.targets, batch.token_losses);
    release_unit(live);
  }
  return s;
}

const ParamStore& ZeroUnits::gathered_params() {
  Backend& be = ctx_.be;
  gathered_.reset();
  gathered_ = std::make_unique<ParamStore>(be, local_params(StageRange::full(ctx_.cfg.model)),
                                           ctx_.master);
  for (size_t k = 0; k < groups_.size(); ++k) {
    const ShardedGroup& g = groups_[k];
    Buffer tmp;
    const Tensor* full = &state_[k].full.tensor();
    if (zero_ == 3) {
      tmp = be.alloc(Shape{std::max<int64_t>(g.n, 1)}, ctx_.master);
      all_gather_shard(be, ctx_.groups.dp(), g.shard, flat_view(tmp, 0, g.n),
                       flat_view(shard_store_->master(), state_[k].shard_offset, g.shard.size()));
      full = &tmp.tensor();
    }
    for (const ParamInfo& p : g.params)
      be.copy(gathered_->master(p.name).view(Shape{p.numel()}), flat_view(*full, p.offset, p.numel()));
    be.synchronize();
  }
  return *gathered_;
}

CheckpointSlabs ZeroUnits::checkpoint_slabs(StateStaging& staging) {
  Backend& be = ctx_.be;
  float* master = staging.view(be, shard_store_->master());
  float* m = staging.view(be, opt_->m());
  float* v = staging.view(be, opt_->v());
  LLMPI_CHECK(opt_->begin() == 0, "units path: AdamW over the whole shard store");
  return piece_slabs(groups_, *shard_store_, master, m, v);
}

void ZeroUnits::after_load() {
  if (zero_ == 2) refresh_full_params();
  gathered_.reset();
}

}  // namespace llmpi
