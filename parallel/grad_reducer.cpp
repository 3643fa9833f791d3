// Bucketed data-parallel gradient reduction, overlapped with the backward (see grad_reducer.h).
#include "parallel/grad_reducer.h"

#include <algorithm>
#include <string>

#include "core/error.h"

namespace llmpi {

namespace {

// The GradListener part that writes parameter p's gradient last in a backward.
int64_t part_of(const std::string& name) {
  if (name.rfind("layers.", 0) == 0) return std::stoll(name.substr(7));
  if (name.rfind("embed.", 0) == 0) return GradListener::kEmbedding;
  return GradListener::kHead;  // final_norm.*, head.weight
}

int64_t kind_of(int64_t part) { return part >= 0 ? 0 : part; }  // blocks, head, embedding

}  // namespace

GradReducer::GradReducer(Backend& be, Collectives& dp, ParamStore& store, ShardRange shard,
                         int64_t micro_batches, int64_t bucket_elems, bool overlap,
                         const std::function<bool(const ParamInfo&)>& late)
    : be_(be), dp_(dp), store_(store), shard_(shard), M_(micro_batches), overlap_(overlap) {
  LLMPI_CHECK(bucket_elems >= 1 && micro_batches >= 1, "bucket of ", bucket_elems,
              " elements, ", micro_batches, " micro-batches");
  int64_t max_part = -1;
  for (const ParamInfo& p : store.params()) {
    const int64_t part = part_of(p.name), n = p.numel();
    const bool is_late = late(p);
    max_part = std::max(max_part, part);
    for (int64_t at = 0; at < n;) {
      Bucket* b = buckets_.empty() ? nullptr : &buckets_.back();
      const bool joins = b && b->late == is_late && b->end == p.offset + at &&
                         kind_of(b->parts.back()) == kind_of(part) && b->end - b->begin < bucket_elems;
      if (!joins) {
        buckets_.push_back({p.offset + at, p.offset + at, {}, is_late});
        b = &buckets_.back();
      }
      const int64_t take = std::min(n - at, bucket_elems - (b->end - b->begin));
      b->end += take;
      if (b->parts.empty() || b->parts.back() != part) b->parts.push_back(part);
      at += take;
    }
  }
  counts_.assign(size_t(max_part + 3), 0);
  started_.assign(buckets_.size(), false);
}

void GradReducer::begin_step() {
  LLMPI_CHECK(inflight_.empty(), "a gradient reduction is still in flight");
  std::fill(counts_.begin(), counts_.end(), 0);
  std::fill(started_.begin(), started_.end(), false);
  early_ = 0;
}

bool GradReducer::ready(const Bucket& b) const {
  if (b.late) return false;
  for (int64_t part : b.parts)
    if (count_of(part) < M_) return false;
  return true;
}

void GradReducer::grads_written(int64_t part) {
  LLMPI_CHECK(part + 2 >= 0 && size_t(part + 2) < counts_.size(), "gradient part ", part,
              " is not in this rank's store");
  ++count(part);
  if (overlap_ && count(part) == M_) {
    bool synced = false;
    for (size_t i = buckets_.size(); i-- > 0;) {
      if (started_[i] || !ready(buckets_[i])) continue;
      if (!synced) be_.synchronize(), synced = true;  // a device may still be writing them
      start(i);
      ++early_;
    }
  }
  progress();
}

void GradReducer::start(size_t i) {
  const Bucket& b = buckets_[i];
  started_[i] = true;
  const Tensor& g = store_.grads();
  if (shard_.parts <= 1) {
    inflight_.push_back(dp_.iall_reduce(flat_view(g, b.begin, b.end - b.begin)));
    return;
  }
  for (int64_t r = 0; r < shard_.parts; ++r) {
    const ShardRange s = ShardRange::of(shard_.n, shard_.parts, r);
    const int64_t lo = std::max(b.begin, s.begin()), hi = std::min(b.end, s.end());
    if (lo < hi) inflight_.push_back(dp_.ireduce(flat_view(g, lo, hi - lo), int(r)));
  }
}

void GradReducer::progress() {
  for (Request& r : inflight_) r.test();
}

void GradReducer::finish() {
  be_.synchronize();
  for (size_t i = buckets_.size(); i-- > 0;)
    if (!started_[i]) start(i);
  wait_all(inflight_);
  inflight_.clear();
}

}  // namespace llmpi
