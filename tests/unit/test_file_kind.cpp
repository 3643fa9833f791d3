// Input paths that are not regular files (core/file_kind.h): a FIFO given as a model, a
// tokenizer, a token shard or a config blocked open() for ever, deaf to SIGTERM (`llmpi eval
// --data FIFO` hung); a directory read as an empty or short file. Every reader refuses them
// before opening, naming the path and what was expected. The commands run as the real binary
// under `timeout`, so a regression fails (exit 124) instead of hanging the suite.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "core/file_kind.h"
#include "data/token_shard.h"
#include "data/tokenizer.h"
#include "data/tokenizer_id.h"
#include "io/model_file.h"
#include "model/param_layout.h"
#include "llmpi_binary.h"
#include "test_model_util.h"

using namespace llmpi;
namespace fs = std::filesystem;

namespace {

fs::path temp_dir(const std::string& name) {
  fs::path d = fs::temp_directory_path() / ("llmpi_filekind_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

// `llmpi ARGS` killed after 30 s (exit 124): a blocked open() fails the test, not the suite.
std::pair<int, std::string> run_bounded(const std::string& args) {
  return llmpi::testing::run_shell("timeout -s KILL 30 " + std::string(LLMPI_BINARY_PATH) + " " +
                                   args + " 2>&1");
}

void expect_refused(const std::string& args, const std::string& path, const std::string& expected) {
  const auto [rc, out] = run_bounded(args);
  EXPECT_EQ(rc, 2) << args << "\n" << out;
  EXPECT_NE(out.find(path + ": is not a regular file but a FIFO (named pipe); expected " + expected),
            std::string::npos)
      << args << "\n" << out;
}

}  // namespace

TEST(FileKind, TellsWhatAPathIs) {
  const fs::path dir = temp_dir("kinds");
  std::ofstream(dir / "file") << "x";
  ASSERT_EQ(::mkfifo((dir / "fifo").c_str(), 0600), 0);
  EXPECT_EQ(not_regular_file((dir / "file").string()), "");
  EXPECT_EQ(not_regular_file((dir / "missing").string()), "");  // open() says why
  EXPECT_EQ(not_regular_file(dir.string()), "is a directory");
  EXPECT_EQ(not_regular_file((dir / "fifo").string()), "is not a regular file but a FIFO (named pipe)");
  EXPECT_EQ(not_regular_file("/dev/null"), "is not a regular file but a character device");
  try {
    require_regular_file(dir.string(), "a token shard");
    FAIL() << "a directory passed";
  } catch (const UserError& e) {
    EXPECT_EQ(std::string(e.what()), dir.string() + ": is a directory; expected a token shard");
  }
  fs::remove_all(dir);
}

TEST(FileKind, CommandsRefuseAFifoInsteadOfBlocking) {
  const fs::path dir = temp_dir("commands");
  const std::string fifo = (dir / "fifo").string();
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  const Tokenizer tok({{'h', 'e'}});  // 258 tokens
  tok.save((dir / "tok.bpe").string());
  ModelConfig c = llmpi::testing::tiny_config(Arch::gpt2);
  c.vocab_size = 258;
  auto be = make_host_backend();
  ParamStore store(*be, transformer_params(c, StageRange::full(c)), DType::f32);
  store.init(*be, 3);
  ModelFileMeta meta;
  meta.config_toml = llmpi::testing::tiny_config_toml(Arch::gpt2, 2, 16, 258);
  meta.layout = Layout{};
  meta.tokenizer = tokenizer_id(tok).str();
  const std::string model = (dir / "m.h5").string();
  save_model_file(model, MPI_COMM_NULL, *be, store, meta);
  std::vector<uint32_t> ids(64);
  for (size_t i = 0; i < ids.size(); ++i) ids[i] = uint32_t(i * 7 % 258);
  const std::string shard = (dir / "a.bin").string();
  write_token_shard(shard, ids, 258, tokenizer_id(tok));

  const std::string model_kind = "an HDF5 file";
  const std::string shard_kind = "a token shard (.bin, from llmpi prepare)";
  const std::string tok_kind = "a tokenizer file (tokenizer.bpe, from llmpi prepare)";
  expect_refused("sample " + fifo, fifo, model_kind);
  expect_refused("sample " + model + " --tokens 2 --tokenizer " + fifo, fifo, tok_kind);
  expect_refused("eval " + fifo, fifo, model_kind);
  expect_refused("eval " + model + " --data " + fifo, fifo, shard_kind);
  expect_refused("inspect " + fifo, fifo, "a checkpoint file (step_N.h5)");
  expect_refused("train " + fifo, fifo, "a TOML configuration file");

  // train: data.train, data.val and data.tokenizer of the config.
  const std::string config = (dir / "c.toml").string();
  std::ofstream(config) << llmpi::testing::tiny_config_toml(Arch::gpt2, 2, 16, 258)
                        << "[run]\ndir = \"" << (dir / "run").string() << "\"\n";
  const std::string train = "train " + config + " --no-save --set ";
  expect_refused(train + "data.train=" + fifo, fifo, shard_kind);
  expect_refused(train + "data.train=" + shard + " --set data.val=" + fifo, fifo, shard_kind);
  expect_refused(train + "data.train=" + shard + " --set data.tokenizer=" + fifo, fifo, tok_kind);
  // An empty data.tokenizer is refused before training (it was first read by sample, later).
  const std::string empty = (dir / "empty.bpe").string();
  std::ofstream(empty).flush();
  const auto [rc_empty, out_empty] =
      run_bounded(train + "data.train=" + shard + " --set data.tokenizer=" + empty);
  EXPECT_EQ(rc_empty, 2) << out_empty;
  EXPECT_NE(out_empty.find("data.tokenizer: " + empty), std::string::npos) << out_empty;
  EXPECT_EQ(out_empty.find("step 1"), std::string::npos) << out_empty;
  const auto [rc, out] = run_bounded(train + "data.train=" + shard + " --set data.tokenizer=" +
                                     (dir / "tok.bpe").string());
  EXPECT_EQ(rc, 0) << out;
  fs::remove_all(dir);
}

// A run directory argument that is a file or a FIFO is named for what it is, and a logbook.h5
// that is a FIFO or a directory is not reported as missing.
TEST(FileKind, RunDirectoryArgumentsSayWhatIsThereInstead) {
  const fs::path dir = temp_dir("rundir");
  const std::string file = (dir / "file").string(), fifo = (dir / "fifo").string();
  std::ofstream(file) << "x";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  for (const std::string cmd : {"logbook ", "analyze ", "slurm status --no-slurm "}) {
    for (const auto& [path, kind] : {std::pair{file, "a regular file"}, std::pair{fifo, "a FIFO (named pipe)"}}) {
      const auto [rc, out] = run_bounded(cmd + path);
      EXPECT_EQ(rc, 2) << cmd << path << "\n" << out;
      EXPECT_NE(out.find(path + ": is " + kind + ", not a run directory"), std::string::npos)
          << cmd << path << "\n" << out;
    }
  }
  const auto [rc_missing, out_missing] = run_bounded("logbook " + (dir / "missing").string());
  EXPECT_EQ(rc_missing, 2) << out_missing;
  EXPECT_NE(out_missing.find("missing: no such run directory"), std::string::npos) << out_missing;

  const fs::path run = dir / "run";
  fs::create_directories(run);
  const std::string logbook = (run / "logbook.h5").string();
  ASSERT_EQ(::mkfifo(logbook.c_str(), 0600), 0);
  const auto [rc_fifo, out_fifo] = run_bounded("logbook " + run.string());
  EXPECT_EQ(rc_fifo, 2) << out_fifo;
  EXPECT_NE(out_fifo.find(logbook + ": is not a regular file but a FIFO (named pipe); expected the "
                          "run's logbook (an HDF5 file)"),
            std::string::npos)
      << out_fifo;
  fs::remove(logbook);
  fs::create_directories(logbook);
  const auto [rc_dir, out_dir] = run_bounded("logbook " + run.string());
  EXPECT_EQ(rc_dir, 2) << out_dir;
  EXPECT_NE(out_dir.find(logbook + ": is a directory; expected"), std::string::npos) << out_dir;
  fs::remove(logbook);
  const auto [rc_none, out_none] = run_bounded("logbook " + run.string());
  EXPECT_EQ(rc_none, 2) << out_none;
  EXPECT_NE(out_none.find(logbook + ": no logbook (no such file)"), std::string::npos) << out_none;
  fs::remove_all(dir);
}
