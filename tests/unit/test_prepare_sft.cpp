// `prepare --format sft` as a library call (data/prepare_sft.h) on a temporary directory:
// records of every shape in two files with bad ones among them — each bad record counted and
// reported as FILE:LINE, the rest in version 3 shards whose documents decode to the rendered
// conversations and whose loss mask selects exactly the answers; preference pairs as adjacent
// documents; --max-tokens; a dataset mixing kinds; nothing valid at all.
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <unistd.h>

#include "cli/command_line.h"
#include "core/error.h"
#include "data/prepare_sft.h"
#include "data/token_dataset.h"
#include "data/tokenizer.h"

using namespace llmpi;
namespace fs = std::filesystem;

namespace {

struct TempDir {
  fs::path path = fs::temp_directory_path() / ("llmpi_sft_" + std::to_string(::getpid()));
  TempDir() { fs::create_directories(path); }
  ~TempDir() { fs::remove_all(path); }
  std::string file(const std::string& name, const std::string& text) const {
    std::ofstream(path / name) << text;
    return (path / name).string();
  }
};

std::string slurp(std::FILE* f) {
  std::rewind(f);
  std::string s;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) s.append(buf, n);
  return s;
}

// Documents of a dataset: their text and the text of their masked tokens.
struct Doc {
  std::string text, learned;
};
std::vector<Doc> documents(const std::string& shard, const Tokenizer& tok) {
  const TokenDataset ds({shard}, tok.vocab_size());
  EXPECT_TRUE(ds.has_documents());
  EXPECT_TRUE(ds.has_loss_mask());
  const std::vector<int64_t> off = ds.document_offsets();
  std::vector<int32_t> ids(static_cast<size_t>(ds.size()));
  std::vector<uint8_t> mask(ids.size());
  ds.copy(0, ds.size(), ids.data());
  ds.copy_mask(0, ds.size(), mask.data());
  std::vector<Doc> out;
  for (size_t d = 0; d + 1 < off.size(); ++d) {
    std::vector<uint32_t> all, learned;
    for (int64_t i = off[d]; i < off[d + 1]; ++i) {
      all.push_back(static_cast<uint32_t>(ids[i]));
      if (mask[i]) learned.push_back(static_cast<uint32_t>(ids[i]));
    }
    out.push_back({tok.decode(all), tok.decode(learned)});
  }
  return out;
}

}  // namespace

TEST(PrepareSft, ConversationsWithBadRecordsReported) {
  TempDir dir;
  const std::string tokp = (dir.path / "tok.bpe").string();
  Tokenizer().save(tokp);
  const std::string a = dir.file("a.jsonl",
      R"({"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}]})" "\n"
      "\n"
      R"({"instruction": "Add 2 and 3."})" "\n"  // line 3: no output
      R"({"instruction": "Add", "input": "1, 1", "output": "2"})" "\n");
  const std::string b = dir.file("b.jsonl",
      R"({"text": "### Human: Hi ### Assistant: Yo ### Human: ?"})" "\n"
      R"({"messages": [{"role": "user", "content": "a"}, {"role": "user", "content": "b"}]})" "\n"
      "oops\n"
      R"({"conversation": [{"input": "q", "output": "this answer is much too long for the limit"}]})" "\n");
  SftPrepareOptions o;
  o.inputs = {a, b};
  o.out_dir = (dir.path / "out").string();
  o.tokenizer_path = tokp;
  o.val_fraction = 0;
  o.max_tokens = 80;  // byte-level tokenizer: one token per byte
  o.show_progress = false;
  std::FILE* log = std::tmpfile();
  o.log = log;
  const SftPrepareReport r = prepare_sft(o);
  const std::string printed = slurp(log);
  std::fclose(log);

  EXPECT_EQ(r.records_read, 7);
  EXPECT_EQ(r.bad_records, 4);
  EXPECT_EQ(r.bad_per_file.at(a), 1);
  EXPECT_EQ(r.bad_per_file.at(b), 3);
  EXPECT_EQ(r.train_records, 3);
  EXPECT_NE(printed.find(a + ":3: bad record: missing field \"output\""), std::string::npos) << printed;
  EXPECT_NE(printed.find(b + ":2: bad record: message 2 is a user turn"), std::string::npos) << printed;
  EXPECT_NE(printed.find(b + ":3: bad record: not valid JSON"), std::string::npos) << printed;
  EXPECT_NE(printed.find(b + ":4: bad record: "), std::string::npos) << printed;
  EXPECT_NE(printed.find("more than --max-tokens 80"), std::string::npos) << printed;
  EXPECT_NE(printed.find(b + ": 3 bad records of this file"), std::string::npos) << printed;
  EXPECT_EQ(r.shapes.at("chat"), 1);
  EXPECT_EQ(r.shapes.at("alpaca"), 1);
  EXPECT_EQ(r.shapes.at("text"), 1);

  const Tokenizer tok = Tokenizer::load((dir.path / "out" / "tokenizer.bpe").string());
  const std::vector<Doc> docs = documents((dir.path / "out" / "train.bin").string(), tok);
  ASSERT_EQ(docs.size(), 3u);
  EXPECT_EQ(docs[0].text,
            "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nHello!<|im_end|>\n");
  EXPECT_EQ(docs[0].learned, "Hello!<|im_end|>");
  EXPECT_EQ(docs[1].learned, "2<|im_end|>");
  EXPECT_NE(docs[1].text.find("user\nAdd"), std::string::npos);  // Alpaca's input: ChatML drops it
  EXPECT_EQ(docs[2].learned, "Yo<|im_end|>");
  EXPECT_EQ(TokenDataset({(dir.path / "out" / "val.bin").string()}).size(), 0);

  std::ifstream jf(dir.path / "out" / "prepare.json");
  const nlohmann::json j = nlohmann::json::parse(jf);
  EXPECT_EQ(j["kind"], "sft");
  EXPECT_EQ(j["bad_records"], 4);
  EXPECT_EQ(j["bad"][0]["line"], 3);
  EXPECT_EQ(j["template"]["name"], "chatml");
  EXPECT_EQ(j["train_loss_tokens"], r.train_loss_tokens);
}

