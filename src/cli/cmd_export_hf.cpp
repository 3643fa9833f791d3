// `llmpi export-hf MODEL_OR_RUN --out DIR`: the command-line front end of train/hf_export.h
// (formats and conventions: docs/interop.md). Serial; needs no MPI.
#include <cstdio>
#include <memory>

#include "cli/command.h"
#include "cli/options.h"
#include "core/error.h"
#include "train/hf_export.h"

namespace llmpi {
namespace {

constexpr const char* kDescription = R"(Writes MODEL_OR_RUN (a model or checkpoint .h5 file, or a run directory: its model.h5, else
its newest valid checkpoint) as a Hugging Face model directory that transformers loads with
from_pretrained: config.json, generation_config.json, model.safetensors (or shards with
model.safetensors.index.json), tokenizer.json and tokenizer_config.json. The tokenizer's
vocabulary size is the real vocabulary: embedding rows past it (padding) are not written.
An existing DIR is written into only if it holds nothing but an earlier export's files, or no
file of these names; else only with --force (other files in DIR are never touched). A re-export
into an earlier export removes its other weight layout (single <-> sharded); in any other DIR a
file of that layout (model.safetensors, the index, model-*-of-*.safetensors) is refused even
with --force, which replaces files but never deletes one. A temporary FILE.tmp found at
an output's path (an interrupted run leaves one) is replaced only with --force.
)";

struct ExportArgs {
  std::string model, dtype = "f32";
  int64_t shard_mb = int64_t(kDefaultMaxShardBytes >> 20);
  HfExportOptions o;
};

int run_export(const ExportArgs& a) {
  HfExportOptions o = a.o;
  o.dtype = st_export_dtype(a.dtype);
  o.max_shard_bytes = uint64_t(a.shard_mb) << 20;
  const HfExportReport r = export_hf(a.model, o);
  std::printf("exported %s -> %s (%s, %.1f MB of tensors)\n", r.model_path.c_str(), o.out_dir.c_str(),
              st_dtype_name(o.dtype), double(r.tensor_bytes) / 1e6);
  for (const std::string& f : r.files) std::printf("  %s\n", f.c_str());
  if (r.tokenizer_path.empty())
    std::printf("  no tokenizer written: %s (pass --tokenizer PATH)\n", r.tokenizer_note.c_str());
  else if (r.padding_rows > 0)
    std::printf("  vocabulary: %lld rows written, %lld padding rows dropped\n",
                static_cast<long long>(r.vocab_rows), static_cast<long long>(r.padding_rows));
  return 0;
}

}  // namespace

CommandSpec export_hf_command() {
  return {"export-hf", "MODEL_OR_RUN --out DIR [options]",
          "write a Hugging Face model directory (safetensors, config, tokenizer)", kDescription,
          [](CLI::App& app) -> CommandAction {
            auto a = std::make_shared<ExportArgs>();
            add_value(app, "MODEL_OR_RUN", a->model, "MODEL_OR_RUN",
                      "a model/checkpoint .h5 file, or a run directory")->required();
            add_value(app, "--out", a->o.out_dir, "DIR", "output directory (created if missing)")
                ->required();
            add_value(app, "--dtype", a->dtype, "f32|bf16|f16",
                      "tensor dtype in the safetensors files (default f32)")
                ->check(one_of({"f32", "bf16", "f16"}));
            add_value(app, "--max-shard-mb", a->shard_mb, "N",
                      "start a new shard above N MiB of tensor data (default 5120)")
                ->check(in_range(1, false, 1e9, false));  // N << 20 must fit 64 bits (it wrapped to 0)
            add_value(app, "--tokenizer", a->o.tokenizer, "PATH",
                      "tokenizer to write (default: the model config's data.tokenizer)");
            add_switch(app, "--force", a->o.force,
                       "replace files in DIR that another program wrote (without it, only a\n"
                       "directory holding nothing but an earlier export-hf's files is replaced)");
            return [a](CommandEnv&) { return run_export(*a); };
          }};
}

}  // namespace llmpi
