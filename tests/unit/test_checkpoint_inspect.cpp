// `llmpi inspect`: on a valid checkpoint it prints metadata, layout, data mapping and every
// tensor with checksum "ok" (exit 0); a tensor whose data no longer matches is "BAD" (exit 2);
// a truncated file is a UserError naming it (the CLI exits 2).
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <sstream>

#include "cli_util.h"
#include "core/error.h"
#include "io/checkpoint_integrity.h"
#include "io/hdf5.h"
#include "test_checkpoint_util.h"

using namespace llmpi;
using namespace llmpi::testing;
namespace fs = std::filesystem;

namespace {
// Runs `llmpi inspect ARGS...` with stdout captured into a file; returns {exit code, output}.
std::pair<int, std::string> inspect(std::vector<std::string> args, const fs::path& out) {
  args.insert(args.begin(), "inspect");
  return run_cli_captured(args, out);
}
}  // namespace

TEST(CheckpointInspect, PrintsMetadataLayoutMappingAndTensorTable) {
  const fs::path dir = ckpt_temp_dir("inspect");
  const std::string path = (dir / "c.h5").string();
  WholeState w = whole_state();
  CheckpointMeta meta = ckpt_meta(12);
  meta.layout = Layout{.tp = 2, .dp = 1, .pp = 2, .zero_stage = 1};  // 4 ranks
  save_checkpoint(path, MPI_COMM_NULL, w.slabs, meta);
  auto [rc, out] = inspect({path}, dir / "out.txt");
  EXPECT_EQ(rc, 0) << out;
  for (const char* want : {"kind:          checkpoint", "step:          12",
                           "tp=2 pp=2 dp=1 zero_stage=1 world=4", "samples_consumed=48",
                           "3 steps (10..12)", "step 12 took 44 45 46 47",
                           "params/layers.0.w", "[3, 4, 5]", "optimizer/v/final_norm.weight",
                           "integrity:     ok"})
    EXPECT_NE(out.find(want), std::string::npos) << "missing '" << want << "' in\n" << out;
  EXPECT_EQ(out.find("BAD"), std::string::npos) << out;

  // Change one stored value and re-stamp: the digest passes, the tensor's checksum does not.
  {
    h5::Id f = h5::open_file(path, MPI_COMM_NULL, true);
    h5::Id d(H5Dopen2(f, "params/final_norm.weight", H5P_DEFAULT), H5Dclose);
    std::vector<float> v(7);
    ASSERT_GE(H5Dread(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, v.data()), 0);
    v[2] = 9.0f;
    ASSERT_GE(H5Dwrite(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, v.data()), 0);
  }
  stamp_integrity(path, MPI_COMM_NULL);
  std::tie(rc, out) = inspect({path}, dir / "out2.txt");
  EXPECT_EQ(rc, 2);
  EXPECT_NE(out.find("BAD"), std::string::npos) << out;

  fs::resize_file(path, 2000);
  try {
    inspect({path}, dir / "out3.txt");
    FAIL() << "a truncated file was inspected";
  } catch (const UserError& e) {
    EXPECT_NE(std::string(e.what()).find("truncated"), std::string::npos) << e.what();
  }
  auto [hrc, help] = inspect({"--help"}, dir / "help.txt");
  EXPECT_EQ(hrc, 0);
  EXPECT_NE(help.find("usage: llmpi inspect"), std::string::npos);
  fs::remove_all(dir);
}
