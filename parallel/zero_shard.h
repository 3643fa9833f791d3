#pragma once
// ZeRO shard arithmetic and the flat collectives that move shards.
// A flat buffer of n elements is split over the dp ranks of a data-parallel group in equal
// chunks of c = ⌊n/dp⌋ elements: rank r owns [r·c, (r+1)·c); the last rank also owns the
// tail [dp·c, n) of fewer than dp elements. The equal chunks go through one reduce-scatter
// or all-gather of dp·c elements (no padded copy of the store is needed, since ParamStore
// packs without gaps); the tail, under dp elements, moves with one tiny extra call
// (all-reduce for gradients, broadcast from the last rank for parameters).
// Invariant: the shards of all ranks partition [0, n) in rank order.
#include <cstdint>

#include "backend/backend.h"
#include "parallel/collectives.h"

namespace llmpi {

struct ShardRange {
  int64_t n = 0;      // elements of the flat buffer
  int64_t parts = 1;  // data-parallel degree
  int64_t rank = 0;   // this rank's index in the dp group

  static ShardRange of(int64_t n, int64_t parts, int64_t rank) { return {n, parts, rank}; }
  int64_t chunk() const { return n / parts; }
  int64_t tail() const { return n - parts * chunk(); }
  int64_t begin() const { return rank * chunk(); }
  int64_t end() const { return rank == parts - 1 ? n : begin() + chunk(); }
  int64_t size() const { return end() - begin(); }
  // The shard of any rank r (for the memory arithmetic of every rank).
  int64_t size_of(int64_t r) const { return chunk() + (r == parts - 1 ? tail() : 0); }
};

// The elements [offset, offset + n) of a tensor viewed flat (a shard, a parameter's piece).
inline Tensor flat_view(const Tensor& t, int64_t offset, int64_t n) {
  return t.view(Shape{t.numel()}).slice(offset, Shape{n});
}

// out[0, s.size()) ← Σ_ranks full[s.begin(), s.end()). `full` (n elements) is clobbered
// (its tail is all-reduced in place); `out` must not overlap `full`.
void reduce_scatter_shard(Backend& be, Collectives& dp, const ShardRange& s, const Tensor& full,
                          const Tensor& out);

// full[0, n) ← the shards of every rank; `mine` (s.size() elements) is this rank's shard.
// `mine` may be exactly full[s.begin(), s.end()) (in place) or disjoint from `full`.
void all_gather_shard(Backend& be, Collectives& dp, const ShardRange& s, const Tensor& full,
                      const Tensor& mine);
// The same, non-blocking: the equal chunks start now (Collectives::iall_gather); the tail
// (under dp elements) is broadcast from the last rank when the Request is waited for, so
// every rank must wait for its shard gathers in the same order. `full` and `mine` must stay
// alive, `mine` unchanged and `full` unread, until then.
[[nodiscard]] Request iall_gather_shard(Backend& be, Collectives& dp, const ShardRange& s,
                                        const Tensor& full, const Tensor& mine);

}  // namespace llmpi
