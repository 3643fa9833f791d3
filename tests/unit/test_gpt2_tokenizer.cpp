// GPT-2's own tokenizer and the HF tokenizer files: the pre-tokenization on hand-derived hard
// cases, ids against GPT-2's JavaScript references (npm gpt-3-encoder and js-tiktoken) on the
// whole fortunes corpus, byte-exact decoding, tokenizer.json / vocab.json + merges.txt written
// and read back, the exported tokenizer.json (GPT-2's and llmpi's own BPE) loaded by
// @huggingface/tokenizers (the HF format's JavaScript implementation) giving llmpi's ids, and
// malformed tokenizer files rejected naming file and key.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "core/error.h"
#include "data/bpe_trainer.h"
#include "data/gpt2_pretokenize.h"
#include "data/hf_tokenizer.h"
#include "data/tokenizer.h"
#include "tokenizer_reference.h"
#include "user_error_message.h"

using namespace llmpi;
using llmpi::testing::message_of;
using namespace llmpi::testing;
namespace fs = std::filesystem;

namespace {

std::vector<std::string> gpt2_chunks(std::string_view s) {
  std::vector<std::string> out;
  for_each_gpt2_chunk(s, [&](std::string_view c) { out.emplace_back(c); });
  return out;
}

const Tokenizer& gpt2() {
  static const Tokenizer tok = load_tokenizer(gpt2_vocab_dir());
  return tok;
}

// Texts that exercise every branch of the regex; all valid UTF-8 and free of U+0085/U+FEFF
// (where the JavaScript references' \s differs from GPT-2's, see docs/interop.md).
std::vector<std::string> hard_cases() {
  return {"Hello world",
          "it's I'll we're they've I'm he'd don't IT'S 'tis '''s",
          "  leading spaces, trailing spaces   ",
          "tabs\t\tand\nnew\n\nlines\r\n\r\nand  \n  mixed \t\n",
          "                                        (forty spaces)",
          std::string(300, ' ') + "x" + std::string(300, '\n'),
          "numbers 1 12 123 1234 3.14159 1,000,000 0x1F 2024-06-01 ٣٤٥ Ⅻ ½",
          "emoji 👋🏽 👨‍👩‍👧‍👦 🇫🇷!! ☃ ❤️",
          "naïve café Ångström ß straße Ελληνικά Русский 日本語のテキスト 한국어 עברית العربية",
          "symbols $$$ ### @@@ ... --- ___ +++ ((())) [[]] {{}} <<>> |||",
          "x<|endoftext|>y",
          "non-breaking\u00A0space and\u3000ideographic space and\u2028line separator",
          "",
          "a",
          " ",
          "'"};
}

void expect_same_ids(const std::vector<std::string>& texts, const std::vector<std::vector<uint32_t>>& want,
                     const Tokenizer& tok, const std::string& ref) {
  ASSERT_EQ(want.size(), texts.size());
  int bad = 0;
  for (size_t i = 0; i < texts.size() && bad < 5; ++i) {
    const std::vector<uint32_t> got = tok.encode(texts[i]);
    if (got != want[i]) {
      ++bad;
      ADD_FAILURE() << ref << " disagrees on text " << i << ": \"" << texts[i].substr(0, 200) << "\"";
    }
  }
  EXPECT_EQ(bad, 0);
}

std::string temp_dir(const std::string& name) {
  const fs::path d = fs::temp_directory_path() / ("llmpi_gpt2tok_" + std::to_string(::getpid()) + "_" + name);
  fs::remove_all(d);
  fs::create_directories(d);
  return d.string();
}

}  // namespace

