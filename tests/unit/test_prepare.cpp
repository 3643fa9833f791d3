// The prepare pipeline: cleaning rules, dedup counts, JSONL unescaping (incl. surrogate
// pairs) and error positions, and `llmpi prepare` end to end on a temporary directory —
// counts in prepare.json, shard contents decoded back to the expected documents, the
// train/val split independent of file order, and no half-written train.bin after a failure.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <unistd.h>

#include "cli_util.h"
#include "core/error.h"
#include "data/jsonl.h"
#include "data/prepare.h"
#include "data/text_clean.h"
#include "data/token_shard.h"
#include "data/tokenizer.h"
#include "user_error_message.h"

using namespace llmpi;
using llmpi::testing::message_of;
namespace fs = std::filesystem;

namespace {

// `llmpi prepare ARGS...` through the command-line front end (no MPI runtime needed).
int cmd_prepare(std::vector<std::string> args) {
  args.insert(args.begin(), "prepare");
  return llmpi::testing::run_cli(args);
}

std::string read_file(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// Value of an integer key in prepare.json ("key": 123).
int64_t json_int(const std::string& json, const std::string& key) {
  const auto at = json.find("\"" + key + "\": ");
  EXPECT_NE(at, std::string::npos) << key;
  return at == std::string::npos ? -1 : std::stoll(json.substr(at + key.size() + 4));
}

// Decodes a shard into documents (each ends with <|endoftext|>).
std::vector<std::string> shard_documents(const fs::path& shard, const Tokenizer& tok) {
  const TokenShard s(shard.string(), tok.vocab_size());
  std::vector<std::string> docs;
  std::vector<uint32_t> cur;
  for (int64_t i = 0; i < s.size(); ++i) {
    if (s[i] == tok.eot_id()) {
      docs.push_back(tok.decode(cur));
      cur.clear();
    } else {
      cur.push_back(s[i]);
    }
  }
  EXPECT_TRUE(cur.empty()) << shard << " does not end with <|endoftext|>";
  return docs;
}

class PrepareTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("llmpi_prepare_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string write(const std::string& name, const std::string& text) {
    std::ofstream(dir_ / name, std::ios::binary) << text;
    return (dir_ / name).string();
  }
  fs::path dir_;
};

// 40 distinct fortune-like documents; the corpus adds noise that cleaning must remove.
std::vector<std::string> distinct_docs() {
  std::vector<std::string> d;
  const char* words[] = {"the", "quick", "brown", "fox", "jumps", "over", "lazy", "dog",
                         "caf\xC3\xA9", "na\xC3\xAFve", "42", "again,"};
  for (int i = 0; i < 40; ++i) {
    std::string s = "Fortune " + std::to_string(i) + ":";
    for (int k = 0; k < 6 + i % 5; ++k) s += std::string(" ") + words[(i * 7 + k * 3) % 12];
    if (i % 3 == 0) s += "\n  -- line two of " + std::to_string(i);
    d.push_back(s);
  }
  return d;
}

}  // namespace

TEST(TextClean, NormalizesNewlinesDropsControlsAndTrims) {
  EXPECT_EQ(clean_text("a\r\nb\rc\n"), "a\nb\nc");
  EXPECT_EQ(clean_text("  \t\n x\x01y\x7F\tz\x1B[0m \n\n"), "xy\tz[0m");
  EXPECT_EQ(clean_text(std::string("n\0u\0l", 5)), "nul");
  EXPECT_EQ(clean_text("c1\xC2\x85x \xC2\xA0y"), "c1x \xC2\xA0y");  // NEL dropped, NBSP kept
  EXPECT_EQ(clean_text("bad \xFF\xFE utf8"), "bad \xFF\xFE utf8");  // bytes kept as they are
  EXPECT_EQ(clean_text("\r\r\n"), "");
  EXPECT_EQ(count_code_points("caf\xC3\xA9 \xF0\x9F\x98\x80"), 6);
}

TEST(TextClean, FilterCountsShortAndDuplicates) {
  DocumentFilter f(/*min_chars=*/5);
  std::string out;
  EXPECT_TRUE(f.accept("hello world", &out));
  EXPECT_EQ(out, "hello world");
  EXPECT_FALSE(f.accept("  hello world\r\n", &out));  // same after cleaning
  EXPECT_FALSE(f.accept("hi", &out));                 // 2 < 5 code points
  EXPECT_FALSE(f.accept("\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9", &out));  // 8 bytes, 4 chars
  EXPECT_TRUE(f.accept("hello world!", &out));
  EXPECT_FALSE(f.accept("   ", &out));
  EXPECT_EQ(f.stats().documents_read, 6);
  EXPECT_EQ(f.stats().dropped_short, 3);
  EXPECT_EQ(f.stats().dropped_duplicate, 1);
  EXPECT_EQ(f.stats().kept, 2);
  EXPECT_NE(content_hash128("ab"), content_hash128("ba"));
  EXPECT_NE(content_hash128(std::string("a\0", 2)), content_hash128("a"));
}

