// `llmpi inspect`: on a valid checkpoint it prints metadata, layout, data mapping and every
// tensor with checksum "ok" (exit 0); a tensor whose data no longer matches is "BAD" (exit 2);
// a truncated file is a UserError naming it (the CLI exits 2). It runs the validation of a
// resume (structure) and checks the stored config against the tensors; a directory is named.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <sstream>

#include "cli_util.h"
#include "core/error.h"
#include "io/checkpoint_integrity.h"
#include "io/hdf5.h"
#include "jobs/checkpoint_dir.h"
#include "model/param_layout.h"
#include "test_checkpoint_util.h"
#include "test_model_util.h"

using namespace llmpi;
using namespace llmpi::testing;
namespace fs = std::filesystem;

namespace {
// Runs `llmpi inspect ARGS...` with stdout captured into a file; returns {exit code, output}.
std::pair<int, std::string> inspect(std::vector<std::string> args, const fs::path& out) {
  args.insert(args.begin(), "inspect");
  return run_cli_captured(args, out);
}
// The tensors of the tiny GPT-2 model (test_model_util.h): a checkpoint that inspect can
// check against its stored config, tiny_config_toml().
std::vector<TensorSpec> tiny_model_specs() {
  const ModelConfig c = llmpi::testing::tiny_config(Arch::gpt2);
  std::vector<TensorSpec> specs;
  for (const ParamInfo& p : transformer_params(c, StageRange::full(c)))
    specs.push_back({p.name, std::vector<int64_t>(p.global_shape.dims.begin(),
                                                  p.global_shape.dims.begin() + p.global_shape.ndim)});
  return specs;
}

CheckpointMeta tiny_meta(int64_t step) {
  CheckpointMeta meta = ckpt_meta(step);
  meta.config_toml = llmpi::testing::tiny_config_toml(Arch::gpt2);
  return meta;
}

std::string user_error_of(const std::vector<std::string>& args, const fs::path& out) {
  try {
    inspect(args, out);
  } catch (const UserError& e) {
    return e.what();
  }
  return "(no UserError)";
}
}  // namespace