TEST(Gpt2Pretokenize, HardCasesSplitAsTheRegexDoes) {
  using V = std::vector<std::string>;
  EXPECT_EQ(gpt2_chunks("Hello world"), (V{"Hello", " world"}));
  EXPECT_EQ(gpt2_chunks("it's we'll I'VE"), (V{"it", "'s", " we", "'ll", " I", "'", "VE"}));
  EXPECT_EQ(gpt2_chunks("a  b"), (V{"a", " ", " b"}));
  EXPECT_EQ(gpt2_chunks("a\n\nb"), (V{"a", "\n", "\n", "b"}));
  EXPECT_EQ(gpt2_chunks("x   "), (V{"x", "   "}));
  EXPECT_EQ(gpt2_chunks("a \n b"), (V{"a", " \n", " b"}));
  EXPECT_EQ(gpt2_chunks("123 4567 ٣٤"), (V{"123", " 4567", " ٣٤"}));
  EXPECT_EQ(gpt2_chunks("$$$ !!x"), (V{"$$$", " !!", "x"}));
  EXPECT_EQ(gpt2_chunks("hi 👋🏽!"), (V{"hi", " 👋🏽!"}));
  EXPECT_EQ(gpt2_chunks("naïve café"), (V{"naïve", " café"}));
  EXPECT_EQ(gpt2_chunks("a\u00A0b"), (V{"a", "\u00A0", "b"}));
  EXPECT_EQ(gpt2_chunks("a\u0085b"), (V{"a", "\u0085", "b"}));  // White_Space, as in Python
  EXPECT_EQ(gpt2_chunks("ab\xFF\xFE" "cd \xC3"), (V{"ab", "\xFF\xFE", "cd", " \xC3"}));
  EXPECT_EQ(gpt2_chunks("'s's"), (V{"'s", "'s"}));
}

TEST(Gpt2Tokenizer, KnownIdsAndExactDecoding) {
  ASSERT_TRUE(js_references_installed());
  const Tokenizer& t = gpt2();
  EXPECT_EQ(t.vocab_size(), 50257);
  EXPECT_EQ(t.eot_id(), 50256u);
  EXPECT_EQ(t.pretokenizer(), Pretokenizer::gpt2);
  EXPECT_FALSE(t.has_llmpi_layout());
  EXPECT_EQ(t.encode("Hello world"), (std::vector<uint32_t>{15496, 995}));
  EXPECT_EQ(t.decode({15496, 995, 50256}), "Hello world<|endoftext|>");
  for (const std::string& s : hard_cases()) EXPECT_EQ(t.decode(t.encode(s)), s);
  // Invalid UTF-8 is kept byte for byte; its pre-token boundaries are those of U+FFFD.
  const std::string raw = "caf\xE9 \xFF\xFEok \xC3";
  EXPECT_EQ(t.decode(t.encode(raw)), raw);
  EXPECT_EQ(gpt2_chunks(raw).size(), gpt2_chunks("caf\uFFFD \uFFFD\uFFFDok \uFFFD").size());
}

TEST(Gpt2Tokenizer, MatchesTiktokenAndGpt3EncoderOnFortunesAndHardCases) {
  ASSERT_TRUE(js_references_installed());
  std::vector<std::string> texts = fortune_documents();
  ASSERT_GT(texts.size(), 10000u);
  for (const std::string& h : hard_cases()) texts.push_back(h);
  expect_same_ids(texts, reference_ids("tiktoken", texts), gpt2(), "js-tiktoken");
  // gpt-3-encoder (GPT-2's original algorithm in JS) is 3x slower: every fourth document.
  std::vector<std::string> some;
  for (size_t i = 0; i < texts.size(); ++i)
    if (i % 4 == 0 || i + hard_cases().size() >= texts.size()) some.push_back(texts[i]);
  expect_same_ids(some, reference_ids("gpt-3-encoder", some), gpt2(), "gpt-3-encoder");
}

TEST(Gpt2Tokenizer, TokenizerJsonAndVocabFilesRoundTrip) {
  ASSERT_TRUE(js_references_installed());
  const std::string dir = temp_dir("export");
  write_hf_tokenizer(gpt2(), dir, TokenizerExport{1024});
  for (const char* f : {"tokenizer.json", "tokenizer_config.json", "vocab.json", "merges.txt"})
    EXPECT_TRUE(fs::exists(fs::path(dir) / f)) << f;
  const Tokenizer from_json = read_tokenizer_json(dir + "/tokenizer.json");
  const Tokenizer from_vocab = read_gpt2_vocab(dir + "/vocab.json", dir + "/merges.txt");
  for (const Tokenizer* t : {&from_json, &from_vocab}) {
    EXPECT_EQ(t->vocab_size(), 50257);
    EXPECT_EQ(t->eot_id(), 50256u);
    EXPECT_EQ(t->pretokenizer(), Pretokenizer::gpt2);
    ASSERT_EQ(t->merges().size(), gpt2().merges().size());
    for (size_t i = 0; i < t->merges().size(); ++i)
      ASSERT_EQ(t->merges()[i].result, gpt2().merges()[i].result) << i;
    for (uint32_t id = 0; id < 50257; ++id) ASSERT_EQ(t->token_bytes(id), gpt2().token_bytes(id));
  }
  fs::remove_all(dir);
}

