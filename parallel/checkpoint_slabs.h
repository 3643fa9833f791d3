#pragma once
// Checkpoint slabs: this rank's parameters and AdamW moments as slabs of the global tensors
// (io/checkpoint.h), so that a file saved under one layout loads under any other.
//   one store (ZeRO 0, 1; 2 with pp > 1)  params: the box of each tp-local slab, written by
//       dp rank 0; m, v: the flat range of each slab inside the optimizer range (ZeRO 1/2:
//       the rank's shard, every dp rank an owner; ZeRO 0: the whole slab, dp rank 0 owns it)
//   unit chain (ZeRO 2/3, pp = 1)  params, m, v: the flat range of each tp-local slab inside
//       the rank's shard of its group (every dp rank an owner)
// Replicas (tp copies, the head's copy of a tied embedding) are never owners; on load every
// slab, replicas included, is filled. The slabs point into host f32 views of the state: the
// buffers themselves on the host backend, else copies a StateStaging holds (and writes back
// after a load). docs/checkpoint-format.md has the same table.
#include <span>
#include <vector>

#include "backend/backend.h"
#include "io/checkpoint.h"
#include "model/param_store.h"
#include "parallel/zero_shard.h"

namespace llmpi {

class StateStaging {
 public:
  // A host f32 view of a flat state buffer: the buffer itself on the host, else a staging
  // copy (started now; synchronize the backend before reading it). Valid until clear().
  float* view(Backend& be, const Tensor& flat);
  // Copies every staged view back into the device buffer it mirrors (after a load).
  void write_back(Backend& be);
  void clear();

 private:
  std::vector<std::vector<float>> host_;
  std::vector<Tensor> device_;  // the buffers host_[i] mirrors
};

// One-store path. master: host view of the store's master parameters; m, v: of AdamW's
// moments, which cover the optimizer range [opt.begin(), opt.end()) of the store.
CheckpointSlabs store_slabs(const ParamStore& store, const ShardRange& opt, float* master,
                            float* m, float* v, bool dp_rank0);

// A flat group of parameters split over the dp ranks (the unit chain's ZeRO 2/3 state):
// parameter offsets are within the group's flat buffer; `shard` is this rank's range of it.
struct ShardedGroup {
  std::vector<ParamInfo> params;
  int64_t n = 0;  // elements of the group
  ShardRange shard;
};

// Unit-chain path. pieces: the shard store, which holds the piece of each parameter inside
// this rank's shard at pieces.info(name).offset; master, m, v: host views of all of it.
CheckpointSlabs piece_slabs(std::span<const ShardedGroup> groups, const ParamStore& pieces,
                            float* master, float* m, float* v);

}  // namespace llmpi