TEST(PrepareSft, PreferencePairsAreAdjacentDocuments) {
  TempDir dir;
  const std::string tokp = (dir.path / "tok.bpe").string();
  Tokenizer().save(tokp);
  const std::string f = dir.file("p.jsonl",
      R"({"prompt": "Define cat.", "chosen": "A feline.", "rejected": "A tree."})" "\n"
      R"({"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]})" "\n"
      R"({"prompt": "Define oak.", "chosen": "A tree.", "rejected": "A feline."})" "\n");
  SftPrepareOptions o;
  o.inputs = {f};
  o.out_dir = (dir.path / "out").string();
  o.tokenizer_path = tokp;
  o.template_name = "alpaca";
  o.val_fraction = 0;
  o.show_progress = false;
  o.log = nullptr;
  const SftPrepareReport r = prepare_sft(o);
  EXPECT_EQ(r.kind, RecordKind::preference);
  EXPECT_EQ(r.bad_records, 1);
  EXPECT_NE(r.bad[0].reason.find("a conversation in a dataset of preference pairs"),
            std::string::npos) << r.bad[0].reason;
  const std::vector<Doc> docs =
      documents((dir.path / "out" / "train.bin").string(), Tokenizer::load(tokp));
  ASSERT_EQ(docs.size(), 4u);
  EXPECT_EQ(docs[0].learned, "A feline.<|endoftext|>");
  EXPECT_EQ(docs[1].learned, "A tree.<|endoftext|>");
  EXPECT_EQ(docs[0].text.substr(0, docs[0].text.size() - docs[0].learned.size() - 2),
            docs[1].text.substr(0, docs[1].text.size() - docs[1].learned.size() - 2))
      << "the two documents of a pair share their prompt";
}

TEST(PrepareSft, NothingValidIsAnError) {
  TempDir dir;
  const std::string tokp = (dir.path / "tok.bpe").string();
  Tokenizer().save(tokp);
  SftPrepareOptions o;
  o.inputs = {dir.file("bad.jsonl", "{}\n[]\n")};
  o.out_dir = (dir.path / "out").string();
  o.tokenizer_path = tokp;
  o.show_progress = false;
  o.log = nullptr;
  try {
    prepare_sft(o);
    ADD_FAILURE() << "no error";
  } catch (const UserError& e) {
    EXPECT_NE(std::string(e.what()).find("no valid record in 2 records"), std::string::npos)
        << e.what();
  }
  EXPECT_FALSE(fs::exists(dir.path / "out" / "train.bin"));
  o.tokenizer_path.clear();
  EXPECT_THROW(prepare_sft(o), UserError);
  o.tokenizer_path = tokp;
  o.template_name = "vicuna";
  EXPECT_THROW(prepare_sft(o), UserError);
}