TEST(HfTokenizerJson, ExportedGpt2IsReadByHuggingFaceJsWithTheSameIds) {
  ASSERT_TRUE(js_references_installed());
  const std::string dir = temp_dir("hfjs_gpt2");
  write_hf_tokenizer(gpt2(), dir, TokenizerExport{1024});
  std::vector<std::string> texts = fortune_documents();
  texts.resize(3000);
  for (const std::string& h : hard_cases())
    if (h.find("<|endoftext|>") == std::string::npos) texts.push_back(h);
  expect_same_ids(texts, reference_ids("hf:" + dir, texts), gpt2(), "@huggingface/tokenizers");
  // The documented difference: HF matches the special token inside text; llmpi never does.
  const auto hf = reference_ids("hf:" + dir, {"a<|endoftext|>b"});
  EXPECT_EQ(hf[0], (std::vector<uint32_t>{64, 50256, 65}));
  EXPECT_EQ(gpt2().encode("a<|endoftext|>b").size(), 9u);
  fs::remove_all(dir);
}

TEST(HfTokenizerJson, ExportedLlmpiBpeIsReadByHuggingFaceJsWithTheSameIds) {
  ASSERT_TRUE(js_references_installed());
  std::vector<std::string> texts = fortune_documents();
  BpeTrainer trainer;
  for (size_t i = 0; i < 2000 && i < texts.size(); ++i) trainer.add_text(texts[i]);
  const Tokenizer tok = trainer.train(800);
  const std::string dir = temp_dir("hfjs_llmpi");
  write_hf_tokenizer(tok, dir, TokenizerExport{128});
  EXPECT_FALSE(fs::exists(fs::path(dir) / "vocab.json"));  // a slow GPT-2 tokenizer would misread it
  // Read back: the Split pattern identifies llmpi's pre-tokenizer, ids keep llmpi's layout.
  const Tokenizer back = read_tokenizer_json(dir + "/tokenizer.json");
  EXPECT_TRUE(back.has_llmpi_layout());
  EXPECT_EQ(back.merges().size(), tok.merges().size());
  texts.resize(4000);
  for (const std::string& h : hard_cases())
    if (h.find("<|endoftext|>") == std::string::npos) texts.push_back(h);
  // The 256-byte cut of long runs, a contraction right at a cut, a run of 256 spaces.
  texts.push_back(std::string(600, 'a') + " " + std::string(300, '7') + std::string(255, '!') + "'s");
  texts.push_back(" " + std::string(255, '!') + "'s " + std::string(257, '-') + "'t");
  texts.push_back("x" + std::string(256, ' ') + "y" + std::string(256, ' ') + std::string(513, '\n') + "z");
  texts.push_back(std::string(1000, ' '));
  texts.push_back("éééé" + std::string(200, 'e') + "ü" + std::string(100, 'x'));
  expect_same_ids(texts, reference_ids("hf:" + dir, texts), tok, "@huggingface/tokenizers");
  for (const std::string& t : texts) ASSERT_EQ(back.encode(t), tok.encode(t));
  fs::remove_all(dir);
}