TEST(Jsonl, UnescapesEverything) {
  const std::string line =
      R"({"text": "q\" b\\ s\/ \b\f\n\r\t A\u00e9\u20AC \ud83d\ude00 x\u0000y"})";
  const std::string want = std::string("q\" b\\ s/ \b\f\n\r\t A\xC3\xA9\xE2\x82\xAC ") +
                           "\xF0\x9F\x98\x80 x" + std::string(1, '\0') + "y";
  EXPECT_EQ(json_object_string_field(line, "text", "f:1"), want);
  // Unpaired surrogates (seen in scraped data) become U+FFFD instead of invalid UTF-8.
  EXPECT_EQ(json_object_string_field(R"({"text":"a\ud800b\udc00c\ud83d\u0041"})", "text", "f:1"),
            "a\xEF\xBF\xBD" "b\xEF\xBF\xBD" "c\xEF\xBF\xBD" "A");
  EXPECT_EQ(json_object_string_field("{\"text\":\"raw \xC3\xA9\"}", "text", "f:1"), "raw \xC3\xA9");
}

TEST(Jsonl, SkipsOtherFieldsOfAnyShape) {
  const std::string line =
      R"( { "id": -12.5e+3, "meta": {"a": [1, 2, {"b": null}], "text": "not me"},)"
      R"( "tags": ["x", "}\"", []], "ok": true, "no": false, "text" : "me", "z": 0 } )";
  EXPECT_EQ(json_object_string_field(line, "text", "f:1"), "me");
}

TEST(Jsonl, MalformedLinesNameFileLineAndColumn) {
  struct Case {
    std::string line, fragment;
  };
  const std::vector<Case> cases = {
      {R"(["text"])", "f.jsonl:7: expected '{'"},
      {R"({"text": "abc)", "f.jsonl:7:14: syntax error while parsing value - invalid string: missing closing quote"},  // column: end of line
      {R"({"text": "a\qb"})", "f.jsonl:7:13: syntax error while parsing value - invalid string: forbidden character after backslash"},
      {R"({"text": "\u12G4"})", "f.jsonl:7:15: syntax error while parsing value - invalid string: '\\u' must be followed by 4 hex digits"},
      {R"({"text": 5})", "field \"text\" must be a string"},
      {R"({"title": "x"})", "f.jsonl:7: object has no string field \"text\""},
      {R"({"text": "a" "b"})", "f.jsonl:7:16: syntax error while parsing object - unexpected string literal; expected '}'"},
      {R"({"text": "a", "n": 01})", "f.jsonl:7:21: syntax error while parsing object - unexpected number literal; expected '}'"},
      {R"({"text": "a", "n": -})", "invalid number; expected digit after '-'"},
      {R"({"text": "a", "v": [1, 2)", "f.jsonl:7:25: syntax error while parsing array - unexpected end of input; expected ']'"},
      {R"({"text": "a", "v": tru})", "f.jsonl:7:23: syntax error while parsing value - invalid literal"},
      {R"({"text": "a"} x)", "f.jsonl:7:15: syntax error while parsing value - invalid literal; last read: '\"a\"} x'; expected end of input"},
      {"{\"text\": \"tab\there\"}", "f.jsonl:7:14: syntax error while parsing value - invalid string: control character U+0009 (HT) must be escaped"},
      {std::string(300, '[') + std::string(300, ']'), "expected '{'"},
      {"{\"a\":" + std::string(300, '[') + std::string(300, ']') + "}", "nested deeper than 256"},
  };
  for (const auto& c : cases) {
    const std::string msg = message_of([&] { json_object_string_field(c.line, "text", "f.jsonl:7"); });
    EXPECT_NE(msg.find(c.fragment), std::string::npos) << c.line << "\n -> " << msg;
  }
}

