// The launcher's rank before MPI_Init (core/launcher_rank.h), from each launcher's variable,
// in their order: a stale SLURM_PROCID never outranks mpirun's own variable, and a process
// with no variable (or none that reads as a rank) is alone and prints.
#include <gtest/gtest.h>

#include <cstdlib>
#include <map>
#include <optional>
#include <string>

#include "core/launcher_rank.h"

namespace llmpi {
namespace {

// Runs each test with none of the launcher variables set (ctest itself may run under Slurm)
// and restores them afterwards.
class LauncherRank : public ::testing::Test {
 protected:
  static constexpr const char* kNames[] = {"OMPI_COMM_WORLD_RANK", "PMIX_RANK", "PMI_RANK",
                                           "SLURM_PROCID"};
  void SetUp() override {
    for (const char* n : kNames) {
      if (const char* v = std::getenv(n)) saved_[n] = v;
      ::unsetenv(n);
    }
  }
  void TearDown() override {
    for (const char* n : kNames) {
      ::unsetenv(n);
      if (saved_.count(n)) ::setenv(n, saved_[n].c_str(), 1);
    }
  }
  static void set(const char* name, const char* value) { ::setenv(name, value, 1); }

 private:
  std::map<std::string, std::string> saved_;
};

TEST_F(LauncherRank, AloneWithoutAnyVariable) {
  EXPECT_EQ(launcher_rank(), std::nullopt);
  EXPECT_TRUE(prints_for_all_ranks());
}

TEST_F(LauncherRank, EachLauncherVariableAlone) {
  for (const char* n : kNames) {
    set(n, "3");
    EXPECT_EQ(launcher_rank(), std::optional<int>(3)) << n;
    EXPECT_FALSE(prints_for_all_ranks()) << n;
    set(n, "0");
    EXPECT_EQ(launcher_rank(), std::optional<int>(0)) << n;
    EXPECT_TRUE(prints_for_all_ranks()) << n;
    ::unsetenv(n);
  }
}

TEST_F(LauncherRank, FirstVariableSetDecidesInTheDocumentedOrder) {
  // mpirun inside a Slurm batch job: every rank inherits the batch shell's SLURM_PROCID=0.
  set("SLURM_PROCID", "0");
  set("OMPI_COMM_WORLD_RANK", "2");
  EXPECT_EQ(launcher_rank(), std::optional<int>(2));
  EXPECT_FALSE(prints_for_all_ranks());
  ::unsetenv("OMPI_COMM_WORLD_RANK");
  // Each variable outranks the ones after it.
  set("SLURM_PROCID", "4");
  set("PMI_RANK", "3");
  EXPECT_EQ(launcher_rank(), std::optional<int>(3));
  set("PMIX_RANK", "0");
  EXPECT_EQ(launcher_rank(), std::optional<int>(0));
  EXPECT_TRUE(prints_for_all_ranks());
  set("OMPI_COMM_WORLD_RANK", "1");
  EXPECT_EQ(launcher_rank(), std::optional<int>(1));
}

TEST_F(LauncherRank, AValueThatIsNoRankLeavesItUnknownAndPrints) {
  for (const char* bad : {"", "x", "-1", "+1", " 1", "1x", "1.0", "99999999999999999999"}) {
    set("OMPI_COMM_WORLD_RANK", bad);
    set("SLURM_PROCID", "1");  // a later variable does not stand in for a damaged one
    EXPECT_EQ(launcher_rank(), std::nullopt) << "'" << bad << "'";
    EXPECT_TRUE(prints_for_all_ranks()) << "'" << bad << "'";
  }
}

}  // namespace
}  // namespace llmpi
