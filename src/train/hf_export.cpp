// export_hf: read the model file's global tensors on the host, write the HF directory.
#include "train/hf_export.h"

#include <filesystem>
#include <optional>

#include "backend/backend.h"
#include "core/error.h"
#include "core/text_file.h"
#include "data/hf_tokenizer.h"
#include "io/hf_config.h"
#include "io/hf_weights.h"
#include "train/loaded_model.h"

namespace llmpi {

namespace fs = std::filesystem;

namespace {

const char* torch_dtype_name(StDtype d) {
  return d == StDtype::bf16 ? "bfloat16" : d == StDtype::f16 ? "float16" : "float32";
}

}  // namespace

HfExportReport export_hf(const std::string& model_or_run, const HfExportOptions& o) {
  if (o.out_dir.empty()) user_error("export-hf: missing --out DIR");
  if (o.dtype != StDtype::f32 && o.dtype != StDtype::bf16 && o.dtype != StDtype::f16)
    user_error("export-hf: --dtype must be f32, bf16 or f16");
  auto be = make_host_backend();
  const LoadedModel lm = load_model(model_or_run, *be);
  HfExportReport rep;
  rep.model_path = lm.path;
  const ModelConfig& mc = lm.config.model;

  std::optional<Tokenizer> tok;
  std::string tpath = o.tokenizer.empty() ? lm.config.data.tokenizer : o.tokenizer;
  if (!o.tokenizer.empty()) {
    tok = load_tokenizer(tpath);
  } else if (!tpath.empty() && fs::exists(tpath)) {
    tok = load_tokenizer(tpath);
  } else {
    rep.tokenizer_note = tpath.empty() ? "the model's config names no tokenizer"
                                       : "the model's data.tokenizer " + tpath + " does not exist here";
    tpath.clear();
  }
  const int64_t V = mc.vocab_size;
  const int64_t real = tok ? tok->vocab_size() : V;
  if (real > V)
    user_error(tpath, ": the tokenizer has ", real, " tokens but the model's vocabulary only ", V);
  rep.tokenizer_path = tpath;
  rep.vocab_rows = real;
  rep.padding_rows = V - real;

  std::error_code ec;
  fs::create_directories(o.out_dir, ec);
  if (!fs::is_directory(o.out_dir)) user_error(o.out_dir, ": cannot create the output directory: ", ec.message());

  HfModelMeta meta;
  meta.model = mc;
  meta.model.vocab_size = real;
  meta.torch_dtype = torch_dtype_name(o.dtype);
  if (tok) meta.bos_token_id = meta.eos_token_id = tok->eot_id();
  const fs::path out(o.out_dir);
  write_text_atomically((out / "config.json").string(), hf_config_json(meta));
  write_text_atomically((out / "generation_config.json").string(), hf_generation_config_json(meta));
  rep.files = {"config.json", "generation_config.json"};

  // Parameter values straight from the host store (f32, global shapes).
  const float* base = lm.store->master().ptr<float>();
  auto param = [&](const std::string& name) {
    const ParamInfo& p = lm.store->info(name);
    GlobalTensor t;
    t.values = {base + p.offset, size_t(p.numel())};
    for (int d = 0; d < p.global_shape.ndim; ++d) t.shape.push_back(p.global_shape[d]);
    return t;
  };
  const std::vector<HfTensorMap> maps = hf_tensor_map(mc, real);
  std::vector<StSpec> specs;
  for (const HfTensorMap& m : maps) specs.push_back({m.hf_name, o.dtype, m.hf_shape});
  size_t next = 0;
  const ShardedWriteReport w = write_safetensors_set(
      o.out_dir, specs,
      [&](const StSpec& s) {
        const HfTensorMap& m = maps[next++];
        LLMPI_CHECK(m.hf_name == s.name, "export order");
        return encode_f32(hf_values(m, param), o.dtype);
      },
      o.max_shard_bytes);
  rep.files.insert(rep.files.end(), w.files.begin(), w.files.end());
  rep.tensor_bytes = w.total_bytes;

  if (tok) {
    write_hf_tokenizer(*tok, o.out_dir, TokenizerExport{mc.max_seq_len});
    rep.files.push_back("tokenizer.json");
    rep.files.push_back("tokenizer_config.json");
    if (tok->pretokenizer() == Pretokenizer::gpt2) {
      rep.files.push_back("vocab.json");
      rep.files.push_back("merges.txt");
    }
  }
  return rep;
}

}  // namespace llmpi