TEST_F(PrepareTest, JsonlReaderSkipsBlankLinesAndCountsLines) {
  const std::string path =
      write("r.jsonl", "\xEF\xBB\xBF{\"text\":\"one\"}\n\n  \r\n{\"text\":\"two\"}\r\n{\"text\":3}\n");
  JsonlReader r(path);
  std::string t;
  ASSERT_TRUE(r.next(&t));
  EXPECT_EQ(t, "one");
  ASSERT_TRUE(r.next(&t));
  EXPECT_EQ(t, "two");
  EXPECT_EQ(r.line_number(), 4);
  const std::string msg = message_of([&] { r.next(&t); });
  EXPECT_NE(msg.find(path + ":5:"), std::string::npos) << msg;
}

TEST_F(PrepareTest, EndToEndTextWithDelimiter) {
  const auto docs = distinct_docs();
  // File a: docs 0..24 plus a short one and a CRLF copy of doc 3; file b: docs 25..39 plus a
  // duplicate of doc 10 and an empty piece.
  std::string a, b;
  for (int i = 0; i < 25; ++i) a += docs[i] + "\n%\n";
  a += "tiny\n%\n";
  std::string crlf = docs[3];
  for (size_t p = 0; (p = crlf.find('\n', p)) != std::string::npos; p += 2) crlf.replace(p, 1, "\r\n");
  a += "\t" + crlf + "\r\n%\r\n";
  for (int i = 25; i < 40; ++i) b += docs[i] + "\n%\n";
  b += docs[10] + "\n%\n%\n";
  const std::string fa = write("a.txt", a), fb = write("b.txt", b);

  PrepareOptions o;
  o.inputs = {(dir_ / "*.txt").string()};
  o.delimiter = "%";
  o.out_dir = (dir_ / "out").string();
  o.vocab_size = 300;
  o.val_fraction = 0.25;
  o.min_chars = 10;
  o.show_progress = false;
  const PrepareReport r = prepare_dataset(o);

  std::vector<std::string> want_train, want_val;
  for (const auto& d : docs)
    (is_validation_document(content_hash128(d), 0.25, o.seed) ? want_val : want_train).push_back(d);
  ASSERT_FALSE(want_val.empty());   // the split must be exercised on both sides
  ASSERT_FALSE(want_train.empty());

  const std::string json = read_file(dir_ / "out" / "prepare.json");
  EXPECT_EQ(json_int(json, "files"), 2);
  EXPECT_EQ(json_int(json, "documents_read"), 44);
  EXPECT_EQ(json_int(json, "dropped_short"), 2);      // "tiny" and the empty piece
  EXPECT_EQ(json_int(json, "dropped_duplicate"), 2);  // CRLF doc 3 and doc 10 again
  EXPECT_EQ(json_int(json, "train_documents"), static_cast<int64_t>(want_train.size()));
  EXPECT_EQ(json_int(json, "val_documents"), static_cast<int64_t>(want_val.size()));
  EXPECT_EQ(json_int(json, "train_tokens"), r.train_tokens);
  EXPECT_EQ(json_int(json, "val_tokens"), r.val_tokens);

  const Tokenizer tok = Tokenizer::load((dir_ / "out" / "tokenizer.bpe").string());
  EXPECT_EQ(tok.vocab_size(), r.vocab_size);
  EXPECT_LE(tok.vocab_size(), 300);
  EXPECT_GT(tok.merges().size(), 20u);
  EXPECT_EQ(shard_documents(dir_ / "out" / "train.bin", tok), want_train);
  EXPECT_EQ(shard_documents(dir_ / "out" / "val.bin", tok), want_val);
  EXPECT_EQ(TokenShard((dir_ / "out" / "train.bin").string()).size(), r.train_tokens);
  for (const auto& e : fs::directory_iterator(dir_ / "out"))
    EXPECT_NE(e.path().extension(), ".tmp") << e.path();
}

TEST_F(PrepareTest, ValidationSplitDoesNotDependOnFileOrder) {
  const auto docs = distinct_docs();
  std::string a, b;
  for (int i = 0; i < 40; ++i) (i < 20 ? a : b) += docs[i] + "\n%\n";
  const std::string fa = write("a.txt", a), fb = write("b.txt", b);
  const std::string tok_path = write("byte.bpe", "");
  Tokenizer().save(tok_path);  // bytes only: no training needed

  auto run = [&](std::vector<std::string> inputs, const std::string& out) {
    PrepareOptions o;
    o.inputs = std::move(inputs);
    o.delimiter = "%";
    o.out_dir = (dir_ / out).string();
    o.tokenizer_path = tok_path;
    o.val_fraction = 0.3;
    o.show_progress = false;
    prepare_dataset(o);
    const Tokenizer tok;
    auto val = shard_documents(dir_ / out / "val.bin", tok);
    return std::set<std::string>(val.begin(), val.end());
  };
  const auto ab = run({fa, fb}, "ab"), ba = run({fb, fa}, "ba");
  EXPECT_FALSE(ab.empty());
  EXPECT_EQ(ab, ba);
}

