#pragma once
// Topology: where this rank sits in the parallel layout, and every communicator it uses.
//
// The world is a grid pp × dp × tp, row-major with tp fastest-varying:
//     rank = (pp_i · dp + dp_i) · tp + tp_i
// so the tp ranks of one group are consecutive and, placed node by node, share a node.
// Grid arithmetic is pure (no MPI): `rank_groups(shape, axes)` lists, for any row-major
// grid shape and any set of axes, the groups of ranks that differ only along those axes
// (Megatron-Core's HyperCommGrid idea). Worked example, pp=2 dp=2 tp=4, shape {2, 2, 4}:
//
//     rank:  0  1  2  3 |  4  5  6  7 || 8  9 10 11 | 12 13 14 15
//     pp_i:  0  0  0  0 |  0  0  0  0 || 1  1  1  1 |  1  1  1  1
//     dp_i:  0  0  0  0 |  1  1  1  1 || 0  0  0  0 |  1  1  1  1
//     tp_i:  0  1  2  3 |  0  1  2  3 || 0  1  2  3 |  0  1  2  3
//
//     tp groups (axis 2): {0,1,2,3} {4,5,6,7} {8,9,10,11} {12,13,14,15}
//     dp groups (axis 1): {0,4} {1,5} {2,6} {3,7} {8,12} {9,13} {10,14} {11,15}
//     pp groups (axis 0): {0,8} {1,9} {2,10} {3,11} {4,12} {5,13} {6,14} {7,15}
//     dp×tp     ({1,2}):  {0..7} {8..15}          (one pipeline stage each)
//     embedding groups:   {first stage, last stage} of each pp group = the pp groups here
//
// Groups are listed in order of their smallest rank; within a group ranks increase, and
// for a single axis a member's index in its group is its coordinate on that axis (which
// is also its rank in the group's communicator).
//
// A Topology is built once, collectively, from the config; it validates the layout first
// (every rank checks the same rules and all fail together), then owns the communicators
// (world, tp, dp, pp, embedding) and their host Collectives. Pass it by reference.
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "config/config.h"
#include "core/error.h"
#include "parallel/collectives.h"
#include "parallel/communicator.h"
#include "parallel/mpi_collectives.h"

namespace llmpi {

// Groups of ranks of a row-major grid (last axis fastest) that differ only along `axes`
// (indices into shape, any order, no duplicates). Pure; see the example above.
std::vector<std::vector<int>> rank_groups(std::span<const int> shape, std::span<const int> axes);
std::vector<std::vector<int>> rank_groups(std::span<const int> shape, int axis);

// The axes of the llmpi grid, as indices into Layout::shape() = {pp, dp, tp}.
enum class Axis : int { pp = 0, dp = 1, tp = 2 };
const char* axis_name(Axis a);

struct Coord {
  int tp = 0, dp = 0, pp = 0;
  bool operator==(const Coord&) const = default;
};

// The degrees of parallelism, with the rank ↔ coordinate arithmetic. Pure.
struct Layout {
  int tp = 1, dp = 1, pp = 1;

  static Layout from(const ParallelSection& p);
  int world_size() const { return tp * dp * pp; }
  std::vector<int> shape() const { return {pp, dp, tp}; }
  int rank_of(Coord c) const { return (c.pp * dp + c.dp) * tp + c.tp; }
  Coord coord_of(int rank) const { return {rank % tp, (rank / tp) % dp, rank / (tp * dp)}; }
  std::vector<std::vector<int>> groups(Axis a) const;
  // {stage 0, stage pp-1} for every (dp_i, tp_i): the ranks that hold the token embedding
  // and the (tied) output head. One member when pp == 1.
  std::vector<std::vector<int>> embedding_groups() const;
  std::string str() const;  // "tp=2 × pp=2 × dp=2"
};

// Every problem of the layout against the model and the job size, one per line; empty
// when the layout is valid. Pure: the same on every rank for the same input.
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
  std::unique_ptr<MpiCollectives> world_, tp_, dp_, pp_, embedding_;
};

}  // namespace llmpi
