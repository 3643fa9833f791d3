// Flat shard collectives (see zero_shard.h).
#include "parallel/zero_shard.h"

#include <algorithm>

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

void all_gather_shard(Backend& be, Collectives& dp, const ShardRange& s, const Tensor& full,
                      const Tensor& mine) {
  LLMPI_CHECK(full.numel() == s.n && mine.numel() == s.size(), "all_gather_shard: full ",
              full.numel(), " (n = ", s.n, "), mine ", mine.numel(), " (shard ", s.size(), ")");
  LLMPI_CHECK(dp.size() == s.parts && dp.rank() == s.rank, "shard of a different group");
  const Tensor f = flat(full), m = flat(mine);
  const int64_t c = s.chunk();
  if (c > 0) dp.all_gather(f.slice(0, Shape{c * s.parts}), m.slice(0, Shape{c}));
  if (s.tail() > 0) {
    const Tensor tail = f.slice(c * s.parts, Shape{s.tail()});
    const Tensor my_tail = s.rank == s.parts - 1 ? m.slice(c, Shape{s.tail()}) : Tensor{};
    if (!my_tail.empty() && my_tail.data != tail.data) be.copy(tail, my_tail);  // not in place
    be.synchronize();
    dp.broadcast(tail, int(s.parts - 1));
  }
}

}  // namespace llmpi