TEST(CheckpointInspect, PrintsMetadataLayoutMappingAndTensorTable) {
  const fs::path dir = ckpt_temp_dir("inspect");
  const std::string path = (dir / "c.h5").string();
  WholeState w = whole_state(3, tiny_model_specs());
  CheckpointMeta meta = tiny_meta(12);
  meta.layout = Layout{.tp = 2, .dp = 1, .pp = 2, .zero_stage = 1};  // 4 ranks
  save_checkpoint(path, MPI_COMM_NULL, w.slabs, meta);
  auto [rc, out] = inspect({path}, dir / "out.txt");
  EXPECT_EQ(rc, 0) << out;
  for (const char* want : {"kind:          checkpoint", "step:          12",
                           "tp=2 pp=2 dp=1 zero_stage=1 world=4", "samples_consumed=48",
                           "3 steps (10..12)", "step 12 took 44 45 46 47",
                           "params/layers.0.attn.q.weight", "[16, 16]", "optimizer/v/final_norm.weight",
                           "integrity:     ok",
                           "checked:       integrity digest, structure",
                           "parameter tensors against the stored config, every tensor's checksum"})
    EXPECT_NE(out.find(want), std::string::npos) << "missing '" << want << "' in\n" << out;
  EXPECT_EQ(out.find("BAD"), std::string::npos) << out;

  // Change one stored value and re-stamp: the digest passes, the tensor's checksum does not.
  {
    h5::Id f = h5::open_file(path, MPI_COMM_NULL, true);
    h5::Id d(H5Dopen2(f, "params/final_norm.weight", H5P_DEFAULT), H5Dclose);
    std::vector<float> v(16);
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

// Issue #13 items 9 and 10: inspect refused nothing that resume refuses. A checkpoint whose
// /params lacks most tensors of its stored config, and a model file without /params, were
// "integrity ok"; a directory was "truncated: 4096 bytes".
TEST(CheckpointInspect, RunsTheResumeValidation) {
  const fs::path dir = ckpt_temp_dir("inspect_validation");
  std::vector<TensorSpec> few = tiny_model_specs();
  few.resize(3);
  WholeState w = whole_state(3, few);
  const std::string partial = (dir / "partial.h5").string();
  save_checkpoint(partial, MPI_COMM_NULL, w.slabs, tiny_meta(4));
  std::string e = user_error_of({partial}, dir / "o1.txt");
  EXPECT_NE(e.find("partial.h5: the stored config"), std::string::npos) << e;
  EXPECT_NE(e.find("but /params holds 3"), std::string::npos) << e;

  const std::string bare = (dir / "bare.h5").string();  // a model file without /params
  {
    h5::Id f = h5::create_file(bare, MPI_COMM_NULL);
    h5::write_attr(f, "format", std::string("llmpi"), bare);
    h5::write_attr(f, "format_version", int64_t(1), bare);
    h5::write_attr(f, "kind", std::string("model"), bare);
    h5::write_attr(f, "llmpi_version", std::string("0.1"), bare);
    h5::write_attr(f, "git_revision", std::string("x"), bare);
    h5::write_attr(f, "created_unix", 1.0, bare);
    h5::write_attr(f, "step", int64_t(1), bare);
    h5::write_attr(f, "tokens_seen", int64_t(1), bare);
    h5::write_attr(f, "config", llmpi::testing::tiny_config_toml(Arch::gpt2), bare);
    h5::write_attr(f, "layout", std::vector<int64_t>{1, 1, 1, 0, 1}, bare);
  }
  e = user_error_of({bare}, dir / "o2.txt");
  EXPECT_NE(e.find("bare.h5: no /params group"), std::string::npos) << e;

  e = user_error_of({dir.string()}, dir / "o3.txt");
  EXPECT_NE(e.find("is a directory"), std::string::npos) << e;
  EXPECT_EQ(e.find("truncated"), std::string::npos) << e;
  fs::remove_all(dir);
}

// A checkpoint holding a NaN under a matching checksum (a diverged run's save, or an h5py edit
// re-stamped): load_checkpoint refuses it, so verification says so too — discovery falls back
// to the older checkpoint instead of stopping a resume on it — and inspect marks the tensor
// "NaN/inf" and exits 2 (it printed "ok" and exited 0).
TEST(CheckpointInspect, NonFiniteTensorsAreMarkedAndSkippedByDiscovery) {
  const fs::path dir = ckpt_temp_dir("inspect_nan");
  WholeState w = whole_state(3, tiny_model_specs());
  fs::create_directories(dir / "run" / "checkpoints");
  const std::string older = checkpoint_path((dir / "run").string(), 4);
  const std::string newer = checkpoint_path((dir / "run").string(), 5);
  save_checkpoint(older, MPI_COMM_NULL, w.slabs, tiny_meta(4));
  w.store[1][2] = std::nanf("");  // params, second tensor
  save_checkpoint(newer, MPI_COMM_NULL, w.slabs, tiny_meta(5));
  const std::string name = w.slabs.params[1].name;
  const std::string why = verify_checkpoint(newer, MPI_COMM_NULL);
  EXPECT_NE(why.find("params/" + name + " holds 1 non-finite value(s) (NaN or infinity)"),
            std::string::npos)
      << why;
  const Discovery d = find_latest_valid((dir / "run").string(), MPI_COMM_NULL);
  ASSERT_TRUE(d.found.has_value());
  EXPECT_EQ(d.found->step, 4);
  EXPECT_THROW(load_checkpoint(newer, MPI_COMM_NULL, w.slabs), UserError);
  const auto [code, out] = inspect({newer}, dir / "o.txt");
  EXPECT_EQ(code, 2) << out;
  EXPECT_NE(out.find("NaN/inf"), std::string::npos) << out;
  fs::remove_all(dir);
}
