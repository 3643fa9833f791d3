// Token shards: write/read in both widths, llm.c's format written by hand, every malformed
// file rejected with a message naming the file and the problem, atomic writes, and the
// multi-shard TokenDataset (cross-boundary reads, layout-independent content hash).
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <unistd.h>

#include "core/error.h"
#include "data/token_dataset.h"
#include "data/token_shard.h"

using namespace llmpi;
namespace fs = std::filesystem;

namespace {

std::string temp_path(const std::string& name) {
  return (fs::temp_directory_path() /
          ("llmpi_shard_" + std::to_string(::getpid()) + "_" + name)).string();
}

void write_bytes(const std::string& path, const std::vector<uint8_t>& bytes) {
  std::ofstream(path, std::ios::binary)
      .write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
}

template <class T>
void put(std::vector<uint8_t>& out, T v) {
  uint8_t b[sizeof(T)];
  std::memcpy(b, &v, sizeof(T));
  out.insert(out.end(), b, b + sizeof(T));
}

// Our header by hand: magic, version, width, count.
std::vector<uint8_t> llmpi_header(uint32_t version, uint32_t width, uint64_t count) {
  std::vector<uint8_t> h(kShardMagic, kShardMagic + 8);
  put(h, version);
  put(h, width);
  put(h, count);
  return h;
}

// llm.c's header by hand: 256 int32, [0] magic, [1] version, [2] count.
std::vector<uint8_t> llmc_file(int32_t magic, int32_t version, int32_t count,
                               const std::vector<uint16_t>& tokens) {
  std::vector<uint8_t> f;
  std::vector<int32_t> header(256, 0);
  header[0] = magic, header[1] = version, header[2] = count;
  for (int32_t x : header) put(f, x);
  for (uint16_t t : tokens) put(f, t);
  return f;
}

void expect_rejected(const std::string& path, const std::string& fragment, int64_t vocab = 0) {
  try {
    TokenShard s(path, vocab);
    ADD_FAILURE() << "accepted malformed shard, expected: " << fragment;
  } catch (const UserError& e) {
    const std::string msg = e.what();
    EXPECT_EQ(msg.rfind(path + ":", 0), 0u) << "message must start with the file: " << msg;
    EXPECT_NE(msg.find(fragment), std::string::npos) << msg << "\nexpected: " << fragment;
  }
}

}  // namespace

TEST(TokenShard, WidthFollowsVocabulary) {
  EXPECT_EQ(token_width_for_vocab(50257), 2);
  EXPECT_EQ(token_width_for_vocab(65536), 2);
  EXPECT_EQ(token_width_for_vocab(65537), 4);
  EXPECT_EQ(token_width_for_vocab(128256), 4);
}

TEST(TokenShard, RoundTripBothWidths) {
  for (int64_t vocab : {int64_t{50257}, int64_t{128256}}) {
    std::vector<uint32_t> tokens;
    for (uint32_t i = 0; i < 5000; ++i) tokens.push_back((i * 7919u) % vocab);
    tokens.push_back(static_cast<uint32_t>(vocab - 1));  // largest id survives
    const std::string path = temp_path("rt_" + std::to_string(vocab) + ".bin");
    write_token_shard(path, tokens, vocab);
    const int width = token_width_for_vocab(vocab);
    EXPECT_EQ(fs::file_size(path), kShardV1HeaderBytes + tokens.size() * width);  // no tokenizer
    EXPECT_FALSE(fs::exists(path + ".tmp"));

    const TokenShard s(path, vocab);
    EXPECT_EQ(s.format(), ShardFormat::llmpi);
    EXPECT_EQ(s.width(), width);
    ASSERT_EQ(s.size(), static_cast<int64_t>(tokens.size()));
    std::vector<int32_t> back(tokens.size());
    s.read(0, s.size(), back.data());
    for (size_t i = 0; i < tokens.size(); ++i) ASSERT_EQ(static_cast<uint32_t>(back[i]), tokens[i]);
    EXPECT_EQ(s[s.size() - 1], static_cast<uint32_t>(vocab - 1));
    // A token >= a smaller vocabulary is caught, naming the index.
    expect_rejected(path, "token " + std::to_string(vocab - 1) + " at index 5000 is out of range",
                    vocab - 1);
    fs::remove(path);
  }
}

TEST(TokenShard, EmptyShardIsValid) {
  const std::string path = temp_path("empty_tokens.bin");
  write_token_shard(path, {}, 1000);
  EXPECT_EQ(TokenShard(path).size(), 0);
  fs::remove(path);
}