TEST(HfTokenizerJson, MalformedTokenizerFilesNameFileAndKey) {
  // A small BPE (fast to write and parse 20 times) in both layouts llmpi reads.
  BpeTrainer trainer;
  trainer.add_text("the theory of the thermal theme: then there, then them, the end");
  const Tokenizer small = trainer.train(280);
  const std::string dir = temp_dir("bad");
  const std::string tj = dir + "/tokenizer.json";
  write_tokenizer_json(small, tj);
  nlohmann::json good;
  std::ifstream(tj) >> good;
  const std::string first_merge = good["model"]["merges"][0].get<std::string>();
  struct Case {
    std::string what;
    std::function<void(nlohmann::json&)> edit;
    std::string fragment;
  };
  const std::vector<Case> cases = {
      {"model type", [](auto& j) { j["model"]["type"] = "WordPiece"; }, "model.type: \"WordPiece\" is not supported"},
      {"normalizer", [](auto& j) { j["normalizer"] = {{"type", "NFC"}}; }, "normalizer: must be null"},
      {"prefix space", [](auto& j) { j["pre_tokenizer"] = {{"type", "ByteLevel"}, {"add_prefix_space", true}}; }, "pre_tokenizer.add_prefix_space: true is not supported"},
      {"metaspace", [](auto& j) { j["pre_tokenizer"] = {{"type", "Metaspace"}}; }, "pre_tokenizer: type \"Metaspace\" is not supported"},
      {"other split", [](auto& j) { j["pre_tokenizer"]["pretokenizers"][1]["pattern"]["Regex"] = "\\s+"; }, "pre_tokenizer: type \"Sequence\" is not supported"},
      {"decoder", [](auto& j) { j["decoder"] = {{"type", "Metaspace"}}; }, "decoder: must be ByteLevel"},
      {"byte fallback", [](auto& j) { j["model"]["byte_fallback"] = true; }, "model.byte_fallback: true is not supported"},
      {"unknown merge part", [](auto& j) { j["model"]["merges"][1] = "zzzq t"; }, "model.merges[1]: merge part \"zzzq\" is not in the vocabulary"},
      {"merge syntax", [](auto& j) { j["model"]["merges"][1] = "t"; }, "model.merges[1]: expected \"left right\""},
      {"merge twice", [&](auto& j) { j["model"]["merges"][1] = first_merge; }, "which already exists before it"},
      {"duplicate id", [](auto& j) { j["model"]["vocab"]["t"] = 0; }, "id 0 is given to two tokens"},
      {"missing byte", [](auto& j) { j["model"]["merges"] = nlohmann::json::array(); j["model"]["vocab"].erase("!"); j["model"]["vocab"]["<pad>"] = 33; }, "no token for the byte 0x21"},
      {"id gap", [](auto& j) { const size_t n = j["model"]["vocab"].size(); j["model"]["vocab"]["Ġzz"] = n + 1; }, "no token has id"},
      {"non-special added", [](auto& j) { j["added_tokens"][0]["special"] = false; }, "is not special"},
      {"not a byte image", [](auto& j) { j["model"]["vocab"]["€uro"] = 99999; }, "has the character U+20ac"},
      {"template post-processor", [](auto& j) { j["post_processor"] = {{"type", "TemplateProcessing"}}; }, "post_processor: only ByteLevel or null"},
      {"no end of text", [](auto& j) { j["added_tokens"] = nlohmann::json::array(); j["model"]["vocab"].erase("<|endoftext|>"); }, "no special token \"<|endoftext|>\""},
  };
  for (const Case& c : cases) {
    nlohmann::json j = good;
    c.edit(j);
    std::ofstream(tj) << j.dump();
    const std::string msg = message_of([&] { read_tokenizer_json(tj); });
    EXPECT_NE(msg.find(tj), std::string::npos) << c.what << ": " << msg;
    EXPECT_NE(msg.find(c.fragment), std::string::npos) << c.what << ": " << msg;
  }
  std::ofstream(tj) << "{\"model\": ";
  EXPECT_NE(message_of([&] { read_tokenizer_json(tj); }).find(tj + ": not valid JSON"), std::string::npos);
  // vocab.json + merges.txt (GPT-2's layout): a three-part line, a merge of unmade tokens.
  nlohmann::json vocab = good["model"]["vocab"];
  std::ofstream(dir + "/vocab.json") << vocab.dump();
  std::ofstream(dir + "/merges.txt") << "#version: 0.2\n" << first_merge << "\nĠ t h\n";
  EXPECT_NE(message_of([&] { read_gpt2_vocab(dir + "/vocab.json", dir + "/merges.txt"); })
                .find("merges.txt:3: expected two tokens separated by one space"), std::string::npos);
  std::ofstream(dir + "/merges.txt") << "#version: 0.2\nqq e\n";
  EXPECT_NE(message_of([&] { read_gpt2_vocab(dir + "/vocab.json", dir + "/merges.txt"); })
                .find("merges.txt:2: merge part \"qq\" is not in the vocabulary"), std::string::npos);
  size_t later = 0;  // a merge whose left part is itself made by a merge
  while (small.token_bytes(small.merges()[later].left).size() < 2) ++later;
  std::ofstream(dir + "/merges.txt") << good["model"]["merges"][later].get<std::string>() << "\n";
  EXPECT_NE(message_of([&] { read_gpt2_vocab(dir + "/vocab.json", dir + "/merges.txt"); })
                .find("joins a token that no earlier merge makes"), std::string::npos);
  EXPECT_NE(message_of([&] { load_tokenizer(dir + "/nothing"); }).find("no such tokenizer"), std::string::npos);
  fs::remove_all(dir);
}
