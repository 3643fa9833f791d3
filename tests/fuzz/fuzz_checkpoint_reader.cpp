// libFuzzer target for the checkpoint reader. Each input is taken as a whole checkpoint file
// and read the way `llmpi train --resume` and `llmpi inspect` read one: integrity header and
// digest, structure, metadata, every tensor into slabs of the shapes the seed corpus uses,
// checksums. The contract: a UserError or a clean load, never a crash or an out-of-bounds
// access (built with AddressSanitizer). With LLMPI_FUZZ_DEEP=1 the input's integrity header
// is re-stamped first, so mutations reach the HDF5 parser and our structure checks instead of
// being stopped by the digest. Built and run by tests/fuzz/run.sh, not by the normal build.
#include <mpi.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "core/error.h"
#include "io/checkpoint.h"
#include "io/checkpoint_integrity.h"
#include "io/hdf5.h"

namespace {

std::string g_path;
bool g_deep = false;

// Slabs matching tests/unit/test_checkpoint_util.h's ckpt_specs (the seed corpus).
struct Target {
  std::vector<std::vector<float>> store;
  llmpi::CheckpointSlabs slabs;
  Target() {
    const std::vector<std::pair<std::string, std::vector<int64_t>>> specs = {
        {"embed.tokens", {6, 5}}, {"final_norm.weight", {7}}, {"layers.0.w", {3, 4, 5}},
        {"layers.0.x", {2, 3, 2, 3}}};
    store.reserve(12);
    for (int g = 0; g < 3; ++g)
      for (const auto& [name, shape] : specs) {
        int64_t n = 1;
        for (int64_t d : shape) n *= d;
        store.emplace_back(size_t(n));
        llmpi::TensorSlab s;
        s.name = name;
        s.global_shape = shape;
        s.data = store.back().data();
        (g == 0 ? slabs.params : g == 1 ? slabs.m : slabs.v).push_back(s);
      }
  }
};

}  // namespace

extern "C" int LLVMFuzzerInitialize(int* argc, char*** argv) {
  MPI_Init(argc, argv);
  llmpi::h5::silence_errors();
  const char* dir = std::getenv("TMPDIR");
  g_path = std::string(dir ? dir : "/tmp") + "/llmpi_fuzz_" + std::to_string(::getpid()) + ".h5";
  g_deep = std::getenv("LLMPI_FUZZ_DEEP") != nullptr;
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FILE* f = std::fopen(g_path.c_str(), "wb");
  if (!f) return 0;
  std::fwrite(data, 1, size, f);
  std::fclose(f);
  try {
    if (g_deep && size >= llmpi::kIntegrityBlock) llmpi::stamp_integrity(g_path, MPI_COMM_NULL);
    (void)llmpi::verify_checkpoint(g_path, MPI_COMM_NULL, true);
    Target t;
    (void)llmpi::load_checkpoint(g_path, MPI_COMM_NULL, t.slabs);
    (void)llmpi::read_checkpoint_meta(g_path);
  } catch (const llmpi::UserError&) {
    // Rejected with a message: the expected outcome for a malformed file.
  }
  return 0;
}
