// `llmpi inspect CKPT`: what a checkpoint (or model file) holds — metadata, the layout it was
// saved under, the data mapping, and a table of every tensor (name, shape, dtype, size,
// checksum status recomputed from the stored values). Serial; reads but never modifies the
// file. A file that fails its integrity check is reported and the command exits 2.
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <memory>

#include "cli/command.h"
#include "cli/options.h"
#include "core/error.h"
#include "io/checkpoint.h"
#include "io/checkpoint_integrity.h"
#include "io/hdf5.h"
#include "io/model_file.h"
#include "io/stored_model.h"
#include "io/tensor_file.h"

namespace llmpi {
namespace {

constexpr const char* kDescription = R"(Prints what an llmpi checkpoint or model file holds: metadata (step, tokens, versions,
time), the parallel layout it was saved under, the data mapping (samples consumed and the
sample indices of the steps since the previous checkpoint), and a table of every tensor
with its shape, dtype, size and checksum status (recomputed from the stored values).
Exit codes: 0 valid, 2 unreadable/corrupt file, any checksum BAD, or a tensor holding NaN or
infinity (status NaN/inf: no llmpi command loads it).
)";

struct InspectArgs {
  std::string path;
  bool no_verify = false;
  bool show_config = false;
};

std::string shape_str(const std::vector<int64_t>& s) {
  std::string out = "[";
  for (size_t d = 0; d < s.size(); ++d) out += (d ? ", " : "") + std::to_string(s[d]);
  return out + "]";
}

std::string bytes_str(double b) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  while (b >= 1024 && u < 4) b /= 1024, ++u;
  char buf[32];
  std::snprintf(buf, sizeof buf, u ? "%.1f %s" : "%.0f %s", b, units[u]);
  return buf;
}

// Prints the tensors of one group; returns the number with a bad checksum.
int print_group(hid_t file, const std::string& group, const std::string& path, bool verify,
                int64_t& total_bytes) {
  if (!h5::exists(file, group)) return 0;
  h5::Id g = h5::open_group(file, group, path);
  int bad = 0;
  for (const TensorEntry& e : list_tensors(g, path)) {
    int64_t n = 1;
    for (int64_t d : e.shape) n *= d;
    const int64_t bytes = n * (e.dtype == "f32" ? 4 : 8);
    total_bytes += bytes;
    std::string status = "-";
    if (verify) {
      bool ok = false;
      uint64_t nonfinite = 0;
      try {
        ok = e.has_checksum && compute_checksum(g, e.name, path, &nonfinite) == e.stored_checksum;
      } catch (const UserError&) {
      }
      // A NaN or infinity under a good checksum: the file says so, but no reader loads it.
      status = !ok ? "BAD" : nonfinite ? "NaN/inf" : "ok";
      bad += !ok || nonfinite;
    }
    std::printf("  %-44s %-18s %-4s %10s  %s\n", (group + "/" + e.name).c_str(),
                shape_str(e.shape).c_str(), e.dtype.c_str(), bytes_str(double(bytes)).c_str(),
                status.c_str());
  }
  return bad;
}