// Hostile records are bad records, never an internal error: a number beyond a double (nlohmann
// threw out_of_range, not a parse_error), invalid UTF-8 (the reason quotes the bytes, and
// prepare.json could not be written: type_error 316).
TEST(PrepareSft, HostileRecordsAreBadRecordsAndPrepareJsonIsWritten) {
  TempDir dir;
  const std::string tokp = (dir.path / "tok.bpe").string();
  Tokenizer().save(tokp);
  SftPrepareOptions o;
  o.inputs = {dir.file("h.jsonl",
      R"({"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}]})" "\n"
      R"({"messages": [{"role": "user", "content": 1e999}, {"role": "assistant", "content": "y"}]})" "\n"
      "{\"messages\": [{\"role\": \"user\", \"content\": \"\xff\xfe\"}]}\n")};
  o.out_dir = (dir.path / "out").string();
  o.tokenizer_path = tokp;
  o.val_fraction = 0;
  o.show_progress = false;
  std::FILE* log = std::tmpfile();
  o.log = log;
  const SftPrepareReport r = prepare_sft(o);
  const std::string printed = slurp(log);
  std::fclose(log);
  EXPECT_EQ(r.bad_records, 2);
  EXPECT_NE(printed.find(o.inputs[0] + ":2: bad record: not valid JSON"), std::string::npos) << printed;
  EXPECT_NE(printed.find(o.inputs[0] + ":3: bad record: not valid JSON"), std::string::npos) << printed;
  std::ifstream pj(dir.path / "out" / "prepare.json");
  const nlohmann::json j = nlohmann::json::parse(pj);
  ASSERT_EQ(j.at("bad").size(), 2u);
  EXPECT_EQ(j.at("bad")[1].at("line"), 3);
}

// Through the command line: `llmpi prepare --format sft` with a template file (the JSON form
// that prepare.json records), and the option errors of the sft format.
TEST(PrepareSft, CommandLineWithTemplateFile) {
  TempDir dir;
  const std::string tokp = (dir.path / "tok.bpe").string();
  Tokenizer().save(tokp);
  const std::string in = dir.file("d.jsonl",
      R"({"instruction": "Define cat.", "output": "A feline."})" "\n"
      R"({"instruction": "Define oak."})" "\n");
  const std::string tf = dir.file("t.json",
      R"({"name": "mine", "user": "Q: {content}\n", "assistant": "A: {content}<|endoftext|>",)"
      R"( "end_of_turn": "<|endoftext|>"})");
  const std::string out = (dir.path / "out").string();
  auto run = [&](std::vector<std::string> args) {  // the summary goes to stdout
    CommandEnv env;
    EXPECT_EQ(run_command_line(args, env), 0);
  };
  run({"prepare", in, "--format", "sft", "--out", out, "--tokenizer", tokp, "--template-file", tf,
       "--val-fraction", "0", "--quiet"});
  std::ifstream jf(out + "/prepare.json");
  const nlohmann::json j = nlohmann::json::parse(jf);  // the summary's numbers
  EXPECT_EQ(j["records_read"], 2);
  EXPECT_EQ(j["bad_records"], 1);
  EXPECT_EQ(j["shapes"]["alpaca"], 1);
  EXPECT_EQ(j["template"]["user"], "Q: {content}\n");
  const std::vector<Doc> docs = documents(out + "/train.bin", Tokenizer::load(tokp));
  ASSERT_EQ(docs.size(), 1u);
  EXPECT_EQ(docs[0].text, "Q: Define cat.\nA: A feline.<|endoftext|>");
  EXPECT_EQ(docs[0].learned, "A feline.<|endoftext|>");

  const std::string bad_tf = dir.file("bad.json", R"({"user": "{content}", "assitant": "x"})");
  EXPECT_THROW(run({"prepare", in, "--format", "sft", "--out", out, "--tokenizer", tokp,
                    "--template-file", bad_tf, "--quiet"}),
               UserError);
  EXPECT_THROW(run({"prepare", in, "--format", "sft", "--out", out, "--vocab-size", "300",
                    "--quiet"}),
               UserError);
  EXPECT_THROW(run({"prepare", in, "--format", "sft", "--out", out, "--tokenizer", tokp,
                    "--template", "alpaca", "--template-file", tf, "--quiet"}),
               UserError);
}
