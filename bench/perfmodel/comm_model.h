#pragma once
// The α-β model of collectives: the time of one call of a collective over a group, from
// measured points (bench/collective_bench.cpp on the machine at hand) or from link figures
// (machines we cannot reach). Sizes are the FULL tensor's bytes S (nccl-tests' convention):
// the all-reduce/broadcast/point-to-point tensor, the gathered or reduced [p·chunk] tensor
// of all-gather and reduce-scatter.
//   Measured: per kind, points (S, t) at one group size; t(S) is their piecewise-linear
//     interpolation (α-β per size range), the last segment's slope beyond the largest S and
//     the smallest point's time below it. A group of 1 costs nothing.
//   Links (ring algorithms, nccl-tests' bus-bandwidth factors, a tree-like latency term):
//     all_reduce      2·⌈log2 p⌉·α + 2(p-1)/p · S/B
//     reduce_scatter  ⌈log2 p⌉·α  + (p-1)/p · S/B         all_gather: the same
//     broadcast       ⌈log2 p⌉·α  + S/B
//     p2p             α + S/B
//   with (α, B) of the slowest link the group crosses: NVLink inside a node, the network
//   between nodes (each GPU its own NIC).
// fit_alpha_beta: t ≈ α + β·S by least squares on RELATIVE error (weights 1/t²), so small
// and large messages count alike. Pure.
#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace llmpi::perf {

enum class Coll : uint8_t { all_reduce, reduce_scatter, all_gather, broadcast, p2p };
constexpr Coll kColls[] = {Coll::all_reduce, Coll::reduce_scatter, Coll::all_gather,
                           Coll::broadcast, Coll::p2p};
const char* coll_name(Coll c);
Coll coll_from(const std::string& s);  // UserError for an unknown name

struct CommPoint {
  double bytes = 0, seconds = 0;
};

struct AlphaBeta {
  double alpha = 0;     // s
  double beta = 0;      // s per byte
  double max_rel = 0;   // largest |fit - t| / t over the points
};
AlphaBeta fit_alpha_beta(std::span<const CommPoint> points);

// Measured collectives of groups of `group` ranks (one machine, one link kind).
struct CommTable {
  std::string source;  // "host MPI, 2 ranks, <date>" ...
  int group = 2;
  std::map<Coll, std::vector<CommPoint>> points;  // sorted by bytes

  // Interpolated time of one call; 0 for a group of 1. Throws InternalError for another
  // group size or a kind that was not measured.
  double seconds(Coll c, double bytes, int group_size) const;
};

std::string to_json(const CommTable& t);
CommTable comm_from_json(const std::string& text, const std::string& name);
CommTable load_comm(const std::string& path);

struct Link {
  double alpha = 0;          // s per step
  double bytes_per_s = 0;    // achieved bus bandwidth per rank, B/s
};

// A cluster of nodes with `per_node` GPUs: NVLink (or any intra-node link) inside a node,
// the network between nodes.
struct Cluster {
  int per_node = 8;
  Link intra, inter;
};

// Where a group's ranks sit: `size` ranks spaced `stride` global ranks apart (the topology's
// row-major grid puts tp at stride 1, dp at stride tp, pp at stride tp·dp).
struct GroupSpan {
  int size = 1;
  int stride = 1;
  bool crosses_nodes(int per_node) const { return size > 1 && int64_t(size - 1) * stride >= per_node; }
};

double link_seconds(Coll c, double bytes, int p, const Link& l);
double cluster_seconds(Coll c, double bytes, const GroupSpan& g, const Cluster& k);

// Either a measured table (the machine at hand) or a cluster (projections).
class CommCost {
 public:
  explicit CommCost(CommTable t) : table_(std::move(t)) {}
  explicit CommCost(Cluster k) : cluster_(k) {}
  double seconds(Coll c, double bytes, const GroupSpan& g) const;
  std::string describe() const;

 private:
  std::optional<CommTable> table_;
  std::optional<Cluster> cluster_;
};

}  // namespace llmpi::perf
