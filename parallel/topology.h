#pragma once
// Topology: where this rank sits in the parallel layout, and every communicator it uses.
//
// The layout (core/layout.h) is the grid pp × dp × tp, row-major with tp fastest-varying;
// its pure rank arithmetic, `rank_groups` and a worked 16-rank example live there, beside
// the Layout record that checkpoints store. A Topology is built once, collectively, from the
// config; it validates the layout first (every rank checks the same rules, those of
// config/layout_rules.h, and all fail together), then owns the communicators (world, tp,
// dp, pp, embedding) and their host Collectives. Pass it by reference.
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "config/config.h"
#include "core/error.h"
#include "core/layout.h"
#include "parallel/collectives.h"
#include "parallel/communicator.h"
#include "parallel/mpi_collectives.h"
#include "parallel/observed_collectives.h"

namespace llmpi {

// Every problem of the layout against the model and the job size, one per line (the
// degrees' ranges, then each broken rule of config/layout_rules.h); empty when the layout
// is valid. Pure: the same on every rank for the same input.
std::string validate_layout(const Config& cfg, int world_size);

// An invalid layout. Thrown alike by every rank (same message), so the caller prints it on
// rank 0 only and every rank exits with the user-error code — no rank waits on another.
struct LayoutError : UserError {
  using UserError::UserError;
};

class Topology {
 public:
  // Collective over `parent` (every rank of it must call). Throws LayoutError on every rank
  // when validate_layout finds problems or the ranks were given different layouts.
  Topology(const Config& cfg, MPI_Comm parent = MPI_COMM_WORLD);
  Topology(const Topology&) = delete;
  Topology& operator=(const Topology&) = delete;

  const Layout& layout() const { return layout_; }
  const Coord& coord() const { return coord_; }
  int rank() const { return world_comm_.rank(); }
  int world_size() const { return world_comm_.size(); }
  int tp_rank() const { return coord_.tp; }
  int dp_rank() const { return coord_.dp; }
  int pp_rank() const { return coord_.pp; }
  bool first_stage() const { return coord_.pp == 0; }
  bool last_stage() const { return coord_.pp == layout_.pp - 1; }
  bool in_embedding_group() const { return embedding_comm_.valid(); }

  // Host collectives of each group (MPI). The embedding group exists on the first and last
  // pipeline stages only (check in_embedding_group()).
  Collectives& world() { return *world_; }
  Collectives& tp() { return *tp_; }
  Collectives& dp() { return *dp_; }
  Collectives& pp() { return *pp_; }
  Collectives& embedding();
  // Attaches `o` to every group's collectives (the hang watchdog: jobs/progress.h): these
  // host ones and the device ones built on this topology (GroupCollectives), which observe
  // through observer_slot(); null detaches. Not owned.
  void set_observer(CollectiveObserver* o) { observer_.store(o); }
  const ObserverSlot& observer_slot() const { return observer_; }

  // The communicator of a group, e.g. to build a device (NCCL) communicator over it.
  const Communicator& communicator(Axis a) const;
  const Communicator& world_communicator() const { return world_comm_; }
  // The embedding group's communicator; invalid on ranks outside it (middle stages).
  const Communicator& embedding_communicator() const { return embedding_comm_; }

  // "rank 5 of 8: tp 1/2, dp 0/2, pp 1/2" — for logs and the logbook's start event.
  std::string describe() const;

 private:
  Layout layout_;
  Coord coord_;
  Communicator world_comm_, tp_comm_, dp_comm_, pp_comm_, embedding_comm_;
  ObserverSlot observer_{nullptr};
  std::unique_ptr<ObservedCollectives> world_, tp_, dp_, pp_, embedding_;
};

}  // namespace llmpi