TEST_F(PrepareTest, JsonlWithExistingTokenizer) {
  const std::string tok_path = write("t.bpe", "");
  Tokenizer({{'h', 'e'}, {256, 'l'}}).save(tok_path);
  const std::string f = write(
      "d.jsonl", "{\"id\":1,\"text\":\"hello\\nworld\"}\n{\"text\":\"hel\\u006co\\nworld\"}\n"
                 "{\"text\":\"bye \\ud83d\\ude00\"}\n");
  PrepareOptions o;
  o.inputs = {f};
  o.out_dir = (dir_ / "out").string();
  o.tokenizer_path = tok_path;
  o.val_fraction = 0.0;
  o.show_progress = false;
  const PrepareReport r = prepare_dataset(o);
  EXPECT_EQ(r.clean.documents_read, 3);
  EXPECT_EQ(r.clean.dropped_duplicate, 1);  // "\u006c" is 'l': same text
  EXPECT_EQ(r.train_documents, 2);
  EXPECT_EQ(r.val_documents, 0);
  const Tokenizer tok = Tokenizer::load((dir_ / "out" / "tokenizer.bpe").string());
  EXPECT_EQ(tok.vocab_size(), 259);
  const std::vector<std::string> want = {"hello\nworld", "bye \xF0\x9F\x98\x80"};
  EXPECT_EQ(shard_documents(dir_ / "out" / "train.bin", tok), want);
  // "hello" → [hel, l, o]: 3 + "\n" + "world" 5 + eot = 10; "bye 😀" = 8 bytes + eot = 9.
  EXPECT_EQ(r.train_tokens, 19);
  EXPECT_EQ(TokenShard((dir_ / "out" / "val.bin").string()).size(), 0);
}

TEST_F(PrepareTest, FailureLeavesNoHalfShard) {
  const std::string good = write("a.jsonl", "{\"text\":\"a fine document\"}\n");
  const std::string bad = write("b.jsonl", "{\"text\":\"ok\"}\n{\"text\":\"oops}\n");
  PrepareOptions o;
  o.inputs = {good, bad};
  o.out_dir = (dir_ / "out").string();
  o.vocab_size = 260;
  o.show_progress = false;
  const std::string msg = message_of([&] { prepare_dataset(o); });
  EXPECT_NE(msg.find(bad + ":2:"), std::string::npos) << msg;
  EXPECT_FALSE(fs::exists(dir_ / "out" / "train.bin"));
  EXPECT_FALSE(fs::exists(dir_ / "out" / "train.bin.tmp"));
  EXPECT_FALSE(fs::exists(dir_ / "out" / "prepare.json"));
  // Issue #13 item 10: the output directory it created is gone too (it was left empty).
  EXPECT_FALSE(fs::exists(dir_ / "out"));

  // A directory that existed before stays, with what it held; only the outputs go.
  fs::create_directories(dir_ / "mine");
  write("mine/notes.txt", "the user's file");
  o.out_dir = (dir_ / "mine").string();
  o.inputs = {write("short.txt", "x")};
  o.min_chars = 100;  // nothing left after cleaning: fails after the tokenizer was trained
  EXPECT_NE(message_of([&] { prepare_dataset(o); }).find("no documents left"), std::string::npos);
  EXPECT_TRUE(fs::exists(dir_ / "mine" / "notes.txt"));
  EXPECT_EQ(std::distance(fs::directory_iterator(dir_ / "mine"), fs::directory_iterator{}), 1);
}

// Issue #13 item 8: shards written by prepare record their tokenizer's identity.
TEST_F(PrepareTest, ShardsRecordTheTokenizer) {
  const std::string tok_path = write("t.bpe", "");
  const Tokenizer tok({{'h', 'e'}, {256, 'l'}});
  tok.save(tok_path);
  PrepareOptions o;
  o.inputs = {write("d.txt", "hello world, a document")};
  o.out_dir = (dir_ / "out").string();
  o.tokenizer_path = tok_path;
  o.val_fraction = 0.0;
  o.show_progress = false;
  prepare_dataset(o);
  const TokenShard s((dir_ / "out" / "train.bin").string());
  ASSERT_TRUE(s.tokenizer().has_value());
  EXPECT_EQ(*s.tokenizer(), tokenizer_id(tok));
  EXPECT_EQ(s.tokenizer()->vocab_size, 259);
  EXPECT_EQ(s.tokenizer()->eot_id, tok.eot_id());
  EXPECT_NE(tokenizer_id(Tokenizer({{'h', 'e'}})), tokenizer_id(tok));
}

