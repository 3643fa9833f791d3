// Flat shard collectives (see zero_shard.h).
#include "parallel/zero_shard.h"

#include <algorithm>
#include <memory>

#include "core/error.h"

namespace llmpi {
namespace {
Tensor flat(const Tensor& t) { return t.view(Shape{t.numel()}); }
}  // namespace

void reduce_scatter_shard(Backend& be, Collectives& dp, const ShardRange& s, const Tensor& full,
                          const Tensor& out) {
  LLMPI_CHECK(full.numel() == s.n && out.numel() == s.size(), "reduce_scatter_shard: full ",
              full.numel(), " (n = ", s.n, "), out ", out.numel(), " (shard ", s.size(), ")");
  LLMPI_CHECK(dp.size() == s.parts && dp.rank() == s.rank, "shard of a different group");
  const Tensor f = flat(full), o = flat(out);
  const int64_t c = s.chunk();
  if (c > 0) dp.reduce_scatter(o.slice(0, Shape{c}), f.slice(0, Shape{c * s.parts}));
  if (s.tail() > 0) {
    const Tensor tail = f.slice(c * s.parts, Shape{s.tail()});
    dp.all_reduce(tail);
    if (s.rank == s.parts - 1) be.copy(o.slice(c, Shape{s.tail()}), tail);
  }
}

namespace {
void check_gather(Collectives& dp, const ShardRange& s, const Tensor& full, const Tensor& mine) {
  LLMPI_CHECK(full.numel() == s.n && mine.numel() == s.size(), "all_gather_shard: full ",
              full.numel(), " (n = ", s.n, "), mine ", mine.numel(), " (shard ", s.size(), ")");
  LLMPI_CHECK(dp.size() == s.parts && dp.rank() == s.rank, "shard of a different group");
}

// The tail full[dp·c, n), with the last rank's own tail copied in (unless in place).
Tensor gather_tail(Backend& be, const ShardRange& s, const Tensor& f, const Tensor& m) {
  const int64_t c = s.chunk();
  const Tensor tail = f.slice(c * s.parts, Shape{s.tail()});
  const Tensor my_tail = s.rank == s.parts - 1 ? m.slice(c, Shape{s.tail()}) : Tensor{};
  if (!my_tail.empty() && my_tail.data != tail.data) be.copy(tail, my_tail);  // not in place
  be.synchronize();
  return tail;
}

// The equal chunks in flight; wait() completes them, then broadcasts the tail.
struct ShardGather final : Request::Impl {
  Request chunks;
  Collectives* dp = nullptr;
  Tensor tail;  // empty once broadcast (or when there is none)
  int root = 0;
  void wait() override {
    chunks.wait();
    if (!tail.empty()) dp->broadcast(tail, root);
    tail = Tensor{};
  }
};
}  // namespace

void all_gather_shard(Backend& be, Collectives& dp, const ShardRange& s, const Tensor& full,
                      const Tensor& mine) {
  check_gather(dp, s, full, mine);
  const Tensor f = flat(full), m = flat(mine);
  const int64_t c = s.chunk();
  if (c > 0) dp.all_gather(f.slice(0, Shape{c * s.parts}), m.slice(0, Shape{c}));
  if (s.tail() > 0) dp.broadcast(gather_tail(be, s, f, m), int(s.parts - 1));
}

Request iall_gather_shard(Backend& be, Collectives& dp, const ShardRange& s, const Tensor& full,
                          const Tensor& mine) {
  check_gather(dp, s, full, mine);
  const Tensor f = flat(full), m = flat(mine);
  const int64_t c = s.chunk();
  auto r = std::make_unique<ShardGather>();
  if (c > 0) r->chunks = dp.iall_gather(f.slice(0, Shape{c * s.parts}), m.slice(0, Shape{c}));
  if (s.tail() > 0) {
    r->tail = gather_tail(be, s, f, m);
    r->dp = &dp;
    r->root = int(s.parts - 1);
  } else if (!r->chunks.pending()) {
    return Request();  // complete already (a blocking device or one-rank group)
  }
  return Request(std::move(r));
}

}  // namespace llmpi
