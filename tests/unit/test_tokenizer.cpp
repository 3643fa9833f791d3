// Byte-level BPE: pre-tokenization rules, lossless round trips (random bytes incl. NUL and
// invalid UTF-8, real text), compression on real text, training determinism, the incremental
// trainer against a brute-force reference, and the tokenizer file (identity + malformed files).
// Real text comes from the `fortunes` package (/usr/share/games/fortunes): the tests FAIL if
// it is missing.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <unistd.h>

#include "core/error.h"
#include "core/rng.h"
#include "data/bpe_trainer.h"
#include "data/pretokenize.h"
#include "data/tokenizer.h"

using namespace llmpi;
namespace fs = std::filesystem;

namespace {

const char* kFortuneDir = "/usr/share/games/fortunes";

// All fortune text files (no .dat index files, no .u8 copies), sorted, as (name, contents).
std::vector<std::pair<std::string, std::string>> fortune_files() {
  std::vector<std::pair<std::string, std::string>> out;
  if (!fs::is_directory(kFortuneDir)) return out;
  for (const auto& e : fs::directory_iterator(kFortuneDir)) {
    if (!e.is_regular_file() || e.path().has_extension()) continue;
    std::ifstream f(e.path(), std::ios::binary);
    std::stringstream ss;
    ss << f.rdbuf();
    out.emplace_back(e.path().filename().string(), ss.str());
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<std::string> chunks_of(std::string_view s) {
  std::vector<std::string> out;
  for_each_chunk(s, [&](std::string_view c) { out.emplace_back(c); });
  return out;
}

std::string random_bytes(uint64_t seed, size_t n) {
  std::string s(n, '\0');
  const uint64_t key = rng_key(seed, "tokenizer-test");
  for (size_t i = 0; i < n; ++i) s[i] = static_cast<char>(rng_bits(key, i) & 0xFF);
  return s;
}

std::string temp_path(const std::string& name) {
  return (fs::temp_directory_path() /
          ("llmpi_tok_" + std::to_string(::getpid()) + "_" + name)).string();
}

// Fortunes split in two: files 0, 2, 4, ... train; the others are held out.
struct Corpus {
  std::string train, held_out;
};
const Corpus& corpus() {
  static const Corpus c = [] {
    Corpus c;
    const auto files = fortune_files();
    for (size_t i = 0; i < files.size(); ++i) (i % 2 ? c.held_out : c.train) += files[i].second;
    return c;
  }();
  return c;
}

const Tokenizer& trained_tokenizer() {
  static const Tokenizer tok = [] {
    BpeTrainer t;
    t.add_text(corpus().train);
    return t.train(1024);
  }();
  return tok;
}

// Brute force: recount every pair from scratch each step. A pair's count in a word is the
// number of times a left-to-right merge of it would fire there.
std::vector<BpeMerge> reference_train(const std::map<std::string, int64_t>& word_counts,
                                      int64_t n_merges) {
  std::vector<std::pair<std::vector<uint32_t>, int64_t>> words;
  for (const auto& [w, c] : word_counts)
    words.push_back({std::vector<uint32_t>(w.begin(), w.end()), c});
  for (auto& [w, c] : words)
    for (auto& x : w) x &= 0xFF;
  std::vector<BpeMerge> merges;
  while (static_cast<int64_t>(merges.size()) < n_merges) {
    std::map<std::pair<uint32_t, uint32_t>, int64_t> counts;
    for (const auto& [w, c] : words) {
      std::set<std::pair<uint32_t, uint32_t>> kinds;
      for (size_t i = 0; i + 1 < w.size(); ++i) kinds.insert({w[i], w[i + 1]});
      for (const auto& k : kinds) {
        int64_t n = 0;
        for (size_t i = 0; i + 1 < w.size();)
          if (w[i] == k.first && w[i + 1] == k.second) ++n, i += 2;
          else ++i;
        counts[k] += n * c;
      }
    }
    std::pair<uint32_t, uint32_t> best{};
    int64_t best_count = 0;
    for (const auto& [k, n] : counts)  // map order: ties keep the smallest pair
      if (n > best_count) best = k, best_count = n;
    if (best_count < 2) break;
    const uint32_t z = 256 + static_cast<uint32_t>(merges.size());
    merges.push_back({best.first, best.second});
    for (auto& [w, c] : words) {
      std::vector<uint32_t> r;
      for (size_t i = 0; i < w.size();)
        if (i + 1 < w.size() && w[i] == best.first && w[i + 1] == best.second) r.push_back(z), i += 2;
        else r.push_back(w[i++]);
      w = r;
    }
  }
  return merges;
}

}  // namespace

TEST(Pretokenize, SplitsLikeGpt2) {
  using V = std::vector<std::string>;
  EXPECT_EQ(chunks_of("Hello world"), (V{"Hello", " world"}));
  EXPECT_EQ(chunks_of("don't stop"), (V{"don", "'t", " stop"}));
  EXPECT_EQ(chunks_of("we'll go"), (V{"we", "'ll", " go"}));
  EXPECT_EQ(chunks_of("abc123 4.5!!"), (V{"abc", "123", " 4", ".", "5", "!!"}));
  EXPECT_EQ(chunks_of("a  b"), (V{"a", " ", " b"}));
  EXPECT_EQ(chunks_of("x\n\ny"), (V{"x", "\n", "\n", "y"}));
  EXPECT_EQ(chunks_of("end   "), (V{"end", "   "}));
  EXPECT_EQ(chunks_of(" caf\xC3\xA9 ok"), (V{" caf\xC3\xA9", " ok"}));
}

TEST(Pretokenize, ChunksConcatenateToInputAndRespectMaxLength) {
  std::string s = random_bytes(3, 20000) + std::string(1000, 'a') + " end";
  std::string joined;
  for (const auto& c : chunks_of(s)) {
    EXPECT_FALSE(c.empty());
    EXPECT_LE(c.size(), kMaxChunkBytes);
    joined += c;
  }
  EXPECT_EQ(joined, s);
}

TEST(Tokenizer, RoundTripsRandomBytesIncludingNulAndInvalidUtf8) {
  const Tokenizer& tok = trained_tokenizer();
  ASSERT_GT(tok.merges().size(), 500u) << "fortunes corpus missing or tiny";
  for (uint64_t seed = 0; seed < 20; ++seed) {
    const std::string s = random_bytes(seed, 1 + seed * 97);
    EXPECT_EQ(tok.decode(tok.encode(s)), s) << "seed " << seed;
  }
  constexpr char kEdge[] = "\0\0\xFF\xFE\xC3(\xE2\x82 the\0 <|endoftext|>\x80";
  const std::string edge(kEdge, sizeof(kEdge) - 1);
  const auto ids = tok.encode(edge);
  EXPECT_EQ(tok.decode(ids), edge);
  EXPECT_EQ(std::count(ids.begin(), ids.end(), tok.eot_id()), 0)
      << "literal <|endoftext|> text must not become the special token";
  EXPECT_TRUE(tok.encode("").empty());
}

TEST(Tokenizer, RealTextRoundTripsAndCompresses) {
  ASSERT_TRUE(fs::is_directory(kFortuneDir))
      << kFortuneDir << " missing: install the Debian package 'fortunes'";
  const std::string& text = corpus().held_out;
  ASSERT_GT(text.size(), 500000u);
  const Tokenizer& tok = trained_tokenizer();
  EncodeCache cache;
  std::vector<uint32_t> ids;
  tok.encode_append(text, ids, &cache);
  EXPECT_EQ(tok.decode(ids), text);
  EXPECT_EQ(ids, tok.encode(text)) << "the cache must not change the encoding";
  // Held-out English with 767 merges: well under half a token per byte (≈ 0.33 typically).
  const double per_byte = static_cast<double>(ids.size()) / text.size();
  EXPECT_LT(per_byte, 0.45);
  for (uint32_t id : ids) ASSERT_LT(id, tok.eot_id());
}

TEST(Tokenizer, TrainingIsDeterministicAndOrderIndependent) {
  const std::vector<std::string> docs = {"the cat sat on the mat", "the dog sat on the log",
                                         "a cat and a dog", "the the the mat mat"};
  BpeTrainer a, b;
  for (const auto& d : docs) a.add_text(d);
  for (auto it = docs.rbegin(); it != docs.rend(); ++it) b.add_text(*it);
  const Tokenizer ta = a.train(300), tb = b.train(300);
  ASSERT_FALSE(ta.merges().empty());
  ASSERT_EQ(ta.merges().size(), tb.merges().size());
  for (size_t i = 0; i < ta.merges().size(); ++i) {
    EXPECT_EQ(ta.merges()[i].left, tb.merges()[i].left);
    EXPECT_EQ(ta.merges()[i].right, tb.merges()[i].right);
  }
  // "at", "th" and "he" each occur 7 times (more than any other pair); the tie goes to the
  // smallest (left, right) id pair: ('a','t') = (97, 116).
  EXPECT_EQ(ta.token_bytes(256), "at");
  EXPECT_EQ(ta.vocab_size(), 257 + static_cast<int64_t>(ta.merges().size()));
  EXPECT_EQ(ta.eot_id(), ta.vocab_size() - 1);
  EXPECT_EQ(ta.token_bytes(ta.eot_id()), "<|endoftext|>");
}

TEST(Tokenizer, IncrementalTrainerMatchesBruteForce) {
  // Small corpus with runs of repeated letters (the overlapping-pair case) and ties.
  std::map<std::string, int64_t> counts;
  BpeTrainer t;
  std::string text;
  const uint64_t key = rng_key(9, "bpe-ref");
  for (int w = 0; w < 400; ++w) {
    std::string word = w ? " " : "";
    const int len = 1 + static_cast<int>(rng_bits(key, 2 * w) % 7);
    for (int i = 0; i < len; ++i) word += "aabbc"[rng_bits(key, 1000 + 10 * w + i) % 5];
    text += word;
  }
  t.add_text(text);
  for_each_chunk(text, [&](std::string_view c) { ++counts[std::string(c)]; });
  const auto ref = reference_train(counts, 60);
  const Tokenizer got = t.train(257 + 60);
  ASSERT_EQ(got.merges().size(), ref.size());
  for (size_t i = 0; i < ref.size(); ++i) {
    EXPECT_EQ(got.merges()[i].left, ref[i].left) << "merge " << i;
    EXPECT_EQ(got.merges()[i].right, ref[i].right) << "merge " << i;
  }
}

TEST(Tokenizer, SaveLoadIdentity) {
  const Tokenizer& tok = trained_tokenizer();
  const std::string path = temp_path("identity.bpe");
  tok.save(path);
  const Tokenizer back = Tokenizer::load(path);
  ASSERT_EQ(back.vocab_size(), tok.vocab_size());
  for (size_t i = 0; i < tok.merges().size(); ++i) {
    ASSERT_EQ(back.merges()[i].left, tok.merges()[i].left);
    ASSERT_EQ(back.merges()[i].right, tok.merges()[i].right);
  }
  const std::string sample = corpus().held_out.substr(0, 20000);
  EXPECT_EQ(back.encode(sample), tok.encode(sample));
  EXPECT_FALSE(fs::exists(path + ".tmp"));
  fs::remove(path);
}

TEST(Tokenizer, MalformedFilesNameFileAndLine) {
  const std::string path = temp_path("bad.bpe");
  const std::string good_head =
      "llmpi-bpe 1\npretokenizer bytes-gpt2-v1\nvocab_size 259\nspecial <|endoftext|> 258\n"
      "merges 2\n";
  struct Case {
    std::string text, fragment;
  };
  const std::vector<Case> cases = {
      {"hello\n", ":1: not an llmpi tokenizer file"},
      {"llmpi-bpe 2\n", ":1: unsupported tokenizer file version"},
      {"llmpi-bpe 1\npretokenizer regex\n", ":2: unknown pretokenizer 'regex'"},
      {"llmpi-bpe 1\npretokenizer bytes-gpt2-v1\nvocab 3\n", ":3: expected 'vocab_size ...'"},
      {"llmpi-bpe 1\npretokenizer bytes-gpt2-v1\nvocab_size x\n", ":3: expected a non-negative integer"},
      {"llmpi-bpe 1\npretokenizer bytes-gpt2-v1\nvocab_size 300\nspecial <|endoftext|> 299\nmerges 2\n",
       ":5: vocab_size 300 does not equal 257 + merges"},
      {"llmpi-bpe 1\npretokenizer bytes-gpt2-v1\nvocab_size 259\nspecial <|endoftext|> 3\nmerges 2\n",
       ":5: end-of-text id 3 must be the last id"},
      {good_head + "104 105\n", ":7: unexpected end of file"},
      {good_head + "104 105\n256 999\n", ":7: merge for token 257 refers to token 999"},
      {good_head + "104\n", ":6: expected a merge"},
      {good_head + "104 105\n104 105\n", ":7: duplicate merge (104, 105), first at line 6"},
      {good_head + "104 105\n256 32\nextra\n", ":8: unexpected content"},
  };
  for (const auto& c : cases) {
    std::ofstream(path, std::ios::binary) << c.text;
    try {
      Tokenizer::load(path);
      ADD_FAILURE() << "accepted: " << c.text;
    } catch (const UserError& e) {
      EXPECT_NE(std::string(e.what()).find(path + c.fragment), std::string::npos)
          << "message: " << e.what() << "\nexpected fragment: " << c.fragment;
    }
  }
  std::ofstream(path, std::ios::binary) << good_head << "104 105\n256 32\n";
  const Tokenizer ok = Tokenizer::load(path);
  EXPECT_EQ(ok.token_bytes(257), "hi ");
  fs::remove(path);
  EXPECT_THROW(Tokenizer::load(path), UserError);  // missing file
}
