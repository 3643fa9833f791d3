#pragma once
// ZeroUnits: ZeRO stages 2 and 3 with pp = 1. The model runs as a chain of units
// (embedding + layer 0, layer 1, …, last layer + head; one unit when n_layer = 1), each a
// Transformer over a transient ParamStore built just in time and freed after use. The
// parameters are owned in flat groups (unit k owns its parameters not owned by an earlier
// one: the head's copy of a tied embedding belongs to the embedding's unit), each split over
// dp (ShardedGroup, checkpoint_slabs.h); the persistent state is this rank's shards of every
// group, packed in one shard store, with AdamW over all of it.
//   ZeRO 2: full parameters are kept per group (copied into a unit when it runs, and
//     all-gathered from the updated shards after each step); gradients are sharded.
//   ZeRO 3: only the shards are kept; a unit's groups are all-gathered for its forward and
//     again for its backward, prefetched one unit ahead: the gathers run in schedule order
//     (forward 0 … U-1, backward U-2 … 0; the last unit stays gathered in between), and
//     while unit k computes, the next unit's gather (iall_gather_shard) is already in flight
//     into its own transient buffers, waited for right before that unit runs. So at most
//     two units are gathered at once: the running unit's store and the next unit's group
//     buffers (memory().transient reports that peak, with the gradient buffers beside it).
// A unit's gradients are summed into its groups' transient accumulation buffers; when the
// last unit that reads a group has run its backward, the group's gradient is reduce-
// scattered into the rank's shard (+=), so the full gradient never persists. One
// micro-batch is in flight at a time; every unit keeps its activations, the last unit stays
// gathered from its forward to its backward. Across micro-batches of a step the parameters do
// not change, so unit 0 stays gathered from one micro-batch's backward to the next one's
// forward (its gradients cleared after their scatter), and unit 1's gather for that forward
// is posted while unit 0's backward computes: M micro-batches gather M − 1 units fewer, and
// no micro-batch after the first waits for a gather before its first unit. Each unit's model reports its block outputs to
// the context's observer; the step's clock is lapped after each micro-batch's forward (unit
// gathers included) and backward (gathers and reduce-scatters included).
#include <map>
#include <memory>
#include <utility>
#include <vector>

#include "parallel/zero_path.h"
#include "parallel/zero_shard.h"

namespace llmpi {

class ZeroUnits final : public ZeroPath {
 public:
  explicit ZeroUnits(const PathContext& ctx);

  double forward_backward(const HostBatch& batch, double scale) override;
  OwnedState owned() const override;
  void update(double lr, double clip_scale) override;
  LossSum forward_only(const HostBatch& batch) override;
  // A copy with every group's shards gathered, valid until the next call.
  const ParamStore& gathered_params() override;
  CheckpointSlabs checkpoint_slabs(StateStaging& staging) override;
  void after_load() override;
  AdamW& optimizer() override { return *opt_; }
  EngineMemory memory() const override { return mem_; }
  void set_adapters_enabled(bool on) override { adapters_on_ = on; }

 private:
  // One link of the chain: a stage range and its parameters in the order a Transformer over
  // it expects; source[i] = (owned group, offset in that group's flat buffer) of params[i].
  struct Unit {
    StageRange range;
    std::vector<ParamInfo> params;
    std::vector<std::pair<size_t, int64_t>> source;
    Activations acts;
  };
  // The runtime state of owned group k (groups_[k] is its layout).
  struct GroupState {
    int64_t shard_offset = 0;  // where the group's shard starts in the shard store
    Buffer full;               // ZeRO 2: full parameters of the group
    Buffer accum;              // transient gradient accumulation
    int consumers = 0, pending = 0;
  };
  // A gathered unit: its transient store and the model bound to it.
  struct Live {
    std::unique_ptr<ParamStore> store;
    std::unique_ptr<Transformer> model;
    int64_t bytes = 0;
  };

  // A unit's gather in flight (ZeRO 3): the full buffer of each group it reads and the
  // request filling it; no requests for ZeRO 2 (the full parameters are kept). `reqs` is
  // declared after `full`, so it completes before the buffers could be freed.
  struct Gather {
    size_t unit = 0;
    std::map<size_t, Buffer> full;
    std::vector<Request> reqs;  // in `full`'s order: every rank waits in the same order
  };

  std::vector<ParamInfo> local_params(const StageRange& r) const;  // tp slabs when tp > 1
  Gather start_gather(size_t u);  // posts the unit's group gathers
  Live finish_gather(Gather g);   // waits for them; the unit's store and model
  void release_unit(Live& live);
  void scatter_unit_grads(size_t u, const ParamStore& s);
  // What one micro-batch hands the next: unit 0 gathered (none when first.store is null) and
  // unit 1's gather in flight.
  struct Carry {
    Live first;
    Gather next;
  };
  // One micro-batch; `more`: another follows in this step (it leaves unit 0 in `carry`).
  double train_micro_batch(const Tensor& ids, const Tensor& targets, const LossScale& scale,
                           Carry& carry, bool more);
  Buffer transient(Shape s);
  void release(Buffer& b);
  void refresh_full_params();  // ZeRO 2: state_[k].full ← the gathered shards

  const PathContext& ctx_;
  int zero_;
  std::vector<Unit> units_;
  std::vector<ShardedGroup> groups_;
  std::vector<GroupState> state_;
  std::unique_ptr<ParamStore> shard_store_;  // pieces of parameters: this rank's shards
  std::unique_ptr<ParamStore> gathered_;
  Buffer dgrad_;  // [rows, C] gradient passed from a unit to the one before it
  std::unique_ptr<AdamW> opt_;
  Workspace ws_;
  MicroBatch batch_;
  EngineMemory mem_;
  int64_t transient_live_ = 0;
  bool adapters_on_ = true;  // applied to each unit's model as it is gathered
};

}  // namespace llmpi
