// Sample order and batch loaders: each epoch is a permutation; the order is a pure function
// of (seed, epoch); Fisher–Yates is unbiased (chi-square on first-slot occupancy); a step's
// sample set is the same for every (dp, micro-batch) split of the same global batch; inputs
// and targets are the sample's tokens shifted by one; validation batches wrap around; a too
// small dataset is rejected naming its files and counts.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <numeric>
#include <unistd.h>

#include "core/error.h"
#include "data/batch_loader.h"
#include "data/sample_order.h"
#include "data/token_shard.h"

using namespace llmpi;
namespace fs = std::filesystem;

namespace {

std::string temp_path(const std::string& name) {
  return (fs::temp_directory_path() /
          ("llmpi_loader_" + std::to_string(::getpid()) + "_" + name)).string();
}

// Token g of the dataset is (g * 13 + 5) mod 1000: any misplaced read is visible.
uint32_t token_at(int64_t g) { return static_cast<uint32_t>((g * 13 + 5) % 1000); }

struct TwoShards {
  std::string a = temp_path("a.bin"), b = temp_path("b.bin");
  explicit TwoShards(int64_t n, int64_t split) {
    std::vector<uint32_t> t(static_cast<size_t>(n));
    for (int64_t g = 0; g < n; ++g) t[static_cast<size_t>(g)] = token_at(g);
    write_token_shard(a, std::span(t).subspan(0, static_cast<size_t>(split)), 1000);
    write_token_shard(b, std::span(t).subspan(static_cast<size_t>(split)), 1000);
  }
  ~TwoShards() {
    fs::remove(a);
    fs::remove(b);
  }
};

}  // namespace

TEST(SampleOrder, EachEpochIsAPermutationAndAPureFunction) {
  const SampleOrder order(1000, 7), same(1000, 7), other_seed(1000, 8);
  std::vector<std::vector<uint32_t>> perms;
  for (int64_t e = 0; e < 3; ++e) {
    auto p = order.epoch_permutation(e);
    auto sorted = p;
    std::sort(sorted.begin(), sorted.end());
    for (uint32_t i = 0; i < 1000; ++i) ASSERT_EQ(sorted[i], i) << "epoch " << e;
    EXPECT_EQ(p, same.epoch_permutation(e));
    EXPECT_NE(p, other_seed.epoch_permutation(e));
    for (int64_t k = 0; k < 1000; ++k) ASSERT_EQ(order.sample_at(e * 1000 + k), p[k]);
    perms.push_back(std::move(p));
  }
  EXPECT_NE(perms[0], perms[1]);
  EXPECT_NE(perms[1], perms[2]);
  // Random access in any order gives the same answers (the epoch cache is invisible).
  const SampleOrder fresh(1000, 7);
  EXPECT_EQ(fresh.sample_at(2999), perms[2][999]);
  EXPECT_EQ(fresh.sample_at(5), perms[0][5]);
  EXPECT_EQ(fresh.sample_at(1500), perms[1][500]);
  // Not the identity, and not a near-identity.
  int fixed = 0;
  for (uint32_t i = 0; i < 1000; ++i) fixed += perms[0][i] == i;
  EXPECT_LT(fixed, 10);
}

TEST(SampleOrder, ShuffleIsUnbiased) {
  // Over many epochs each of n items lands in slot 0 equally often (chi-square, n-1 dof).
  const int n = 8, epochs = 8000;
  const SampleOrder order(n, 1);
  std::vector<int> hits(n, 0), last(n, 0);
  for (int e = 0; e < epochs; ++e) {
    const auto p = order.epoch_permutation(e);
    ++hits[p[0]];
    ++last[p[n - 1]];
  }
  auto chi2 = [&](const std::vector<int>& h) {
    double c = 0;
    for (int x : h) c += (x - epochs / double(n)) * (x - epochs / double(n)) / (epochs / double(n));
    return c;
  };
  EXPECT_LT(chi2(hits), 24.3);  // p = 0.001 for 7 degrees of freedom
  EXPECT_LT(chi2(last), 24.3);
}

