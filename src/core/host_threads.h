#pragma once
// Host-side work split over the machine's hardware threads, for the one-off passes over a
// whole model at start-up (seeded init, checksums, NF4 quantisation: 1e9 elements on a 1B
// model). Results must not depend on the split: each call's work items are independent.
#include <cstdint>
#include <functional>

namespace llmpi {

// fn(b, e) over contiguous ranges that cover [0, n) once, at least min_per_thread elements each
// (one range, on the calling thread, when n is small). Returns when all are done; the first
// exception a range throws is rethrown here.
void parallel_ranges(int64_t n, int64_t min_per_thread,
                     const std::function<void(int64_t, int64_t)>& fn);
// fn(i) for every i in [0, n), each once, handed out in order to whichever thread is free
// (items of very different sizes balance). Exceptions as parallel_ranges.
void parallel_items(int64_t n, const std::function<void(int64_t)>& fn);

}  // namespace llmpi