int run_inspect(const InspectArgs& a) {
  const bool verify = !a.no_verify;
  const bool show_config = a.show_config;
  const std::string& path = a.path;

  std::error_code ec;
  if (std::filesystem::is_directory(path, ec))
    user_error(path, ": is a directory; inspect takes one checkpoint or model file (a run "
               "directory holds model.h5 and checkpoints/step_<N>.h5)");

  // The validation of a resume (io/checkpoint.h verify_checkpoint: integrity header and
  // digest before HDF5 parses, then structure), and for every file the stored config against
  // the tensors (io/stored_model.h), which a resume checks when it loads them.
  IntegrityHeader hdr;
  const std::string header_why = check_integrity_header(path, hdr);
  const bool is_checkpoint = header_why.empty();
  std::string integrity = "none (model file)";
  std::string checked;
  if (is_checkpoint) {
    const std::string why = verify_checkpoint(path, MPI_COMM_NULL, /*tensors=*/false);
    if (!why.empty()) user_error(why.rfind(path, 0) == 0 ? why : path + ": " + why);
    integrity = "ok (content digest matches)";
    checked = "integrity digest, structure (optimizer state, data mapping), ";
  } else if (header_why.find("no llmpi checkpoint header") == std::string::npos) {
    user_error(path, ": ", header_why);  // truncated, damaged header, unreadable
  }
  const StoredModel stored = check_stored_model(path);
  const ModelFileMeta& meta = stored.meta;
  checked += std::to_string(stored.tensors) + " parameter tensors against the stored config";
  std::printf("file:          %s\n", path.c_str());
  std::printf("kind:          %s (format_version %lld)\n", meta.kind.c_str(),
              static_cast<long long>(meta.format_version));
  std::printf("integrity:     %s\n", integrity.c_str());
  std::printf("step:          %lld\n", static_cast<long long>(meta.step));
  std::printf("tokens seen:   %lld\n", static_cast<long long>(meta.tokens_seen));
  h5::Id file = h5::open_file(path, MPI_COMM_NULL);
  std::printf("written by:    llmpi %s (git %s)\n",
              h5::read_attr_string(file, "llmpi_version", path).c_str(),
              h5::read_attr_string(file, "git_revision", path).c_str());
  std::printf("created:       %.3f (unix seconds)\n", h5::read_attr_double(file, "created_unix", path));
  std::printf("saved layout:  %s\n", describe_layout(meta.layout).c_str());
  if (meta.kind == "checkpoint") {
    const CheckpointMeta c = read_checkpoint_meta(path);
    std::printf("optimizer:     AdamW step_count=%lld beta1=%g beta2=%g eps=%g weight_decay=%g\n",
                (long long)c.optimizer.step_count, c.optimizer.beta1, c.optimizer.beta2,
                c.optimizer.eps, c.optimizer.weight_decay);
    std::printf("data:          seed=%llu samples_consumed=%lld global_batch=%lld\n",
                (unsigned long long)c.data.seed, (long long)c.data.samples_consumed,
                (long long)c.data.global_batch);
    const auto& s = c.data.steps;
    if (s.empty()) {
      std::printf("data mapping:  no steps recorded\n");
    } else {
      const auto& ix = c.data.step_samples;
      std::printf("data mapping:  %zu steps (%lld..%lld), %zu sample indices; step %lld took",
                  s.size(), (long long)s.front(), (long long)s.back(), ix.size(),
                  (long long)s.back());
      const size_t G = size_t(c.data.global_batch), from = (s.size() - 1) * G;
      for (size_t j = 0; j < std::min<size_t>(G, 8); ++j)
        std::printf(" %lld", (long long)ix[from + j]);
      std::printf("%s\n", G > 8 ? " ..." : "");
    }
  }
  std::printf("\ntensors:\n  %-44s %-18s %-4s %10s  %s\n", "name", "shape", "type", "size",
              "checksum");
  int64_t total = 0;
  int bad = 0;
  for (const char* g : {"params", "optimizer/m", "optimizer/v"})
    bad += print_group(file, g, path, verify, total);
  std::printf("total: %s\n", bytes_str(double(total)).c_str());
  std::printf("checked:       %s%s\n", checked.c_str(),
              verify ? ", every tensor's checksum" : " (checksums not verified: --no-verify)");
  if (show_config) std::printf("\nconfig:\n%s\n", meta.config_toml.c_str());
  if (bad) {
    std::fprintf(stderr,
                 "llmpi inspect: %s: %d tensor(s) fail their checksum or hold NaN/infinity "
                 "(status BAD, NaN/inf)\n",
                 path.c_str(), bad);
    return 2;
  }
  return 0;
}

}  // namespace

CommandSpec inspect_command() {
  return {"inspect", "FILE [options]", "metadata, layout and tensors of a checkpoint or model file",
          kDescription, [](CLI::App& app) -> CommandAction {
            auto a = std::make_shared<InspectArgs>();
            add_value(app, "FILE", a->path, "FILE", "a checkpoint or model .h5 file")->required();
            add_switch(app, "--no-verify", a->no_verify,
                       "do not recompute checksums (status shows \"-\")");
            add_switch(app, "--config", a->show_config,
                       "also print the full config TOML stored in the file");
            return [a](CommandEnv&) { return run_inspect(*a); };
          }};
}

}  // namespace llmpi
