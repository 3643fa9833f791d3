#pragma once
// Layout: how one run is laid out over its MPI ranks, as one record of named fields — the
// degrees of the process grid (tp, dp, pp) and how the grid is used (ZeRO stage, virtual
// pipeline stages per rank, micro-batches per step, sequence parallelism). Checkpoints and
// model files store it field by field under the names of fields() (docs/checkpoint-format.md,
// group /layout); readers read it by name, so an axis added later (experts, context
// parallel) is one more field and breaks no reader. Which layouts are valid for a model is
// decided in one place, config/layout_rules.h.
//
// The grid is pp × dp × tp, row-major with tp fastest-varying:
//     rank = (pp_i · dp + dp_i) · tp + tp_i
// so the tp ranks of one group are consecutive and, placed node by node, share a node.
// `rank_groups(shape, axes)` lists, for any row-major grid shape and any set of axes, the
// groups of ranks that differ only along those axes (Megatron-Core's HyperCommGrid idea).
// Worked example, pp=2 dp=2 tp=4, shape {2, 2, 4}:
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
// is also its rank in the group's communicator). All of this is pure (no MPI).
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

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

struct Layout {
  // The grid's degrees (aggregate order tp, dp, pp).
  int tp = 1, dp = 1, pp = 1;
  // How the grid is used.
  int zero_stage = 0;          // 0..3
  int virtual_stages = 1;      // pipeline chunks per pp rank (interleaved 1F1B when > 1)
  int micro_batches = 1;       // per dp rank and step
  bool sequence_parallel = false;

  int world_size() const { return tp * dp * pp; }  // the product of every grid degree

  // The named fields, in this order: tp, pp, dp, zero_stage, virtual_stages, micro_batches,
  // sequence_parallel (0/1), world_size (derived). The names are the file format's.
  struct Field {
    std::string_view name;
    int64_t value;
  };
  std::vector<Field> fields() const;
  // Sets the field called `name` (not world_size, which is derived); false when no settable
  // field has that name or the value is out of the field's type.
  bool set(std::string_view name, int64_t value);

  std::vector<int> shape() const { return {pp, dp, tp}; }
  int rank_of(Coord c) const { return (c.pp * dp + c.dp) * tp + c.tp; }
  Coord coord_of(int rank) const { return {rank % tp, (rank / tp) % dp, rank / (tp * dp)}; }
  std::vector<std::vector<int>> groups(Axis a) const;
  // {stage 0, stage pp-1} for every (dp_i, tp_i): the ranks that hold the token embedding
  // and the (tied) output head. One member when pp == 1.
  std::vector<std::vector<int>> embedding_groups() const;
  std::string str() const;  // "tp=2 × pp=2 × dp=2"

  bool operator==(const Layout&) const = default;
};

}  // namespace llmpi
