// A full disk during a checkpoint save on 2 ranks (issue #13 item 1), in process: a file-size
// limit (RLIMIT_FSIZE) on ONE rank only, or a checkpoint larger than the free space, must
// give the same failure on both ranks before HDF5 is entered (a failed write inside HDF5's
// collective calls hung the job), with no .tmp left and the earlier checkpoint intact.
// Rank 0 owns the parameters, rank 1 the moments, so both write. ctest's timeout for this
// test is short (tests/CMakeLists.txt): a regression that hangs fails.
#include <gtest/gtest.h>
#include <mpi.h>
#include <sys/resource.h>

#include <csignal>
#include <filesystem>
#include <optional>
#include <string>

#include "core/error.h"
#include "io/checkpoint.h"
#include "jobs/checkpoint_dir.h"
#include "../unit/test_checkpoint_util.h"

namespace llmpi {
namespace {

namespace fs = std::filesystem;

int rank() {
  int r = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &r);
  return r;
}

// Rank 0's directory, known to every rank, holding a good checkpoint of step 2.
struct TwoRankRun {
  std::string dir;
  testing::WholeState w = testing::whole_state();
  TwoRankRun(const std::string& name) {
    for (TensorSlab& s : w.slabs.params) s.owner = rank() == 0;
    for (auto* g : {&w.slabs.m, &w.slabs.v})
      for (TensorSlab& s : *g) s.owner = rank() == 1;
    std::string d = rank() == 0 ? testing::ckpt_temp_dir(name).string() : "";
    if (rank() == 0) fs::create_directories(fs::path(d) / "checkpoints");
    int n = int(d.size());
    MPI_Bcast(&n, 1, MPI_INT, 0, MPI_COMM_WORLD);
    d.resize(size_t(n));
    MPI_Bcast(d.data(), n, MPI_CHAR, 0, MPI_COMM_WORLD);
    dir = d;
    save_checkpoint(checkpoint_path(dir, 2), MPI_COMM_WORLD, w.slabs, testing::ckpt_meta(2));
  }
  ~TwoRankRun() {
    MPI_Barrier(MPI_COMM_WORLD);
    if (rank() == 0) fs::remove_all(dir);
  }
};

// Saves step 4; expects the same UserError on both ranks, containing `expected`, and the
// directory as it was (step 2 only, verifying).
void expect_same_failure(TwoRankRun& run, CheckpointSlabs& slabs, const std::string& expected) {
  const std::string path = checkpoint_path(run.dir, 4);
  std::string msg;
  try {
    save_checkpoint(path, MPI_COMM_WORLD, slabs, testing::ckpt_meta(4));
  } catch (const UserError& e) {
    msg = e.what();
  }
  EXPECT_NE(msg.find("saving checkpoint " + path + " failed: "), std::string::npos) << msg;
  EXPECT_NE(msg.find(expected), std::string::npos) << msg;
  std::string rank0 = msg;
  int n = int(rank0.size());
  MPI_Bcast(&n, 1, MPI_INT, 0, MPI_COMM_WORLD);
  rank0.resize(size_t(n));
  MPI_Bcast(rank0.data(), n, MPI_CHAR, 0, MPI_COMM_WORLD);
  EXPECT_EQ(msg, rank0) << "rank " << rank() << " decided otherwise than rank 0";
  EXPECT_FALSE(fs::exists(path + ".tmp"));
  EXPECT_FALSE(fs::exists(path));
  EXPECT_EQ(verify_checkpoint(checkpoint_path(run.dir, 2), MPI_COMM_WORLD), "");
  EXPECT_EQ(list_checkpoints(run.dir).size(), 1u);
}

// Lowers this process's RLIMIT_FSIZE soft limit while alive (writes past it fail with EFBIG:
// SIGXFSZ is ignored, as a shell's `trap "" XFSZ` does).
class FileSizeLimit {
 public:
  explicit FileSizeLimit(rlim_t bytes) {
    std::signal(SIGXFSZ, SIG_IGN);
    ::getrlimit(RLIMIT_FSIZE, &saved_);
    rlimit lim = saved_;
    lim.rlim_cur = bytes;
    ::setrlimit(RLIMIT_FSIZE, &lim);
  }
  ~FileSizeLimit() { ::setrlimit(RLIMIT_FSIZE, &saved_); }
  FileSizeLimit(const FileSizeLimit&) = delete;
  FileSizeLimit& operator=(const FileSizeLimit&) = delete;

 private:
  rlimit saved_{};
};

TEST(FullDiskTwoRanks, FileSizeLimitOnOneRankFailsTheSaveOnBoth) {
  for (int limited = 0; limited < 2; ++limited) {
    TwoRankRun run("full_disk_limit_" + std::to_string(limited));
    {
      std::optional<FileSizeLimit> lim;
      if (rank() == limited) lim.emplace(64 * 1024);  // below the ~1 MiB estimate
      expect_same_failure(run, run.w.slabs,
                          "rank " + std::to_string(limited) + "'s file-size limit (ulimit -f)");
    }
    // The limit gone, the same save goes through.
    save_checkpoint(checkpoint_path(run.dir, 4), MPI_COMM_WORLD, run.w.slabs,
                    testing::ckpt_meta(4));
    EXPECT_EQ(verify_checkpoint(checkpoint_path(run.dir, 4), MPI_COMM_WORLD), "");
  }
}

TEST(FullDiskTwoRanks, CheckpointLargerThanTheFreeSpaceIsRefusedBeforeWriting) {
  TwoRankRun run("full_disk_space");
  // A tensor of 2^50 floats (4 PiB) that rank 1 would write: larger than any free space, so
  // refused by the free-space check; its data is never read (a write would crash, not pass).
  CheckpointSlabs huge = run.w.slabs;
  TensorSlab big;
  big.name = "huge";
  big.global_shape = {int64_t(1) << 50};
  big.owner = rank() == 1;
  huge.params.push_back(big);
  expect_same_failure(run, huge, "free, the checkpoint needs about");
}

}  // namespace
}  // namespace llmpi
