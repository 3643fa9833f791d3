// `llmpi lora merge ADAPTERS --out FILE`: a LoRA run's adapters merged into their base
// (train/lora_model.h, model/lora_merge.h) and written as a plain model file, which sample,
// eval, export-hf and train.init_from read like any other. The `lora` group only lists it.
// Serial; needs no MPI.
#include <cstdio>
#include <filesystem>
#include <memory>

#include "backend/backend.h"
#include "cli/command.h"
#include "cli/options.h"
#include "core/error.h"
#include "core/output_rule.h"
#include "io/hf_import.h"
#include "io/model_file.h"
#include "jobs/checkpoint_dir.h"
#include "train/loaded_model.h"

namespace llmpi {
namespace {

namespace fs = std::filesystem;

constexpr const char* kGroupDescription = R"(LoRA adapters of a run trained with a [lora] section (docs/finetuning.md): `merge` writes
them merged into their base as a plain model file.
)";

constexpr const char* kMergeDescription = R"(Reads ADAPTERS (a LoRA run's model.h5 or checkpoint, or its run directory), rebuilds the base
the adapters were trained beside from the file's reference (lora_base: the run's
train.init_from, or its seeded init; --base reads it from elsewhere), checks the base's
checksum, and writes FILE: a model file whose every adapted weight is W + s·B A (a QLoRA
run's NF4 base is merged dequantised). A head adapter on tied embeddings unties them.
An existing FILE is replaced only if an earlier `llmpi lora merge` wrote it, else only with
--force; FILE may never be ADAPTERS or the base it reads.
)";

constexpr const char* kWriter = "llmpi lora merge";

struct MergeArgs {
  std::string adapters, out, base;
  bool force = false;
};

// An earlier merge's output: a model file carrying this command's writer mark.
bool is_earlier_merge(const std::string& path) {
  try {
    return read_model_meta(path).writer == kWriter;
  } catch (const UserError&) {
    return false;
  }
}

// Even --force never writes the merge over the file it reads (the adapters would be lost).
void refuse_input_as_output(const std::string& out, const std::string& input, const char* what) {
  std::error_code ec;
  if (fs::equivalent(out, input, ec))
    user_error(out, ": is ", what, " (", input, "); write the merged model to another file");
}

int run_merge(const MergeArgs& a) {
  require_parent_directory(a.out, "llmpi lora merge");
  claim_outputs({"", {a.out}, "the output of an earlier llmpi lora merge", is_earlier_merge}, a.force);
  auto be = make_host_backend();
  const LoadedModel lm = load_model(a.adapters, *be, a.base);
  if (!lm.lora)
    user_error(lm.path, ": holds a full model, not LoRA adapters (nothing to merge)");
  refuse_input_as_output(a.out, lm.path, "ADAPTERS, the file being merged");
  // The base: a model file, a run directory (its model.h5 or newest checkpoint), a Hugging
  // Face directory (never a file), or "seed <n>" (nothing on disk).
  const std::string& base = lm.lora->base_source;
  std::error_code ec;
  if (fs::exists(base, ec) && !is_hf_model_dir(base))
    refuse_input_as_output(a.out, resolve_model_source(base), "the base the adapters are merged into");
  ModelFileMeta meta;
  meta.writer = kWriter;
  meta.step = lm.meta.step;
  meta.tokens_seen = lm.meta.tokens_seen;
  meta.config_toml = to_toml(lm.config);
  meta.layout = lm.meta.layout;
  meta.tokenizer = lm.meta.tokenizer;
  save_model_file(a.out, MPI_COMM_NULL, *be, *lm.store, meta);
  const LoraSpec& s = lm.lora->spec;
  std::printf("merged %s (LoRA rank %lld, scale %g, %zu adapter tensors) into base %s -> %s\n",
              lm.path.c_str(), (long long)s.rank, s.scale(), lm.lora->adapters->params().size(),
              lm.lora->base_source.c_str(), a.out.c_str());
  return 0;
}

}  // namespace

CommandSpec lora_command() {
  return {"lora", "<command> [options]", "LoRA adapters: merge them into their base", kGroupDescription, {}};
}

CommandSpec lora_merge_command() {
  return {"lora merge", "ADAPTERS --out FILE [--base SOURCE] [--force]",
          "write a LoRA run's adapters merged into their base as a model file", kMergeDescription,
          [](CLI::App& app) -> CommandAction {
            auto a = std::make_shared<MergeArgs>();
            add_value(app, "ADAPTERS", a->adapters, "ADAPTERS",
                      "a LoRA run's model/checkpoint .h5 file, or its run directory")->required();
            add_value(app, "--out", a->out, "FILE", "the merged model file to write")->required();
            add_value(app, "--base", a->base, "SOURCE",
                      "read the base from SOURCE (model file, run directory or HF directory) "
                      "instead of the file's lora_base");
            add_switch(app, "--force", a->force,
                       "replace a file at --out that an earlier lora merge did not write");
            return [a](CommandEnv&) { return run_merge(*a); };
          }};
}

}  // namespace llmpi