TEST(BatchLoader, StepSampleSetIsLayoutIndependent) {
  TwoShards data(4001, 1234);
  const TokenDataset ds({data.a, data.b}, 1000);
  const int64_t T = 16, B = 3;
  const BatchLoader loader(ds, T, 99);
  ASSERT_EQ(loader.n_samples(), 250);  // (4001 - 1) / 16
  for (int64_t step : {0, 1, 7, 20, 83}) {  // 83 * 12 crosses an epoch boundary
    std::vector<std::vector<int64_t>> per_layout;
    for (int64_t dp : {1, 2, 4}) {
      const BatchLayout layout{B, 4 / dp, dp};
      ASSERT_EQ(layout.global_samples(), 12);
      std::vector<int64_t> seen;
      for (int64_t m = 0; m < layout.micro_batches; ++m)
        for (int64_t r = 0; r < dp; ++r)
          for (int64_t b = 0; b < B; ++b) seen.push_back(loader.sample_index(step, m, r, b, layout));
      auto listed = loader.step_samples(step, layout);
      std::sort(seen.begin(), seen.end());
      std::sort(listed.begin(), listed.end());
      EXPECT_EQ(seen, listed);
      per_layout.push_back(seen);
    }
    EXPECT_EQ(per_layout[0], per_layout[1]) << "step " << step;
    EXPECT_EQ(per_layout[0], per_layout[2]) << "step " << step;
  }
  // Consecutive steps of one epoch never repeat a sample.
  const BatchLayout layout{B, 2, 2};
  std::vector<int64_t> epoch;
  for (int64_t s = 0; s < 250 / 12; ++s) {
    auto v = loader.step_samples(s, layout);
    epoch.insert(epoch.end(), v.begin(), v.end());
  }
  std::sort(epoch.begin(), epoch.end());
  EXPECT_EQ(std::adjacent_find(epoch.begin(), epoch.end()), epoch.end());
}

TEST(BatchLoader, FillsInputsAndShiftedTargets) {
  TwoShards data(1000, 500);
  const TokenDataset ds({data.a, data.b});
  const int64_t T = 32, B = 2;
  const BatchLoader loader(ds, T, 5);
  const BatchLayout layout{B, 2, 2};
  std::vector<int32_t> in(B * T), tgt(B * T);
  for (int64_t m = 0; m < 2; ++m)
    for (int64_t r = 0; r < 2; ++r) {
      loader.fill(3, m, r, layout, in.data(), tgt.data());
      for (int64_t b = 0; b < B; ++b) {
        const int64_t i = loader.sample_index(3, m, r, b, layout);
        for (int64_t t = 0; t < T; ++t) {
          ASSERT_EQ(static_cast<uint32_t>(in[b * T + t]), token_at(i * T + t));
          ASSERT_EQ(static_cast<uint32_t>(tgt[b * T + t]), token_at(i * T + t + 1));
        }
      }
    }
  // Sample 15 spans the shard boundary at token 500 (tokens 480..512).
  std::vector<int32_t> si(T), st(T);
  read_sample(ds, T, 15, si.data(), st.data());
  for (int64_t t = 0; t < T; ++t) EXPECT_EQ(static_cast<uint32_t>(st[t]), token_at(15 * T + t + 1));
}

TEST(ValLoader, SequentialAndWrapsAround) {
  TwoShards data(161, 80);  // 10 samples of 16
  const TokenDataset ds({data.a, data.b});
  const ValLoader val(ds, 16);
  ASSERT_EQ(val.n_samples(), 10);
  std::vector<int32_t> in(4 * 16), tgt(4 * 16);
  val.fill(2, 4, in.data(), tgt.data());  // samples 8, 9, 0, 1
  const int64_t want[] = {8, 9, 0, 1};
  for (int b = 0; b < 4; ++b) {
    EXPECT_EQ(static_cast<uint32_t>(in[b * 16]), token_at(want[b] * 16));
    EXPECT_EQ(static_cast<uint32_t>(tgt[b * 16 + 15]), token_at(want[b] * 16 + 16));
  }
}

TEST(BatchLoader, TooSmallDatasetNamesFilesAndCounts) {
  TwoShards data(10, 4);
  const TokenDataset ds({data.a, data.b});
  try {
    BatchLoader loader(ds, 10, 1);
    ADD_FAILURE() << "10 tokens cannot hold a sample of 11";
  } catch (const UserError& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find(data.a + " (4 tokens)"), std::string::npos) << msg;
    EXPECT_NE(msg.find(data.b + " (6 tokens)"), std::string::npos) << msg;
    EXPECT_NE(msg.find("needs 11 tokens"), std::string::npos) << msg;
    EXPECT_NE(msg.find("10 tokens in all"), std::string::npos) << msg;
  }
  EXPECT_EQ(BatchLoader(ds, 9, 1).n_samples(), 1);  // exactly T + 1 tokens: one sample
  // One shard: its count once ("6 tokens in X (6 tokens)" repeated it).
  const TokenDataset one({data.b});
  try {
    BatchLoader loader(one, 10, 1);
    ADD_FAILURE() << "6 tokens cannot hold a sample of 11";
  } catch (const UserError& e) {
    const std::string msg = e.what();
    EXPECT_EQ(msg, "dataset too small: " + data.b + " (6 tokens); one sample of seq_len 10 "
                   "needs 11 tokens");
  }
}
