// `llmpi export-hf` and `llmpi import-hf`: command-line front ends of io/hf_export.h and
// io/hf_import.h (formats and conventions: docs/interop.md).
#include <cstdio>

#include "cli/args.h"
#include "cli/commands.h"
#include "core/error.h"
#include "io/hf_export.h"
#include "io/hf_import.h"

namespace llmpi {

namespace {

constexpr const char* kExportUsage = R"(usage: llmpi export-hf MODEL_OR_RUN --out DIR [options]

Writes MODEL_OR_RUN (a model or checkpoint .h5 file, or a run directory: its model.h5, else
its newest valid checkpoint) as a Hugging Face model directory: config.json,
generation_config.json, model.safetensors (or shards with model.safetensors.index.json),
tokenizer.json and tokenizer_config.json. transformers loads it with from_pretrained.

--out DIR              output directory (created if missing)
--dtype f32|bf16|f16   tensor dtype in the safetensors files (default f32)
--max-shard-mb N       start a new shard above N MiB of tensor data (default 5120)
--tokenizer PATH       tokenizer to write (default: the model config's data.tokenizer);
                       its vocabulary size is the real vocabulary: padding rows are dropped
)";

constexpr const char* kImportUsage = R"(usage: llmpi import-hf DIR --out MODEL.h5

Reads a Hugging Face GPT2LMHeadModel or LlamaForCausalLM directory (config.json,
model.safetensors or shards, F32/BF16/F16; tokenizer.json or vocab.json + merges.txt) and
writes an llmpi model file; the tokenizer goes next to it as MODEL.tokenizer.json. Anything
llmpi would compute differently (another architecture, rope scaling, biases in Llama, ...) is
refused with the key that says so. Start a run from it with [train] init_from.
)";

}  // namespace

int cmd_export_hf(const std::vector<std::string>& argv) {
  Args a(argv, "llmpi export-hf");
  if (a.help_requested()) {
    std::fputs(kExportUsage, stdout);
    return 0;
  }
  HfExportOptions o;
  o.out_dir = a.require("--out");
  o.dtype = st_export_dtype(a.get("--dtype", "f32"));
  const int64_t shard_mb = a.get_int("--max-shard-mb", int64_t(kDefaultMaxShardBytes >> 20));
  if (shard_mb < 1) user_error("--max-shard-mb must be >= 1, got ", shard_mb);
  o.max_shard_bytes = uint64_t(shard_mb) << 20;
  o.tokenizer = a.get("--tokenizer", "");
  const std::vector<std::string> pos = a.positionals();
  a.finish();
  if (pos.size() != 1) user_error("expected exactly one MODEL_OR_RUN (see --help)");
  const HfExportReport r = export_hf(pos[0], o);
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

int cmd_import_hf(const std::vector<std::string>& argv) {
  Args a(argv, "llmpi import-hf");
  if (a.help_requested()) {
    std::fputs(kImportUsage, stdout);
    return 0;
  }
  const std::string out = a.require("--out");
  const std::vector<std::string> pos = a.positionals();
  a.finish();
  if (pos.size() != 1) user_error("expected exactly one DIR (see --help)");
  const HfImportReport r = import_hf(pos[0], out);
  const ModelConfig& m = r.meta.model;
  std::printf("imported %s -> %s: %s, %lld layers, d_model %lld, %lld heads (%lld kv), vocab %lld, "
              "%lld parameters\n",
              pos[0].c_str(), out.c_str(), arch_name(m.arch), static_cast<long long>(m.n_layer),
              static_cast<long long>(m.d_model), static_cast<long long>(m.n_head),
              static_cast<long long>(m.kv_heads()), static_cast<long long>(m.vocab_size),
              static_cast<long long>(r.params));
  if (!r.tokenizer_path.empty()) std::printf("  tokenizer -> %s\n", r.tokenizer_path.c_str());
  return 0;
}

}  // namespace llmpi
