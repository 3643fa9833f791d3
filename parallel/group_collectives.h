#pragma once
// GroupCollectives: the Collectives that move one backend's tensors within each process
// group of a Topology — what the engine, tensor and pipeline parallelism and ZeRO talk to.
//   host backend: the topology's own MPI collectives, each behind a TimedCollectives that
//     clocks the step's communication on one CommClock (timed_collectives.h).
//   CUDA backend (CUDA builds): one NcclCollectives per group (tp, dp, pp, and the embedding
//     group on the first and last pipeline stages), on the backend's stream, so that every
//     collective is ordered with the compute around it; built collectively from each
//     group's MPI communicator (rank 0 of the group broadcasts the ncclUniqueId). The pp
//     group's point-to-point messages (pipeline activations and gradients) are staged
//     through host memory over MPI instead (parallel/staged_p2p.h says why).
// Every group is observed for the hang watchdog through the topology's observer slot: the
// host ones by the Topology, the NCCL ones here (parallel/observed_collectives.h).
// Host scalars (loss sums, token counts, norms) go through all_reduce_value on either kind.
// Owns the NCCL communicators (RAII: destroyed with this object, before the Topology's MPI
// communicators they were built from).
#include <memory>

#include "backend/backend.h"
#include "parallel/collectives.h"
#include "parallel/timed_collectives.h"
#include "parallel/topology.h"

namespace llmpi {

class GroupCollectives {
 public:
  // Collective over the topology's world: every rank builds its groups in the same order
  // (tp, dp, pp, embedding). Throws UserError when the backend's device has no
  // collectives in this build (CUDA backend without NCCL cannot happen: CUDA builds link it).
  GroupCollectives(Topology& topo, Backend& be);
  ~GroupCollectives();
  GroupCollectives(const GroupCollectives&) = delete;
  GroupCollectives& operator=(const GroupCollectives&) = delete;

  Device device() const { return device_; }
  Collectives& tp() { return *tp_; }
  Collectives& dp() { return *dp_; }
  Collectives& pp() { return *pp_; }
  // Only on ranks of the embedding group (Topology::in_embedding_group()).
  Collectives& embedding();
  // Host groups: the communication time since the last call (exposed, total); zeros on a
  // device (not measured there).
  CommTimes take_comm_times() { return clock_.take(); }
  // Whether take_comm_times() measures anything (host groups).
  bool timed() const { return device_ == Device::host; }

 private:
  Topology& topo_;
  Device device_;
  CommClock clock_;
  std::unique_ptr<Collectives> tp_, dp_, pp_nccl_, embedding_;
  std::unique_ptr<Collectives> pp_;  // collectives on pp_nccl_, point-to-point staged over MPI
};

}  // namespace llmpi
