// SftLoader (data/sft_loader.h): next-fit packing of whole documents or pairs, padding as a
// document of its own, targets from the mask within documents, the rows of a step
// independent of the layout, and the errors for data that is not fine-tuning data, odd pairs
// and over-long units.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <unistd.h>

#include "core/error.h"
#include "data/sft_loader.h"
#include "data/token_shard.h"

using namespace llmpi;
namespace fs = std::filesystem;

namespace {

struct Shard {
  std::string path;
  explicit Shard(const std::string& name, const std::vector<std::vector<uint32_t>>& docs,
                 bool mask = true)
      : path((fs::temp_directory_path() /
              ("llmpi_sftl_" + std::to_string(::getpid()) + "_" + name)).string()) {
    TokenShardWriter w(path, 2, mask ? ShardContent::documents_with_mask : ShardContent::documents);
    for (const auto& d : docs) {
      std::vector<uint8_t> m(d.size(), 0);
      for (size_t i = d.size() / 2; i < d.size(); ++i) m[i] = 1;  // the second half is "answer"
      w.append_document(d, mask ? std::span<const uint8_t>(m) : std::span<const uint8_t>());
    }
    w.commit();
  }
  ~Shard() { fs::remove(path); }
};

// Documents numbered so a token tells its document: doc k holds 10k+1, 10k+2, ...
std::vector<std::vector<uint32_t>> docs_of(std::vector<int> lengths) {
  std::vector<std::vector<uint32_t>> out;
  for (size_t k = 0; k < lengths.size(); ++k) {
    out.emplace_back();
    for (int i = 0; i < lengths[k]; ++i) out.back().push_back(uint32_t(10 * (k + 1) + i + 1));
  }
  return out;
}

struct Row {
  std::vector<int32_t> ids, targets, starts;
};
Row row_of(const SftLoader& l, int64_t r) {
  Row x{std::vector<int32_t>(size_t(l.seq_len())), std::vector<int32_t>(size_t(l.seq_len())),
        std::vector<int32_t>(size_t(l.seq_len()))};
  l.fill_row(r, x.ids.data(), x.targets.data(), x.starts.data());
  return x;
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const UserError& e) {
    return e.what();
  }
  return "(no error)";
}

}  // namespace

TEST(SftLoader, NextFitPackingAndRows) {
  const Shard s("pack.bin", docs_of({3, 5, 2, 7, 4}));
  const TokenDataset ds({s.path});
  const SftLoader packed(ds, 8, 1, /*packing=*/true, /*pairs=*/false);
  ASSERT_EQ(packed.n_rows(), 4);  // [3 5] [2] [7] [4]
  const Row r0 = row_of(packed, 0);
  EXPECT_EQ(r0.ids, (std::vector<int32_t>{11, 12, 13, 21, 22, 23, 24, 25}));
  EXPECT_EQ(r0.starts, (std::vector<int32_t>{0, 0, 0, 3, 3, 3, 3, 3}));
  // Doc 1 (mask 0 1 1) learns its tokens 1 and 2, predicted from tokens 0 and 1; doc 2 (mask
  // 0 0 1 1 1) its last three; nothing crosses the boundary at 3.
  EXPECT_EQ(r0.targets, (std::vector<int32_t>{12, 13, -1, -1, 23, 24, 25, -1}));
  const Row r1 = row_of(packed, 1);
  EXPECT_EQ(r1.ids, (std::vector<int32_t>{31, 32, 0, 0, 0, 0, 0, 0}));
  EXPECT_EQ(r1.starts, (std::vector<int32_t>{0, 0, 2, 2, 2, 2, 2, 2}));  // padding: its own
  EXPECT_EQ(r1.targets, (std::vector<int32_t>{32, -1, -1, -1, -1, -1, -1, -1}));

  const SftLoader one_per_row(ds, 8, 1, /*packing=*/false, false);
  EXPECT_EQ(one_per_row.n_rows(), 5);
  EXPECT_EQ(row_of(one_per_row, 1).ids, (std::vector<int32_t>{21, 22, 23, 24, 25, 0, 0, 0}));
}

TEST(SftLoader, PairsStayTogether) {
  const Shard s("pairs.bin", docs_of({2, 3, 1, 1, 4, 4}));
  const TokenDataset ds({s.path});
  const SftLoader l(ds, 8, 3, true, /*pairs=*/true);
  ASSERT_EQ(l.n_units(), 3);
  ASSERT_EQ(l.n_rows(), 2);  // [5 + 2] [8]
  std::vector<int32_t> ids(8), tg(8), st(8);
  std::vector<RowDocument> docs;
  l.fill_row(0, ids.data(), tg.data(), st.data(), &docs, 0);
  ASSERT_EQ(docs.size(), 4u);
  EXPECT_EQ(docs[0].unit, 0);
  EXPECT_TRUE(docs[0].chosen);
  EXPECT_FALSE(docs[1].chosen);
  EXPECT_EQ(docs[1].begin, 2);
  EXPECT_EQ(docs[1].length, 3);
  EXPECT_EQ(docs[3].unit, 1);
  EXPECT_EQ(st, (std::vector<int32_t>{0, 0, 2, 2, 2, 5, 6, 7}));
}

TEST(SftLoader, StepRowsAreLayoutIndependent) {
  std::vector<int> lens;
  for (int k = 0; k < 40; ++k) lens.push_back(1 + (k * 7) % 6);
  const Shard s("order.bin", docs_of(lens));
  const TokenDataset ds({s.path});
  const SftLoader l(ds, 8, 11, true, false);
  auto rows_of_step = [&](BatchLayout layout) {
    std::vector<std::vector<int32_t>> rows;
    const int64_t T = 8, B = layout.batch_size;
    for (int64_t m = 0; m < layout.micro_batches; ++m)
      for (int64_t r = 0; r < layout.dp_size; ++r) {
        std::vector<int32_t> ids(size_t(B * T)), tg(ids.size()), st(ids.size());
        l.fill(2, m, r, layout, ids.data(), tg.data(), st.data());
        for (int64_t b = 0; b < B; ++b) rows.emplace_back(ids.begin() + b * T, ids.begin() + (b + 1) * T);
      }
    std::sort(rows.begin(), rows.end());
    return rows;
  };
  EXPECT_EQ(rows_of_step({2, 1, 2}), rows_of_step({1, 4, 1}));
  EXPECT_EQ(rows_of_step({4, 1, 1}), rows_of_step({1, 2, 2}));
}

TEST(SftLoader, Errors) {
  const Shard plain("plain.bin", docs_of({3, 3}), /*mask=*/false);
  EXPECT_NE(error_of([&] { SftLoader(TokenDataset({plain.path}), 8, 1, true, false); })
                .find("not fine-tuning data"),
            std::string::npos);
  const Shard odd("odd.bin", docs_of({3, 3, 3}));
  EXPECT_NE(error_of([&] { SftLoader(TokenDataset({odd.path}), 8, 1, true, true); })
                .find("3 documents, not whole preference pairs"),
            std::string::npos);
  const Shard longer("long.bin", docs_of({3, 9}));
  const std::string e = error_of([&] { SftLoader(TokenDataset({longer.path}), 8, 1, true, false); });
  EXPECT_NE(e.find("document 1 (tokens 3..12) has 9 tokens, more than seq_len 8"),
            std::string::npos) << e;
  EXPECT_NE(error_of([&] { SftLoader(TokenDataset({longer.path}), 8, 1, true, true); })
                .find("preference pair 0 (tokens 0..12) has 12 tokens"),
            std::string::npos);
}
