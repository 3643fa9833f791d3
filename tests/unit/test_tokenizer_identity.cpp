// Tokenizer identity (data/tokenizer_id.h), issue #13 item 8: token shards (format 2) and
// model files record the identity of the tokenizer that made the ids; a dataset whose shards
// disagree, `llmpi sample --tokenizer` with another tokenizer than the model's, and
// `llmpi eval` on shards of another tokenizer are refused (they printed garbage or a
// plausible loss with exit 0); format-1 shards and older model files still load, with a
// warning. The commands run as the real binary (they start MPI themselves).
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "core/error.h"
#include "data/token_dataset.h"
#include "data/token_shard.h"
#include "data/tokenizer.h"
#include "data/tokenizer_id.h"
#include "io/model_file.h"
#include "model/param_layout.h"
#include "llmpi_binary.h"
#include "test_model_util.h"

using namespace llmpi;
using llmpi::testing::run_llmpi;
namespace fs = std::filesystem;

namespace {

fs::path temp_dir(const std::string& name) {
  fs::path d = fs::temp_directory_path() / ("llmpi_tokid_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

const Tokenizer kA({{'h', 'e'}});  // 258 tokens
const Tokenizer kB({{'a', 'b'}});  // 258 tokens, other ids

}  // namespace

TEST(TokenizerIdentity, ShardsRecordItAndDatasetsAgree) {
  const fs::path dir = temp_dir("shards");
  const std::vector<uint32_t> ids = {1, 2, 3, 257};
  write_token_shard((dir / "a.bin").string(), ids, 258, tokenizer_id(kA));
  write_token_shard((dir / "b.bin").string(), ids, 258, tokenizer_id(kB));
  write_token_shard((dir / "old.bin").string(), ids, 258);  // format 1
  EXPECT_EQ(fs::file_size(dir / "a.bin"), kShardHeaderBytes + 8);
  EXPECT_EQ(fs::file_size(dir / "old.bin"), kShardV1HeaderBytes + 8);
  const TokenShard a((dir / "a.bin").string(), 258), old((dir / "old.bin").string(), 258);
  EXPECT_EQ(a.tokenizer(), tokenizer_id(kA));
  EXPECT_FALSE(old.tokenizer().has_value());
  std::vector<uint32_t> back(4);
  a.read(0, 4, back.data());
  EXPECT_EQ(back, ids);

  EXPECT_EQ(TokenDataset({(dir / "a.bin").string(), (dir / "a.bin").string()}).tokenizer(),
            tokenizer_id(kA));
  EXPECT_FALSE(TokenDataset({(dir / "a.bin").string(), (dir / "old.bin").string()}).tokenizer());
  try {
    TokenDataset({(dir / "a.bin").string(), (dir / "b.bin").string()});
    FAIL() << "a dataset of two tokenizers";
  } catch (const UserError& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("a.bin was made with the tokenizer"), std::string::npos) << m;
    EXPECT_NE(m.find("b.bin with the tokenizer"), std::string::npos) << m;
  }
  EXPECT_EQ(TokenizerId::parse(tokenizer_id(kA).str()), tokenizer_id(kA));
  EXPECT_FALSE(TokenizerId::parse("hash=12 vocab_size=x"));
  EXPECT_THROW(TokenizerId::recorded("garbage", "m.h5"), UserError);
  EXPECT_FALSE(TokenizerId::recorded("", "m.h5"));
  EXPECT_NE(check_same_tokenizer(tokenizer_id(kA), "m.h5", std::nullopt, "old.bin").find(
                "old.bin records no tokenizer identity"),
            std::string::npos);
  fs::remove_all(dir);
}

TEST(TokenizerIdentity, SampleAndEvalRefuseAnotherTokenizer) {
  const fs::path dir = temp_dir("commands");
  kA.save((dir / "a.bpe").string());
  kB.save((dir / "b.bpe").string());
  // A tiny GPT-2 of 258 tokens whose data was made by tokenizer A.
  ModelConfig c = llmpi::testing::tiny_config(Arch::gpt2);
  c.vocab_size = 258;
  auto be = make_host_backend();
  ParamStore store(*be, transformer_params(c, StageRange::full(c)), DType::f32);
  store.init(*be, 3);
  ModelFileMeta meta;
  meta.config_toml = llmpi::testing::tiny_config_toml(Arch::gpt2, 2, 16, 258);
  meta.layout = Layout{};
  meta.tokenizer = tokenizer_id(kA).str();
  const std::string model = (dir / "m.h5").string();
  save_model_file(model, MPI_COMM_NULL, *be, store, meta);
  meta.tokenizer.clear();
  const std::string old_model = (dir / "old.h5").string();
  save_model_file(old_model, MPI_COMM_NULL, *be, store, meta);

  const std::string sample = "sample " + model + " --tokens 2 --tokenizer ";
  auto [rc, out] = run_llmpi(sample + (dir / "b.bpe").string());
  EXPECT_EQ(rc, 2) << out;
  EXPECT_NE(out.find("m.h5 was made with the tokenizer"), std::string::npos) << out;
  std::tie(rc, out) = run_llmpi(sample + (dir / "a.bpe").string());
  EXPECT_EQ(rc, 0) << out;
  std::tie(rc, out) = run_llmpi("sample " + old_model + " --tokens 2 --tokenizer " + (dir / "b.bpe").string());
  EXPECT_EQ(rc, 0) << out;
  EXPECT_NE(out.find("warning: " + old_model + " records no tokenizer identity"), std::string::npos)
      << out;

  std::vector<uint32_t> ids(40);
  for (size_t i = 0; i < ids.size(); ++i) ids[i] = uint32_t(i * 7 % 258);
  write_token_shard((dir / "b.bin").string(), ids, 258, tokenizer_id(kB));
  write_token_shard((dir / "old.bin").string(), ids, 258);
  std::tie(rc, out) = run_llmpi("eval " + model + " --data " + (dir / "b.bin").string());
  EXPECT_EQ(rc, 2) << out;
  EXPECT_NE(out.find("with the tokenizer"), std::string::npos) << out;
  std::tie(rc, out) = run_llmpi("eval " + model + " --data " + (dir / "old.bin").string());
  EXPECT_EQ(rc, 0) << out;
  EXPECT_NE(out.find("old.bin records no tokenizer identity"), std::string::npos) << out;
  EXPECT_NE(out.find("perplexity"), std::string::npos) << out;
  fs::remove_all(dir);
}