TEST(TokenShard, ReadsLlmcFormat) {
  const std::vector<uint16_t> tokens = {50256, 464, 2068, 7586, 21831, 0, 65535};
  const std::string path = temp_path("llmc.bin");
  write_bytes(path, llmc_file(20240520, 1, static_cast<int32_t>(tokens.size()), tokens));
  const TokenShard s(path);
  EXPECT_EQ(s.format(), ShardFormat::llmc);
  EXPECT_EQ(s.width(), 2);
  ASSERT_EQ(s.size(), 7);
  for (size_t i = 0; i < tokens.size(); ++i) EXPECT_EQ(s[static_cast<int64_t>(i)], tokens[i]);
  fs::remove(path);
}

TEST(TokenShard, RejectsMalformedFiles) {
  const std::string path = temp_path("bad.bin");
  auto with_tokens = [](std::vector<uint8_t> h, size_t n_bytes) {
    h.resize(h.size() + n_bytes, 1);
    return h;
  };
  auto truncated = [](std::vector<uint8_t> f, size_t n) {
    f.resize(n);
    return f;
  };
  struct Case {
    std::vector<uint8_t> bytes;
    std::string fragment;
  };
  std::vector<uint8_t> junk = {'G', 'A', 'R', 'B', 'A', 'G', 'E', '!', 0, 0, 0, 0};
  const std::vector<Case> cases = {
      {{}, "file too short"},
      {{'L', 'L', 'M'}, "file too short"},
      {junk, "bad magic"},
      {std::vector<uint8_t>(kShardMagic, kShardMagic + 8), "truncated header"},
      {with_tokens(llmpi_header(4, 2, 4), 8), "unsupported token shard version 4"},
      {with_tokens(llmpi_header(2, 2, 4), 8), "truncated header (32 bytes, expected at least 48)"},
      // Version 3 needs its document trailer after the tokens (and the 48-byte header).
      {with_tokens(llmpi_header(3, 2, 4), 8), "truncated header (32 bytes, expected at least 48)"},
      {with_tokens(llmpi_header(1, 3, 4), 12), "bad token width 3"},
      {with_tokens(llmpi_header(1, 2, 10), 8), "size mismatch: header says 10 tokens"},
      {with_tokens(llmpi_header(1, 2, 10), 8), "(truncated?)"},
      {with_tokens(llmpi_header(1, 4, 2), 9), "file has 33 bytes"},
      {with_tokens(llmpi_header(1, 4, uint64_t{1} << 62), 8), "size mismatch"},
      // Issue #13 item 10: a count whose byte size overflows 64 bits is not shown wrapped
      // (it said "(24 bytes)").
      {with_tokens(llmpi_header(1, 4, uint64_t{1} << 62), 0),
       "4611686018427387904 tokens of 4 bytes (more than 2^64 bytes) but the file has 24 bytes"},
      {llmc_file(20240520, 1, 5, {1, 2, 3}), "size mismatch: llm.c header says 5 uint16 tokens"},
      {llmc_file(20240520, 7, 1, {1}), "unsupported llm.c shard version 7"},
      {llmc_file(20240520, 1, -3, {}), "negative token count"},
      {truncated(llmc_file(20240520, 1, 0, {}), 100), "truncated llm.c header"},
  };
  for (const auto& c : cases) {
    write_bytes(path, c.bytes);
    expect_rejected(path, c.fragment);
  }
  write_bytes(path, llmc_file(20240520, 1, 3, {1, 2, 900}));
  expect_rejected(path, "token 900 at index 2 is out of range for vocabulary size 900", 900);
  fs::remove(path);
  expect_rejected(path, "cannot open");
}

TEST(TokenShard, WriterWithoutCommitLeavesNothing) {
  const std::string path = temp_path("aborted.bin");
  {
    TokenShardWriter w(path, 2);
    const std::vector<uint32_t> t = {1, 2, 3};
    w.append(t);
    EXPECT_TRUE(fs::exists(path + ".tmp"));
  }  // e.g. an exception unwound the writer
  EXPECT_FALSE(fs::exists(path));
  EXPECT_FALSE(fs::exists(path + ".tmp"));
}

