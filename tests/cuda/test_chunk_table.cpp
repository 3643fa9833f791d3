// ChunkTable (backend/cuda/chunk_table.h), the optimizer's chunk tables kept on the device:
// an unchanged table is not copied again and keeps its device address; a changed row, a
// shorter table and a longer one (a new allocation) are copied, and the device holds exactly
// the last rows uploaded.
#include <gtest/gtest.h>

#include <cuda_runtime.h>

#include <cstdint>
#include <vector>

#include "backend/cuda/chunk_table.h"

namespace llmpi::cuda {
namespace {

struct Row {
  const void* p;
  int64_t n;
  int32_t flag;
  int32_t pad;
};

std::vector<Row> rows(int count, int64_t base) {
  std::vector<Row> r;
  for (int i = 0; i < count; ++i)
    r.push_back({reinterpret_cast<const void*>(uintptr_t(0x1000 * (i + 1))), base + i, i % 2, 0});
  return r;
}

std::vector<Row> on_device(cudaStream_t s, const Row* d, size_t count) {
  std::vector<Row> back(count);
  EXPECT_EQ(cudaMemcpyAsync(back.data(), d, count * sizeof(Row), cudaMemcpyDeviceToHost, s),
            cudaSuccess);
  EXPECT_EQ(cudaStreamSynchronize(s), cudaSuccess);
  return back;
}

bool same(const std::vector<Row>& a, const std::vector<Row>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (a[i].p != b[i].p || a[i].n != b[i].n || a[i].flag != b[i].flag) return false;
  return true;
}

TEST(ChunkTable, CopiesOnlyWhatChanged) {
  cudaStream_t s = nullptr;
  ASSERT_EQ(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking), cudaSuccess);
  {
    ChunkTable table(s);
    const std::vector<Row> a = rows(1000, 7);
    const Row* d1 = table.upload(a);
    EXPECT_TRUE(same(on_device(s, d1, a.size()), a));
    EXPECT_EQ(table.copies(), 1);
    EXPECT_EQ(table.reuses(), 0);

    // The same rows again (a fresh vector with equal bytes): no copy, same address.
    const Row* d2 = table.upload(rows(1000, 7));
    EXPECT_EQ(d2, d1);
    EXPECT_EQ(table.copies(), 1);
    EXPECT_EQ(table.reuses(), 1);

    // One row changed: copied again, into the same allocation.
    std::vector<Row> b = a;
    b[999].n = -1;
    const Row* d3 = table.upload(b);
    EXPECT_EQ(d3, d1);
    EXPECT_EQ(table.copies(), 2);
    EXPECT_TRUE(same(on_device(s, d3, b.size()), b));

    // A shorter table is a different table, even though its bytes are a prefix.
    const std::vector<Row> c(b.begin(), b.begin() + 10);
    table.upload(c);
    EXPECT_EQ(table.copies(), 3);
    // A longer one needs a larger allocation and holds all its rows.
    const std::vector<Row> e = rows(5000, 3);
    const Row* d5 = table.upload(e);
    EXPECT_EQ(table.copies(), 4);
    EXPECT_TRUE(same(on_device(s, d5, e.size()), e));
    EXPECT_EQ(table.upload(e), d5);
    EXPECT_EQ(table.reuses(), 2);
  }
  EXPECT_EQ(cudaStreamSynchronize(s), cudaSuccess);
  EXPECT_EQ(cudaStreamDestroy(s), cudaSuccess);
}

}  // namespace
}  // namespace llmpi::cuda