// Shards given back to prepare: as input with --out their own directory, prepare read
// train.bin as text while replacing it (the data set was destroyed, exit 0); in another
// directory it tokenized the binary as text. Both are refused, before anything is written.
TEST_F(PrepareTest, RefusesTokenShardsAndItsOwnOutputsAsInput) {
  const std::string tok_path = write("t.bpe", "");
  Tokenizer({{'h', 'e'}}).save(tok_path);
  PrepareOptions o;
  o.inputs = {write("d.txt", "hello world, a document")};
  o.out_dir = (dir_ / "data").string();
  o.tokenizer_path = tok_path;
  o.val_fraction = 0.0;
  o.show_progress = false;
  prepare_dataset(o);
  const std::string train = (dir_ / "data" / "train.bin").string();
  const uint64_t size = fs::file_size(train);

  o.inputs = {train};
  std::string msg = message_of([&] { prepare_dataset(o); });
  EXPECT_NE(msg.find(train + ": is the output " + train), std::string::npos) << msg;
  o.out_dir = (dir_ / "other").string();
  msg = message_of([&] { prepare_dataset(o); });
  EXPECT_NE(msg.find(train + ": is a token shard (already prepared), not text"), std::string::npos) << msg;
  EXPECT_FALSE(fs::exists(dir_ / "other"));
  // llm.c's shards too (magic 20240520 in the first int32).
  const int32_t llmc[4] = {kLlmcMagic, kLlmcVersion, 0, 0};
  const std::string llmc_path = write("llmc.bin", std::string(reinterpret_cast<const char*>(llmc), sizeof llmc));
  o.inputs = {llmc_path};
  EXPECT_NE(message_of([&] { prepare_dataset(o); }).find("is a token shard"), std::string::npos);
  // The shard is as the first prepare wrote it.
  EXPECT_EQ(fs::file_size(train), size);
  EXPECT_GT(TokenShard(train).size(), 0);
}

TEST_F(PrepareTest, CommandLine) {
  EXPECT_EQ(cmd_prepare({"--help"}), 0);
  const std::string f = write("one.txt", "Just one short document, long enough.");
  const std::string out = (dir_ / "out").string();
  EXPECT_NE(message_of([&] { cmd_prepare({f, "--vocab-size", "300"}); }).find("--out"),
            std::string::npos);
  EXPECT_NE(message_of([&] { cmd_prepare({f, "--out", out}); }).find("exactly one of"),
            std::string::npos);
  EXPECT_NE(message_of([&] { cmd_prepare({f, "--out", out, "--vocab-size", "300", "--bogus"}); })
                .find("'--bogus'"),
            std::string::npos);
  EXPECT_NE(message_of([&] { cmd_prepare({f, "--out", out, "--vocab-size", "300", "--format", "csv"}); })
                .find("'text', 'jsonl' or 'sft'"),
            std::string::npos);
  EXPECT_NE(message_of([&] { cmd_prepare({f, "--out", out, "--vocab-size", "100"}); })
                .find("too small"),
            std::string::npos);
  // Too large is refused with the option's name before any input is read or DIR is made.
  EXPECT_NE(message_of([&] { cmd_prepare({f, "--out", out, "--vocab-size", "99999999999"}); })
                .find("--vocab-size 99999999999 is too large (maximum 2^31)"),
            std::string::npos);
  EXPECT_FALSE(fs::exists(out));
  EXPECT_NE(message_of([&] { cmd_prepare({(dir_ / "*.none").string(), "--out", out, "--vocab-size", "300"}); })
                .find("matches no input files"),
            std::string::npos);
  EXPECT_NE(message_of([&] { cmd_prepare({f, "--out", out, "--vocab-size", "300", "--val-fraction", "1"}); })
                .find("[0, 1)"),
            std::string::npos);
  EXPECT_EQ(cmd_prepare({f, "--out", out, "--vocab-size=300", "--val-fraction=0", "--quiet"}), 0);
  const std::string json = read_file(fs::path(out) / "prepare.json");
  EXPECT_EQ(json_int(json, "train_documents"), 1);
}
