// tokenizer.json and vocab.json as hostile input (data/hf_tokenizer.h): values of the wrong
// JSON type where an object or string is expected, and ids far beyond the tokens a file lists.
// Each is a UserError naming the file and key; before, the first kind escaped as nlohmann's
// type_error ("internal error", exit 1) and the second sized the id table by the id
// (2^30 ids: 32 GB of strings, std::bad_alloc here).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <unistd.h>

#include "core/error.h"
#include "data/hf_tokenizer.h"
#include "user_error_message.h"

using namespace llmpi;
using llmpi::testing::message_of;
namespace fs = std::filesystem;
using Json = nlohmann::json;

namespace {

class HfTokenizerHostile : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("llmpi_hftok_" + std::to_string(::getpid()) + "_" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    write_tokenizer_json(Tokenizer(), path("good.json"));  // 256 bytes + <|endoftext|>
    std::ifstream(path("good.json")) >> good_;
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string path(const std::string& n) const { return (dir_ / n).string(); }

  struct Case {
    std::string what;
    std::function<void(Json&)> edit;
    std::string fragment;
  };
  void expect_refused(const std::vector<Case>& cases) {
    const std::string tj = path("tokenizer.json");
    for (const Case& c : cases) {
      Json j = good_;
      c.edit(j);
      std::ofstream(tj) << j.dump();
      const std::string msg = message_of([&] { load_tokenizer(tj); });
      EXPECT_NE(msg.find(tj + ": "), std::string::npos) << c.what << ": " << msg;
      EXPECT_NE(msg.find(c.fragment), std::string::npos) << c.what << ": " << msg;
    }
  }
  fs::path dir_;
  Json good_;
};

}  // namespace

TEST_F(HfTokenizerHostile, ValuesOfTheWrongTypeAreRefusedNamingTheKey) {
  const std::string seq = "pre_tokenizer: type \"Sequence\" is not supported";
  expect_refused({
      {"model.type a number", [](Json& j) { j["model"]["type"] = 3; }, "model.type: 3 is not supported"},
      {"model a list", [](Json& j) { j["model"] = {1}; }, "model: expected an object, got array"},
      {"pre-tokenizers strings", [](Json& j) { j["pre_tokenizer"]["pretokenizers"] = {"a", "b"}; }, seq},
      {"pre-tokenizer types numbers", [](Json& j) { j["pre_tokenizer"]["pretokenizers"][0]["type"] = 1; }, seq},
      {"split pattern a number", [](Json& j) { j["pre_tokenizer"]["pretokenizers"][1]["pattern"]["Regex"] = 5; }, seq},
      {"split behavior a number", [](Json& j) { j["pre_tokenizer"]["pretokenizers"][1]["behavior"] = 5; }, seq},
      {"use_regex a string", [](Json& j) { j["pre_tokenizer"]["pretokenizers"][0]["use_regex"] = "no"; }, seq},
      {"decoder type a number", [](Json& j) { j["decoder"]["type"] = 7; }, "decoder: must be ByteLevel"},
      {"post-processor a string", [](Json& j) { j["post_processor"] = "x"; }, "post_processor: only ByteLevel or null"},
      {"post-processor type a number", [](Json& j) { j["post_processor"]["type"] = 1; }, "post_processor: only ByteLevel or null"},
      {"special a string", [](Json& j) { j["added_tokens"][0]["special"] = "yes"; }, "added_tokens: \"<|endoftext|>\": special must be true or false, got \"yes\""},
  });
}

TEST_F(HfTokenizerHostile, IdsBeyondTheTokensListedAreRefusedBeforeAnyTableIsSized) {
  const int64_t huge = (int64_t(1) << 30) - 1;  // accepted by the old bound, [0, 2^30)
  expect_refused({
      {"vocabulary id", [=](Json& j) { j["model"]["vocab"]["zz"] = huge; }, "model.vocab: token \"zz\" has id 1073741823, but the file lists 259 tokens, so no id can be above 258"},
      {"added token id", [=](Json& j) { j["added_tokens"].push_back({{"id", huge}, {"content", "<x>"}, {"special", true}}); }, "added_tokens: \"<x>\" has id 1073741823, but the file lists 259 tokens"},
      {"id past a dense vocabulary", [](Json& j) { j["model"]["vocab"]["zz"] = 300; }, "has id 300, but the file lists 259 tokens"},
  });
  // GPT-2's layout: vocab.json + merges.txt.
  Json vocab = good_["model"]["vocab"];
  vocab["zz"] = huge;
  std::ofstream(path("vocab.json")) << vocab.dump();
  std::ofstream(path("merges.txt")) << "#version: 0.2\n";
  EXPECT_NE(message_of([&] { load_tokenizer(path("vocab.json")); })
                .find(path("vocab.json") + ": vocabulary: token \"zz\" has id 1073741823, but the file lists 258 tokens"),
            std::string::npos);
  // The largest dense id is still accepted: an added token right after the vocabulary.
  Json j = good_;
  const int64_t next = int64_t(j["model"]["vocab"].size());
  j["added_tokens"].push_back({{"id", next}, {"content", "<|pad|>"}, {"special", true}});
  std::ofstream(path("tokenizer.json")) << j.dump();
  EXPECT_EQ(load_tokenizer(path("tokenizer.json")).vocab_size(), next + 1);
}
