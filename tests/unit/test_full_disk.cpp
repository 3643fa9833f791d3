// A full disk during a checkpoint save (issue #13 item 1), simulated by a
// file-size limit (RLIMIT_FSIZE through `ulimit -f`, SIGXFSZ ignored, so writes fail with
// EFBIG as they would with ENOSPC), through the whole `train` command on 1 and 2 ranks.
// Before: one rank printed the error and then crashed in MPI_Finalize (exit 139); two ranks
// hung (inside HDF5's collective write or close after one rank's failed write) and left a
// .tmp. Now the room is checked before HDF5 is entered (io/checkpoint_space.h): one
// decision on every rank (the save failed), the temporary removed, the earlier checkpoints
// and `latest` intact, exit 2 with the message — within a deadline (`timeout` reports a hang
// as 124). tests/mpi/full_disk.2.cpp checks the same agreement in process.
// A disk that fills up *during* the write, after the room was checked (another program
// taking the space), is injected with LLMPI_TEST_DISK_FULL (io/checkpoint_space.h): one
// rank's writes fail inside HDF5's collective calls; every rank must still leave the write
// together, remove the temporary and exit 2.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "corpus_util.h"
#include "io/checkpoint.h"
#include "jobs/checkpoint_dir.h"
#include "llmpi_binary.h"

using namespace llmpi;
namespace fs = std::filesystem;

namespace {

std::string config_text(const fs::path& d) {
  return "[model]\narch = \"gpt2\"\nvocab_size = 64\nn_layer = 2\nn_head = 4\nd_model = 256\n"
         "max_seq_len = 16\n[train]\nsteps = 4\nbatch_size = 2\nseq_len = 16\nlr = 1e-2\n"
         "log_every = 100\n[data]\ntrain = \"" + (d / "train.bin").string() +
         "\"\n[checkpoint]\nevery = 2\nkeep_last = 5\n[run]\ndir = \"" + (d / "run").string() +
         "\"\n";
}

// Trains steps 1..4 (checkpoints 2 and 4, 19 MB each), then continues to step 8 under an
// 8 MiB file-size limit (enough for MPI's own files) on `ranks` ranks: the save of step 6
// fails. Checks the outcome.
// disk_full_rank < 0: the file-size limit before the save (found by the room check); else
// LLMPI_TEST_DISK_FULL on that rank: the disk fills mid-write.
void expect_clean_failure(int ranks, int disk_full_rank = -1) {
  const fs::path d = llmpi::testing::learnable_corpus(
      "full_disk_" + std::to_string(ranks) + "_" + std::to_string(disk_full_rank + 1), 5, 4000);
  std::ofstream(d / "c.toml") << config_text(d);
  const std::string llmpi = LLMPI_BINARY_PATH;
  auto [rc, out] = llmpi::testing::run_shell(llmpi + " train " + (d / "c.toml").string() + " 2>&1");
  ASSERT_EQ(rc, 0) << out;
  const std::string run = (d / "run").string();
  ASSERT_EQ(list_checkpoints(run).size(), 2u) << out;

  // Mid-write: the 19 MB file fills up at 6 MB on that rank, in the middle of the tensors.
  // Every rank aggregates data for Open MPI's collective writes (as on a job of many nodes;
  // with one aggregator rank 0 would write all the data and rank 1 nothing).
  const std::string limit = disk_full_rank < 0 ? "ulimit -f 16384; "
                                               : "export OMPI_MCA_io_ompio_num_aggregators=" +
                                                     std::to_string(ranks) +
                                                     " LLMPI_TEST_DISK_FULL=rank=" +
                                                     std::to_string(disk_full_rank) +
                                                     ",bytes=6000000; ";
  const std::string limited = "trap \"\" XFSZ; " + limit + "exec " + llmpi + " train " +
                              (d / "c.toml").string() + " --set train.steps=8" +
                              (ranks > 1 ? " --set parallel.dp=2 --set train.batch_size=1" : "") +
                              // ZeRO 1: rank 1 owns (writes) half of the moments
                              (ranks > 1 && disk_full_rank >= 0 ? " --set parallel.zero_stage=1"
                                                                : "");
  std::string cmd = "timeout 120 ";
  if (ranks > 1)
    cmd += "mpiexec -n " + std::to_string(ranks) + " --oversubscribe --bind-to none " +
           (::geteuid() == 0 ? "--allow-run-as-root " : "") + "sh -c '" + limited + "'";
  else
    cmd += "sh -c '" + limited + "'";
  std::tie(rc, out) = llmpi::testing::run_shell(cmd + " 2>&1");
  EXPECT_NE(rc, 124) << "hung:\n" << out;
  EXPECT_EQ(rc, 2) << out;
  EXPECT_NE(out.find("saving checkpoint " + checkpoint_path(run, 6) + " failed"), std::string::npos)
      << out;
  if (disk_full_rank < 0)
    EXPECT_NE(out.find("file-size limit (ulimit -f)"), std::string::npos) << out;  // the reason
  else
    EXPECT_NE(out.find("(disk full or a file-size limit?)"), std::string::npos) << out;
  EXPECT_FALSE(fs::exists(checkpoint_path(run, 6) + ".tmp")) << out;
  EXPECT_FALSE(fs::exists(checkpoint_path(run, 6))) << out;
  for (int s : {2, 4}) EXPECT_EQ(verify_checkpoint(checkpoint_path(run, s), MPI_COMM_NULL), "");
  EXPECT_EQ(*read_latest(run), checkpoint_filename(4));
  fs::remove_all(d);
}

}  // namespace

TEST(FullDisk, SaveFailsCleanlyOnOneRank) { expect_clean_failure(1); }
TEST(FullDisk, SaveFailsCleanlyOnTwoRanks) { expect_clean_failure(2); }
TEST(FullDisk, DiskFillingMidWriteFailsCleanlyOnOneRank) { expect_clean_failure(1, 0); }
TEST(FullDisk, DiskFillingMidWriteOnRankOneFailsCleanlyOnTwoRanks) { expect_clean_failure(2, 1); }
TEST(FullDisk, DiskFillingMidWriteOnRankZeroFailsCleanlyOnTwoRanks) { expect_clean_failure(2, 0); }
