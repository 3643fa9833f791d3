// Host work split over threads (core/host_threads.h): every element or item exactly once,
// whatever the split, and a worker's exception reaches the caller.
#include <gtest/gtest.h>

#include <atomic>
#include <stdexcept>
#include <vector>

#include "core/host_threads.h"
#include "model/param_store.h"

namespace llmpi {
namespace {

TEST(HostThreads, RangesCoverEveryElementOnce) {
  for (int64_t n : {0, 1, 7, 1000, 100003}) {
    for (int64_t min_per : {1, 64, 1 << 20}) {
      std::vector<std::atomic<int>> hits(static_cast<size_t>(n));
      parallel_ranges(n, min_per, [&](int64_t b, int64_t e) {
        ASSERT_LE(0, b);
        ASSERT_LE(b, e);
        ASSERT_LE(e, n);
        for (int64_t i = b; i < e; ++i) ++hits[size_t(i)];
      });
      for (int64_t i = 0; i < n; ++i) ASSERT_EQ(hits[size_t(i)], 1) << "n " << n << " element " << i;
    }
  }
}

TEST(HostThreads, ItemsRunOnceEach) {
  const int64_t n = 513;
  std::vector<std::atomic<int>> hits(static_cast<size_t>(n));
  parallel_items(n, [&](int64_t i) { ++hits[size_t(i)]; });
  for (int64_t i = 0; i < n; ++i) ASSERT_EQ(hits[size_t(i)], 1) << "item " << i;
  parallel_items(0, [](int64_t) { FAIL() << "no item to run"; });
}

TEST(HostThreads, AWorkersExceptionIsRethrown) {
  EXPECT_THROW(parallel_items(100, [](int64_t i) { if (i == 57) throw std::runtime_error("item 57"); }),
               std::runtime_error);
  EXPECT_THROW(parallel_ranges(1 << 20, 1, [](int64_t b, int64_t) { if (b > 0) throw std::runtime_error("range"); }),
               std::runtime_error);
}

// init_values (threaded) equals init_value element by element, on a tp-like slab of a tensor.
TEST(HostThreads, ThreadedInitEqualsTheElementwiseInit) {
  ParamInfo p = full_param("layers.0.mlp.up.weight", Shape{300, 700}, InitKind::normal, 0.02, true);
  p.local_start = {100, 0};
  p.local_shape = Shape{150, 700};
  std::vector<float> got(size_t(p.numel()));
  init_values(p, 1234, got.data());
  for (int64_t r = 0; r < 150; ++r)
    for (int64_t c = 0; c < 700; ++c)
      ASSERT_EQ(got[size_t(r * 700 + c)], float(init_value(p, 1234, (r + 100) * 700 + c)))
          << "element (" << r << ", " << c << ")";
}

}  // namespace
}  // namespace llmpi
