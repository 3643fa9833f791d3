// The output rule (core/output_rule.h) on its own: for a claimed file, its temporary
// "<file>.tmp" and a file the command would remove, which paths are refused (with or without
// force) and that a refusal names the path and leaves every path as it was. The commands'
// own claims are tested end to end in tests/e2e/output_rule.sh.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/error.h"
#include "core/output_rule.h"

using namespace llmpi;
namespace fs = std::filesystem;

namespace {

class OutputRule : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("llmpi_output_rule_" + std::to_string(::getpid()) + "_" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string path(const std::string& n) const { return (dir_ / n).string(); }
  std::string put(const std::string& n, const std::string& text = "someone's notes\n") const {
    std::ofstream(path(n), std::ios::binary) << text;
    return path(n);
  }
  // A claim of dir_/out.bin whose earlier outputs are recognised by `ours`.
  OutputClaim claim(bool ours = false) const {
    return {dir_.string(), {path("out.bin")}, "a test output",
            [ours](const std::string&) { return ours; }};
  }
  fs::path dir_;
};

std::string contents(const std::string& p) {
  std::ifstream f(p, std::ios::binary);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

// The UserError's message, or "(no UserError)".
std::string refusal(const OutputClaim& c, bool force) {
  try {
    claim_outputs(c, force);
  } catch (const UserError& e) {
    return e.what();
  }
  return "(no UserError)";
}

bool has(const std::string& msg, const std::string& part) {
  return msg.find(part) != std::string::npos;
}

}  // namespace

TEST_F(OutputRule, AClaimedFileIsReplacedWhenOursOrForced) {
  EXPECT_EQ(refusal(claim(), false), "(no UserError)");  // absent
  put("out.bin");
  const std::string msg = refusal(claim(), false);
  EXPECT_TRUE(has(msg, path("out.bin") + ": exists and is not a test output")) << msg;
  EXPECT_TRUE(has(msg, "--force")) << msg;
  EXPECT_EQ(refusal(claim(/*ours=*/true), false), "(no UserError)");
  EXPECT_EQ(refusal(claim(), true), "(no UserError)");
  fs::remove(path("out.bin"));
  fs::create_directory(path("out.bin"));
  EXPECT_TRUE(has(refusal(claim(true), true), path("out.bin") + ": is a directory"));
}

TEST_F(OutputRule, ALeftoverTemporaryIsReplacedOnlyWithForce) {
  const std::string tmp = put("out.bin.tmp", "an interrupted run's bytes, or someone's\n");
  EXPECT_EQ(temporary_of(path("out.bin")), tmp);
  // Refused without force whatever the claimed file is: absent, ours, or foreign.
  for (const bool ours : {false, true}) {
    const std::string msg = refusal(claim(ours), false);
    EXPECT_TRUE(has(msg, tmp + ": exists; it is the temporary llmpi writes " + path("out.bin") +
                             " through, then renames (an interrupted earlier run leaves one)"))
        << msg;
    EXPECT_TRUE(has(msg, "Pass --force to replace it")) << msg;
  }
  put("out.bin");
  EXPECT_TRUE(has(refusal(claim(true), false), tmp + ": exists; it is the temporary"));
  EXPECT_EQ(refusal(claim(), true), "(no UserError)");
  EXPECT_EQ(contents(tmp), "an interrupted run's bytes, or someone's\n");  // checks only look
}

TEST_F(OutputRule, ATemporaryThatWouldBeWrittenThroughIsRefusedEvenWithForce) {
  const std::string tmp = path("out.bin.tmp"), target = put("elsewhere.txt");
  auto refused_with_force = [&](const std::string& why) {
    const std::string msg = refusal(claim(true), true);
    EXPECT_TRUE(has(msg, tmp + ": " + why + "; it is the temporary llmpi writes")) << msg;
    EXPECT_TRUE(has(msg, "nothing was written, even with --force")) << msg;
  };
  fs::create_symlink(target, tmp);  // a writer would truncate elsewhere.txt through it
  refused_with_force("is a symbolic link");
  fs::remove(tmp);
  fs::create_symlink(path("nowhere.txt"), tmp);  // dangling: a writer would create nowhere.txt
  refused_with_force("is a symbolic link");
  fs::remove(tmp);
  fs::create_hard_link(target, tmp);  // truncating it truncates elsewhere.txt
  refused_with_force("is a file with other hard links");
  fs::remove(tmp);
  fs::create_directory(tmp);
  refused_with_force("is a directory");
  fs::remove(tmp);
  ASSERT_EQ(::mkfifo(tmp.c_str(), 0600), 0);
  refused_with_force("is not a regular file but a FIFO (named pipe)");
  EXPECT_EQ(contents(target), "someone's notes\n");
  EXPECT_FALSE(fs::exists(path("nowhere.txt")));
}

TEST_F(OutputRule, AFileToRemoveMustBeOursEvenWithForce) {
  OutputClaim c = claim();
  c.removes = {path("stale.bin")};
  c.removes_why = "this run writes out.bin instead";
  EXPECT_EQ(refusal(c, false), "(no UserError)");  // absent: nothing to remove
  put("stale.bin", "not ours\n");
  for (const bool force : {false, true}) {
    const std::string msg = refusal(c, force);
    EXPECT_TRUE(has(msg, path("stale.bin") + ": exists and is not a test output; this run "
                                             "writes out.bin instead.")) << msg;
    EXPECT_TRUE(has(msg, "--force replaces files, never deletes one")) << msg;
  }
  EXPECT_EQ(contents(path("stale.bin")), "not ours\n");
  c.ours = [](const std::string&) { return true; };
  EXPECT_EQ(refusal(c, false), "(no UserError)");  // the command's own: it may remove it
  fs::remove(path("stale.bin"));
  fs::create_directory(path("stale.bin"));
  EXPECT_TRUE(has(refusal(c, true), path("stale.bin") + ": is a directory; this run writes"));
  fs::remove(path("stale.bin"));
  fs::create_symlink(path("nowhere"), path("stale.bin"));  // dangling, still something there
  c.ours = nullptr;
  EXPECT_TRUE(has(refusal(c, true), path("stale.bin") + ": exists and is not a test output"));
}
