// LoRA's frozen base: its store, its loading through host f32 slabs, its checksum
// (lora_base.h).
#include "parallel/lora_base.h"

#include <map>

#include "core/host_threads.h"
#include "io/model_file.h"
#include "model/param_layout.h"
#include "parallel/communicator.h"
#include "parallel/pipeline_split.h"
#include "parallel/tensor_parallel.h"

namespace llmpi {

bool nf4_base_weight(const std::string& n) {
  if (n.rfind("layers.", 0) != 0) return false;
  for (const char* s : {".attn.q.weight", ".attn.k.weight", ".attn.v.weight", ".attn.out.weight",
                        ".mlp.gate.weight", ".mlp.up.weight", ".mlp.down.weight"})
    if (n.ends_with(s)) return true;
  return false;
}

uint64_t fold_base_checksum(std::span<const uint64_t> per_tensor) {
  uint64_t c = 0x6c6f72615f626173ull;  // "lora_bas"
  for (uint64_t s : per_tensor) c = (c ^ s) * 0x100000001b3ull + (c >> 29);
  return c;
}

namespace {

// The packed map a block weight belongs to (its rows share one dequantisation).
std::string packed_group(const std::string& n) {
  for (const char* s : {".attn.q.weight", ".attn.k.weight", ".attn.v.weight"})
    if (n.ends_with(s)) return n.substr(0, n.size() - std::string(s).size()) + ".attn.qkv";
  for (const char* s : {".mlp.gate.weight", ".mlp.up.weight"})
    if (n.ends_with(s)) return n.substr(0, n.size() - std::string(s).size()) + ".mlp.gate_up";
  return n;
}

}  // namespace

int64_t nf4_scratch_elems(std::span<const ParamInfo> ps) {
  std::map<std::string, int64_t> packed;  // "layers.<i>.attn.qkv" etc. → elements
  for (const ParamInfo& p : ps)
    if (nf4_base_weight(p.name)) packed[packed_group(p.name)] += p.numel();
  int64_t most = 0;
  for (const auto& [g, n] : packed) most = std::max(most, n);
  return most;
}

std::vector<ParamInfo> trainable_params(const Config& cfg, const Topology& topo,
                                        std::span<const StageRange> chunks) {
  std::vector<ParamInfo> ps;
  if (cfg.lora.enabled()) {
    const LoraSpec spec = cfg.lora.spec();
    for (const StageRange& r : chunks)
      for (ParamInfo& p : adapter_params(cfg.model, spec, r)) ps.push_back(std::move(p));
  } else {
    ps = rank_params(cfg.model, chunks);
  }
  const Layout& lay = topo.layout();
  if (lay.tp > 1) ps = shard_params_tp(cfg.model, std::move(ps), lay.tp, topo.tp_rank());
  return ps;
}

std::unique_ptr<Transformer> make_stage_model(const Config& cfg, const StageRange& range,
                                              const ParamStore* base, const ParamStore& trainable) {
  if (!base) return std::make_unique<Transformer>(cfg.model, range, trainable);
  return std::make_unique<Transformer>(cfg.model, range, *base,
                                       AdapterStore{&trainable, cfg.lora.spec().scale()});
}

FrozenBase::FrozenBase(const Config& cfg, Topology& topo, Backend& be,
                       std::span<const StageRange> chunks, DType master)
    : topo_(topo), be_(be) {
  const Layout& lay = topo.layout();
  std::vector<ParamInfo> ps = rank_params(cfg.model, chunks);
  if (lay.tp > 1) ps = shard_params_tp(cfg.model, std::move(ps), lay.tp, topo.tp_rank());
  // QLoRA: the blocks' linear weights in NF4; the scratch fits the largest packed map.
  const int64_t scratch = cfg.lora.nf4_base() ? nf4_scratch_elems(ps) : 0;
  if (cfg.lora.nf4_base())
    for (ParamInfo& p : ps)
      if (nf4_base_weight(p.name)) {
        p.external = true;
        nf4_params_ += p.numel();
      }
  store_ = std::make_unique<ParamStore>(be, std::move(ps), master, StoreRole::frozen);
  if (scratch > 0) {
    nf4_.reserve_scratch(be, scratch, store_->dtype());
    store_->attach_nf4(&nf4_);
  }
  for (const ParamInfo& p : transformer_params(cfg.model, StageRange::full(cfg.model))) {
    names_.push_back(p.name);
    global_params_ += p.global_shape.numel();
  }
  // The seeded init, through the same path as a file's values: slab i is parameter i.
  const uint64_t seed = cfg.train.seed;
  load([&](std::vector<TensorSlab>& slabs) {
    for (size_t i = 0; i < slabs.size(); ++i) init_values(store_->params()[i], seed, slabs[i].data);
  });
}

void FrozenBase::load(const std::function<void(std::vector<TensorSlab>&)>& fill) {
  const std::vector<ParamInfo>& ps = store_->params();
  const bool dp0 = topo_.dp_rank() == 0;
  std::vector<std::vector<float>> host(ps.size());
  std::vector<TensorSlab> slabs;
  for (size_t i = 0; i < ps.size(); ++i) {
    host[i].assign(size_t(ps[i].numel()), 0.f);
    slabs.push_back(param_slab(ps[i], host[i].data(), dp0 && !ps[i].replica));
  }
  fill(slabs);
  // The checksum: each tensor's layout-free sum over its owners' slabs, then folded in order.
  std::map<std::string, size_t, std::less<>> at;
  for (size_t k = 0; k < names_.size(); ++k) at.emplace(names_[k], k);
  std::vector<uint64_t> per_slab(slabs.size(), 0);  // summed on the host's threads
  parallel_items(int64_t(slabs.size()), [&](int64_t i) {
    if (slabs[size_t(i)].owner) per_slab[size_t(i)] = slab_checksum(slabs[size_t(i)]);
  });
  std::vector<uint64_t> sums(names_.size(), 0);
  for (size_t i = 0; i < slabs.size(); ++i) sums[at.at(slabs[i].name)] += per_slab[i];
  const Communicator& world = topo_.world_communicator();
  check_mpi(MPI_Allreduce(MPI_IN_PLACE, sums.data(), int(sums.size()), MPI_UINT64_T, MPI_SUM,
                          world.get()),
            "MPI_Allreduce", &world);
  checksum_ = fold_base_checksum(sums);
  std::vector<Nf4Tensor> quantised(ps.size());  // QLoRA: quantised on the host's threads
  parallel_items(int64_t(ps.size()), [&](int64_t i) {
    if (ps[size_t(i)].external) quantised[size_t(i)] = nf4_quantize(host[size_t(i)]);
  });
  for (size_t i = 0; i < ps.size(); ++i) {
    if (ps[i].external)
      nf4_.add(be_, ps[i].name, ps[i].local_shape, quantised[i]);
    else
      be_.copy(store_->master(ps[i].name),
               Tensor{host[i].data(), ps[i].local_shape, DType::f32, Device::host});
  }
  be_.synchronize();  // the host values go out of scope
}

int64_t FrozenBase::bytes() const {
  return int64_t(store_->master().bytes()) + int64_t(store_->grads().bytes()) + nf4_.bytes() +
         nf4_.scratch_bytes();
}

}  // namespace llmpi
