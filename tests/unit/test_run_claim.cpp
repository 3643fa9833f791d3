// The claim of a run directory (jobs/run_claim.h), issue #13 items 2 and 4: a new or empty
// directory is created and marked; a directory of unrelated files is refused and left
// untouched (llmpi overwrote its config.toml and model.h5, and retention deleted its
// step_00000001.h5); a run of an llmpi older than the marker is adopted; a directory that
// cannot be written is reported at start-up (it was found at the first save, after training,
// as "internal error: filesystem error"); links are not followed.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "jobs/checkpoint_dir.h"
#include "jobs/run_claim.h"
#include "llmpi_binary.h"
#include "model/model_config.h"
#include "test_model_util.h"

using namespace llmpi;
namespace fs = std::filesystem;

namespace {

fs::path temp_dir(const std::string& name) {
  fs::path d = fs::temp_directory_path() / ("llmpi_claim_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

std::string text_of(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace

TEST(RunClaim, NewDirectoriesAreMarkedForeignOnesRefused) {
  const fs::path root = temp_dir("foreign");
  const fs::path run = root / "run";
  EXPECT_EQ(claim_run_directory(run.string(), true), "");
  EXPECT_TRUE(fs::is_regular_file(run / kRunMarker));
  EXPECT_TRUE(fs::is_directory(run / "checkpoints"));
  EXPECT_EQ(std::distance(fs::directory_iterator(run / "checkpoints"), fs::directory_iterator{}), 0)
      << "the write probe was left behind";
  EXPECT_EQ(claim_run_directory(run.string(), true), "");  // marked: its own

  const fs::path empty = root / "empty";
  fs::create_directories(empty);
  EXPECT_EQ(claim_run_directory(empty.string(), false), "");
  EXPECT_TRUE(fs::exists(empty / kRunMarker));

  // The user's files: a config, a model, a file named like a checkpoint, a temporary.
  const fs::path mine = root / "mine";
  fs::create_directories(mine / "checkpoints");
  std::ofstream(mine / "config.toml") << "user config";
  std::ofstream(mine / "model.h5") << "user model";
  std::ofstream(mine / "checkpoints" / "step_00000001.h5") << "user data";
  std::ofstream(mine / "checkpoints" / "notes.tmp") << "user notes";
  const std::string why = claim_run_directory(mine.string(), true);
  EXPECT_NE(why.find("run.dir = \"" + mine.string() + "\" is a non-empty directory that is not an "
                     "llmpi run directory"), std::string::npos) << why;
  EXPECT_FALSE(fs::exists(mine / kRunMarker));
  EXPECT_EQ(text_of(mine / "config.toml"), "user config");
  EXPECT_EQ(text_of(mine / "checkpoints" / "step_00000001.h5"), "user data");
  // Clean-up touches only llmpi's own temporaries, whatever the directory.
  std::ofstream(mine / "checkpoints" / "step_00000002.h5.tmp") << "interrupted";
  EXPECT_EQ(clean_temporaries(mine.string()),
            std::vector<std::string>{(mine / "checkpoints" / "step_00000002.h5.tmp").string()});
  EXPECT_EQ(text_of(mine / "checkpoints" / "notes.tmp"), "user notes");

  const fs::path file = root / "a_file";
  std::ofstream(file) << "x";
  EXPECT_NE(claim_run_directory(file.string(), true).find("is not a directory"), std::string::npos);
  fs::remove_all(root);
}

TEST(RunClaim, RunsOfOlderLlmpiAreAdopted) {
  const fs::path run = temp_dir("legacy");
  fs::create_directories(run / "checkpoints");
  fs::copy_file(fs::path(LLMPI_SOURCE_DIR) / "tests/fixtures/checkpoint-v1/step_00000002.h5",
                run / "checkpoints" / "step_00000002.h5");
  std::ofstream(run / "config.toml") << "[model]\n";
  std::ofstream(run / "checkpoints" / "latest") << "step_00000002.h5\n";
  EXPECT_EQ(claim_run_directory(run.string(), true), "");
  EXPECT_TRUE(fs::exists(run / kRunMarker));
  fs::remove_all(run);
}

TEST(RunClaim, LinksAreNotFollowed) {
  const fs::path root = temp_dir("links");
  std::ofstream(root / "target") << "precious";
  fs::create_directories(root / "run");
  fs::create_symlink(root / "target", root / "run" / kRunMarker);
  EXPECT_NE(claim_run_directory((root / "run").string(), false).find("symbolic link"),
            std::string::npos);
  EXPECT_EQ(claim_run_directory((root / "run2").string(), true), "");
  fs::create_symlink(root / "target", root / "run2" / "checkpoints" / "step_00000009.h5");
  fs::create_symlink(root / "target", root / "run2" / "checkpoints" / "latest.tmp");
  EXPECT_TRUE(list_checkpoints((root / "run2").string()).empty());  // retention never sees it
  write_latest((root / "run2").string(), 3);  // replaces the link, never writes through it
  EXPECT_EQ(text_of(root / "target"), "precious");
  EXPECT_EQ(*read_latest((root / "run2").string()), "step_00000003.h5");
  fs::remove_all(root);
}

// A directory that cannot be written: here every write fails for the file-size limit (the
// test may run as root, for whom permissions do not fail).
TEST(RunClaim, UnwritableDirectoriesAreFoundAtStartUp) {
  const fs::path root = temp_dir("unwritable");
  rlimit old{};
  ASSERT_EQ(::getrlimit(RLIMIT_FSIZE, &old), 0);
  auto* const old_handler = ::signal(SIGXFSZ, SIG_IGN);  // EFBIG instead of the signal
  rlimit none = old;
  none.rlim_cur = 0;
  ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &none), 0);
  const std::string why = claim_run_directory((root / "run").string(), true);
  ::setrlimit(RLIMIT_FSIZE, &old);
  ::signal(SIGXFSZ, old_handler);
  EXPECT_NE(why.find("cannot write there (File too large); training would fail at its first save"),
            std::string::npos) << why;
  fs::remove_all(root);
}

// `llmpi train` claims run.dir before it loads anything: a foreign directory is refused
// (exit 2) and left as it was.
TEST(RunClaim, TrainRefusesAForeignDirectory) {
  const fs::path root = temp_dir("train");
  fs::create_directories(root / "mine");
  std::ofstream(root / "mine" / "config.toml") << "user config";
  std::ofstream(root / "mine" / "model.h5") << "user model";
  std::ofstream(root / "c.toml") << llmpi::testing::tiny_config_toml(Arch::gpt2) +
                                        "[run]\ndir = \"" + (root / "mine").string() + "\"\n";
  const auto [rc, out] = llmpi::testing::run_llmpi("train " + (root / "c.toml").string());
  EXPECT_EQ(rc, 2) << out;
  EXPECT_NE(out.find("is a non-empty directory that is not an llmpi run directory"),
            std::string::npos) << out;
  EXPECT_EQ(text_of(root / "mine" / "config.toml"), "user config");
  EXPECT_EQ(text_of(root / "mine" / "model.h5"), "user model");
  EXPECT_EQ(std::distance(fs::directory_iterator(root / "mine"), fs::directory_iterator{}), 2);
  fs::remove_all(root);
}
