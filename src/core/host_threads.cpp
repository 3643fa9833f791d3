// Host-side work split over the hardware threads (host_threads.h).
#include "core/host_threads.h"

#include <algorithm>
#include <atomic>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

namespace llmpi {

namespace {

int64_t hardware_threads() { return std::max<int64_t>(1, std::thread::hardware_concurrency()); }

// Runs body(w) for w in [0, workers) on `workers` threads (w = 0 on the caller) and rethrows
// the first exception.
void run_workers(int64_t workers, const std::function<void(int64_t)>& body) {
  std::exception_ptr first;
  std::mutex m;
  auto guarded = [&](int64_t w) {
    try {
      body(w);
    } catch (...) {
      std::lock_guard<std::mutex> lock(m);
      if (!first) first = std::current_exception();
    }
  };
  std::vector<std::thread> pool;
  pool.reserve(size_t(workers - 1));
  for (int64_t w = 1; w < workers; ++w) pool.emplace_back(guarded, w);
  guarded(0);
  for (std::thread& t : pool) t.join();
  if (first) std::rethrow_exception(first);
}

}  // namespace

void parallel_ranges(int64_t n, int64_t min_per_thread,
                     const std::function<void(int64_t, int64_t)>& fn) {
  if (n <= 0) return;
  const int64_t workers = std::clamp<int64_t>(n / std::max<int64_t>(1, min_per_thread), 1,
                                              hardware_threads());
  if (workers == 1) return fn(0, n);
  run_workers(workers, [&](int64_t w) { fn(n * w / workers, n * (w + 1) / workers); });
}

void parallel_items(int64_t n, const std::function<void(int64_t)>& fn) {
  if (n <= 0) return;
  std::atomic<int64_t> next{0};
  std::atomic<bool> failed{false};
  run_workers(std::min(n, hardware_threads()), [&](int64_t) {
    for (int64_t i; !failed && (i = next.fetch_add(1)) < n;) {
      try {
        fn(i);
      } catch (...) {
        failed = true;  // the others stop taking items
        throw;
      }
    }
  });
}

}  // namespace llmpi