TEST(TokenDataset, ConcatenatesShardsAndHashesContentOnly) {
  std::vector<uint32_t> all;
  for (uint32_t i = 0; i < 1000; ++i) all.push_back((i * 31u + 7u) % 3000u);
  const std::string a = temp_path("ds_a.bin"), b = temp_path("ds_b.bin"),
                    c = temp_path("ds_c.bin"), whole = temp_path("ds_whole.bin"),
                    wide = temp_path("ds_wide.bin");
  write_token_shard(a, std::span(all).subspan(0, 333), 3000);
  write_token_shard(b, std::span(all).subspan(333, 0), 3000);  // an empty shard in the middle
  write_token_shard(c, std::span(all).subspan(333), 3000);
  write_token_shard(whole, all, 3000);
  write_token_shard(wide, all, 100000);  // same tokens, 4-byte width

  const TokenDataset split({a, b, c}, 3000);
  ASSERT_EQ(split.size(), 1000);
  std::vector<int32_t> got(400);
  split.copy(300, 400, got.data());  // crosses both boundaries
  for (int i = 0; i < 400; ++i) ASSERT_EQ(static_cast<uint32_t>(got[i]), all[300 + i]);

  const TokenDataset one({whole}), four({wide});
  EXPECT_EQ(split.content_hash(), one.content_hash());
  EXPECT_EQ(four.content_hash(), one.content_hash());
  EXPECT_NE(split.describe().find(a + " (333 tokens)"), std::string::npos);

  all[777] ^= 1;  // one token changed → different hash
  write_token_shard(whole, all, 3000);
  EXPECT_NE(TokenDataset({whole}).content_hash(), four.content_hash());
  all.pop_back();  // one token fewer → different hash
  write_token_shard(whole, all, 3000);
  EXPECT_NE(TokenDataset({whole}).content_hash(), four.content_hash());

  // Token out of range in any shard is reported with that shard's name.
  try {
    TokenDataset({a, c}, 100);
    ADD_FAILURE() << "vocabulary check missed";
  } catch (const UserError& e) {
    EXPECT_NE(std::string(e.what()).find(a + ": token"), std::string::npos) << e.what();
  }
  for (const auto& p : {a, b, c, whole, wide}) fs::remove(p);
}

// ---- version 3: documents and loss mask (fine-tuning data) --------------------------------

namespace {

// Three documents of 3, 1 and 6 tokens with masks; width 2 → the tokens end at byte 68 (48-byte
// header), so the trailer starts after 4 bytes of padding.
struct Docs {
  std::vector<std::vector<uint32_t>> tokens = {{5, 6, 7}, {8}, {9, 10, 11, 12, 13, 14}};
  std::vector<std::vector<uint8_t>> mask = {{0, 1, 1}, {1}, {0, 0, 1, 1, 0, 1}};
};

void write_docs(const std::string& path, const Docs& d, bool with_mask, int width = 2) {
  TokenShardWriter w(path, width,
                     with_mask ? ShardContent::documents_with_mask : ShardContent::documents);
  for (size_t k = 0; k < d.tokens.size(); ++k)
    w.append_document(d.tokens[k], with_mask ? std::span<const uint8_t>(d.mask[k])
                                             : std::span<const uint8_t>());
  w.commit();
}

std::vector<uint8_t> read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), {}};
}

}  // namespace

TEST(TokenShard, Version3DocumentsAndMaskRoundTrip) {
  const std::string path = temp_path("docs.bin");
  const Docs d;
  for (int width : {2, 4}) {
    write_docs(path, d, true, width);
    const TokenShard s(path, 100);
    ASSERT_EQ(s.size(), 10);
    EXPECT_TRUE(s.has_documents());
    EXPECT_TRUE(s.has_loss_mask());
    EXPECT_EQ(s.document_offsets(), (std::vector<int64_t>{0, 3, 4, 10}));
    std::vector<uint8_t> m(10);
    s.read_mask(0, 10, m.data());
    EXPECT_EQ(m, (std::vector<uint8_t>{0, 1, 1, 1, 0, 0, 1, 1, 0, 1}));
    std::vector<int32_t> t(10);
    s.read(0, 10, t.data());
    EXPECT_EQ(t, (std::vector<int32_t>{5, 6, 7, 8, 9, 10, 11, 12, 13, 14}));
  }
  // Byte layout (docs/data-format.md): version 3, the 48-byte header, tokens, zero padding to 72,
  // trailer magic, flags 3, 3 documents, 4 offsets, 2 mask bytes.
  write_docs(path, d, true);
  const std::vector<uint8_t> f = read_file(path);
  ASSERT_EQ(f.size(), 72u + 24 + 32 + 2);
  EXPECT_EQ(f[8], 3);
  EXPECT_EQ(std::memcmp(f.data() + 72, kShardTrailerMagic, 8), 0);
  EXPECT_EQ(f[80], 3);
  EXPECT_EQ(f[88], 3);
  EXPECT_EQ(f[72 + 24 + 8 * 3], 10);                 // the last offset = count
  EXPECT_EQ(f[f.size() - 2], 0b11001110);            // tokens 0..7, least significant first
  EXPECT_EQ(f[f.size() - 1], 0b10);                  // tokens 8, 9
  // Without a mask: documents only; read_mask gives 1 everywhere.
  write_docs(path, d, false);
  const TokenShard s(path);
  EXPECT_FALSE(s.has_loss_mask());
  std::vector<uint8_t> m(10);
  s.read_mask(0, 10, m.data());
  EXPECT_EQ(m, std::vector<uint8_t>(10, 1));
  fs::remove(path);
}

