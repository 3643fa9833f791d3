// Checkpoint slabs of the two ZeRO paths, and the host staging of device state (see
// checkpoint_slabs.h).
#include "parallel/checkpoint_slabs.h"

#include <algorithm>

#include "core/error.h"
#include "io/model_file.h"

namespace llmpi {

float* StateStaging::view(Backend& be, const Tensor& flat) {
  LLMPI_CHECK(flat.dtype == DType::f32, "checkpoints hold f32 state; this run's master dtype is ",
              dtype_name(flat.dtype));
  if (flat.device == Device::host) return flat.ptr<float>();
  std::vector<float>& h = host_.emplace_back(size_t(flat.numel()));
  device_.push_back(flat);
  be.copy(Tensor{h.data(), Shape{flat.numel()}, DType::f32, Device::host}, flat);
  return h.data();
}

void StateStaging::write_back(Backend& be) {
  for (size_t i = 0; i < device_.size(); ++i)
    be.copy(device_[i], Tensor{host_[i].data(), Shape{device_[i].numel()}, DType::f32, Device::host});
}

void StateStaging::clear() {
  host_.clear();
  device_.clear();
}

CheckpointSlabs store_slabs(const ParamStore& store, const ShardRange& opt, float* master,
                            float* m, float* v, bool dp_rank0) {
  CheckpointSlabs out;
  const bool sharded = opt.parts > 1;
  for (const ParamInfo& p : store.params()) {
    out.params.push_back(param_slab(p, master + p.offset, dp_rank0 && !p.replica));
    // Moments: the part of the parameter inside the optimizer range [begin, end).
    const int64_t b = std::max(p.offset, opt.begin());
    const int64_t e = std::min(p.offset + p.numel(), opt.end());
    if (b >= e) continue;  // another dp rank's shard (the file lists it from theirs)
    const bool owner = !p.replica && (sharded || dp_rank0);
    const int64_t at = b - opt.begin();
    out.m.push_back(param_range_slab(p, b - p.offset, e - p.offset, m + at, owner));
    out.v.push_back(param_range_slab(p, b - p.offset, e - p.offset, v + at, owner));
  }
  return out;
}

CheckpointSlabs piece_slabs(std::span<const ShardedGroup> groups, const ParamStore& pieces,
                            float* master, float* m, float* v) {
  CheckpointSlabs out;
  for (const ShardedGroup& g : groups)
    for (const ParamInfo& p : g.params) {
      const int64_t b = std::max(p.offset, g.shard.begin());
      const int64_t e = std::min(p.offset + p.numel(), g.shard.end());
      if (b >= e) continue;
      const int64_t lo = b - p.offset, hi = e - p.offset;
      const int64_t at = pieces.info(p.name).offset;  // the piece in the shard store
      out.params.push_back(param_range_slab(p, lo, hi, master + at, !p.replica));
      out.m.push_back(param_range_slab(p, lo, hi, m + at, !p.replica));
      out.v.push_back(param_range_slab(p, lo, hi, v + at, !p.replica));
    }
  return out;
}

}  // namespace llmpi
