#pragma once
// GradReducer: the data-parallel reduction of a ParamStore's flat gradient buffer in buckets,
// each started as soon as the backward has written its gradients for the last time in the
// step (overlap on), or all of them after the backward (overlap off). Both use the same
// buckets, the same non-blocking calls in the same order, so their results are bitwise equal.
//   buckets  contiguous offset ranges of the store (it packs parameters in layer order), at
//            most `bucket_elems` long, cut wherever the part of the model that writes the
//            gradients changes kind (GradListener parts: blocks, head, embedding) and between
//            parameters that are synced after the backward and the others.
//   ready    a bucket is final when each part it covers has been written M times (once per
//            micro-batch, in any pipeline order). Parameters the stage still syncs after
//            the backward (tp-replicated ones, the pipeline-tied embedding) are final only in
//            finish(). Ready buckets start in descending offset order, identically on every
//            dp rank (the same parts finish in the same order there).
//   calls    unsharded (ZeRO 0): iall_reduce of the bucket. Sharded (ZeRO 1, and 2 with pp):
//            per dp rank r, ireduce of the bucket's part of shard r to rank r, in place: the
//            owner's shard range holds the sum, the other ranges are left unspecified.
//   progress MPI moves a non-blocking collective only while some MPI call runs (Open MPI has
//            no progress thread by default), so every GradListener event tests the requests
//            in flight (bench/collective_bench.cpp --overlap measures what that buys).
#include <cstdint>
#include <functional>
#include <vector>

#include "backend/backend.h"
#include "model/param_store.h"
#include "model/transformer.h"
#include "parallel/collectives.h"
#include "parallel/zero_shard.h"

namespace llmpi {

class GradReducer final : public GradListener {
 public:
  struct Bucket {
    int64_t begin = 0, end = 0;  // offsets into the store's flat gradient buffer
    std::vector<int64_t> parts;  // GradListener parts that write it
    bool late = false;           // synced after the backward: final only in finish()
  };

  // late(p): whether parameter p's gradient is still changed after the backward (synced).
  // shard: this rank's optimizer range (sharded when shard.parts > 1). micro_batches: the
  // backward passes of a step per chunk.
  GradReducer(Backend& be, Collectives& dp, ParamStore& store, ShardRange shard,
              int64_t micro_batches, int64_t bucket_elems, bool overlap,
              const std::function<bool(const ParamInfo&)>& late);

  const std::vector<Bucket>& buckets() const { return buckets_; }
  // Buckets of the last step started before finish() (during the backward).
  int64_t started_early() const { return early_; }

  // Before the step's backward: no bucket started, counts cleared.
  void begin_step();
  // GradListener: counts the part's write; with overlap, starts the buckets it made ready.
  // Then progresses every request in flight.
  void grads_written(int64_t part) override;
  // After the backward and the stage's syncs: starts the remaining buckets and waits for all.
  void finish();

 private:
  bool ready(const Bucket& b) const;
  void start(size_t i);
  void progress();
  int64_t& count(int64_t part) { return counts_[size_t(part + 2)]; }
  int64_t count_of(int64_t part) const { return counts_[size_t(part + 2)]; }

  Backend& be_;
  Collectives& dp_;
  ParamStore& store_;
  ShardRange shard_;
  int64_t M_;
  bool overlap_;
  std::vector<Bucket> buckets_;
  std::vector<int64_t> counts_;  // per part + 2 (kHead = -2, kEmbedding = -1, blocks)
  std::vector<bool> started_;
  std::vector<Request> inflight_;
  int64_t early_ = 0;
};

}  // namespace llmpi