TEST(TokenShard, Version3MalformedTrailersAreRejected) {
  const std::string path = temp_path("bad_docs.bin");
  write_docs(path, Docs{}, true);
  const std::vector<uint8_t> good = read_file(path);
  auto patched = [&](size_t at, uint8_t v) {
    std::vector<uint8_t> f = good;
    f[at] = v;
    return f;
  };
  struct Case {
    std::vector<uint8_t> bytes;
    std::string fragment;
  };
  std::vector<uint8_t> cut = good;
  cut.resize(good.size() - 1);
  std::vector<uint8_t> longer = good;
  longer.push_back(0);
  const std::vector<Case> cases = {
      {patched(69, 1), "nonzero padding byte 69"},
      {patched(72, 'X'), "without the \"LLMPIDOC\" trailer at byte 72"},
      {patched(80, 2), "bad trailer flags 2"},
      {patched(80, 7), "bad trailer flags 7"},
      {patched(88, 11), "11 documents for 10 tokens"},
      {patched(96, 1), "document offset 0 is 1"},
      {patched(104, 5), "document offset 2 is 4"},        // after offset 1 = 5: not increasing
      {patched(120, 9), "document offset 3 is 9"},        // must end at the count
      {patched(good.size() - 1, 0b110), "loss mask bits set past the last token"},
      {cut, "truncated document trailer"},
      {longer, "1 unexpected bytes after the document trailer"},
      {patched(8, 4), "unsupported token shard version 4"},
  };
  for (const Case& c : cases) {
    write_bytes(path, c.bytes);
    expect_rejected(path, c.fragment);
  }
  fs::remove(path);
}

TEST(TokenShard, WriterKeepsOneKindOfData) {
  const std::string path = temp_path("mixed.bin");
  const std::vector<uint32_t> t = {1, 2};
  const std::vector<uint8_t> m = {1, 1};
  {
    TokenShardWriter w(path, 2, ShardContent::documents_with_mask);
    w.append_document(t, m);
    EXPECT_THROW(w.append(t), InternalError);
    EXPECT_THROW(w.append_document(t, {}), InternalError);   // a mask is needed
    EXPECT_THROW(w.append_document({}, {}), InternalError);  // an empty document
    EXPECT_THROW(w.append_document(t, std::vector<uint8_t>{1}), InternalError);
  }
  TokenShardWriter plain(path, 2);
  EXPECT_THROW(plain.append_document(t, m), InternalError);
  // An empty document shard is still version 3: it records zero documents.
  {
    TokenShardWriter empty(path, 2, ShardContent::documents_with_mask);
    empty.commit();
  }
  const TokenShard s(path);
  EXPECT_TRUE(s.has_documents());
  EXPECT_TRUE(s.has_loss_mask());
  EXPECT_EQ(s.document_offsets(), std::vector<int64_t>{0});
  fs::remove(path);
}

TEST(TokenDataset, DocumentsAndMaskAcrossShards) {
  const std::string a = temp_path("dm_a.bin"), b = temp_path("dm_b.bin"), c = temp_path("dm_c.bin");
  write_docs(a, Docs{}, true);
  write_docs(b, Docs{}, true);
  const TokenDataset ds({a, b}, 100);
  EXPECT_TRUE(ds.has_documents());
  EXPECT_TRUE(ds.has_loss_mask());
  EXPECT_EQ(ds.document_offsets(), (std::vector<int64_t>{0, 3, 4, 10, 13, 14, 20}));
  std::vector<uint8_t> m(6);
  ds.copy_mask(8, 6, m.data());  // across the shard boundary
  EXPECT_EQ(m, (std::vector<uint8_t>{0, 1, 0, 1, 1, 1}));
  const std::vector<uint32_t> plain = {1, 2, 3};
  write_token_shard(c, plain, 100);
  const TokenDataset mixed({a, c}, 100);
  EXPECT_FALSE(mixed.has_documents());
  EXPECT_EQ(mixed.document_offsets(), (std::vector<int64_t>{0, 3, 4, 10, 13}));
  for (const auto& p : {a, b, c}) fs::remove(p);
}
