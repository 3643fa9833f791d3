// Fixture of scripts/hf-transformers-check.sh: a model of a config's shape with random
// weights of O(1) logits (every parameter, biases and norm gains included), exported with
// `export_hf` (and a tokenizer), plus what transformers must reproduce: llmpi's logits of a
// token sequence computed from the EXPORTED files (re-imported, so bf16 rounding is included)
// and llmpi's ids of a sample text.
//   hf_check_fixture CONFIG.toml TOKENIZER OUT_CASE_DIR f32|bf16
// Writes OUT/hf/ (the export), OUT/ids.txt, OUT/llmpi_logits.f32 ([T, V] little-endian f32),
// OUT/tok_ids.txt, OUT/tol.txt (1e-4 for f32; 6e-2 for bf16, where transformers computes in bf16).
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "backend/backend.h"
#include "config/config.h"
#include "core/error.h"
#include "core/rng.h"
#include "data/hf_tokenizer.h"
#include "train/hf_export.h"
#include "io/hf_import.h"
#include "io/model_file.h"
#include "model/param_layout.h"
#include "train/loaded_model.h"

using namespace llmpi;
namespace fs = std::filesystem;

int main(int argc, char** argv) try {
  if (argc != 5) {
    std::fprintf(stderr, "usage: %s CONFIG TOKENIZER OUT_DIR f32|bf16\n", argv[0]);
    return 2;
  }
  const std::string out = argv[3];
  const StDtype dtype = st_export_dtype(argv[4]);
  fs::create_directories(out);
  Config c = load_config(argv[1], {"data.tokenizer=" + std::string(argv[2])});
  auto be = make_host_backend();
  const ModelConfig& m = c.model;
  ParamStore store(*be, transformer_params(m, StageRange::full(m)), DType::f32);
  float* base = store.master().ptr<float>();
  for (const ParamInfo& p : store.params()) {
    const bool gain = p.name.find("norm.weight") != std::string::npos;
    const double sd = gain || p.global_shape.ndim == 1 ? 0.1 : 1.0 / std::sqrt(double(p.global_shape[1]));
    for (int64_t i = 0; i < p.numel(); ++i)
      base[p.offset + i] = float((gain ? 1.0 : 0.0) + sd * rng_normal(rng_key(11, p.name), uint64_t(i)));
  }
  ModelFileMeta meta;
  meta.config_toml = c.source_text;
  save_model_file(out + "/model.h5", MPI_COMM_NULL, *be, store, meta);

  HfExportOptions o;
  o.out_dir = out + "/hf";
  o.dtype = dtype;
  export_hf(out + "/model.h5", o);
  import_hf(o.out_dir, out + "/reimported.h5");  // what the exported files hold, as f32

  const Tokenizer tok = load_tokenizer(argv[2]);
  const std::string text = "Hello world, it's 2024!";
  std::ofstream(out + "/tok_ids.txt") << [&] {
    std::string s;
    for (uint32_t id : tok.encode(text)) s += std::to_string(id) + " ";
    return s;
  }() << "\n";
  std::vector<uint32_t> ids = tok.encode("The quick brown fox jumps over the lazy dog. 42 times!");
  ids.insert(ids.begin(), tok.eot_id());
  const int64_t T = int64_t(ids.size());
  LoadedModel lm = load_model(out + "/reimported.h5", *be);
  Activations acts = lm.model->alloc_activations(*be, 1, T);
  std::vector<int32_t> ids32(ids.begin(), ids.end());
  Buffer b = be->alloc(Shape{T}, DType::i32);
  be->copy(b, Tensor{ids32.data(), Shape{T}, DType::i32, Device::host});
  lm.model->forward(*be, acts, b);
  std::ofstream logits(out + "/llmpi_logits.f32", std::ios::binary);
  const int64_t V = lm.config.model.vocab_size;
  for (int64_t t = 0; t < T; ++t) {
    const std::vector<float> row = lm.model->logits_at(*be, acts, t);
    logits.write(reinterpret_cast<const char*>(row.data()), std::streamsize(V * sizeof(float)));
  }
  std::ofstream idf(out + "/ids.txt");
  for (uint32_t id : ids) idf << id << " ";
  std::ofstream(out + "/tol.txt") << (dtype == StDtype::f32 ? "1e-4" : "6e-2") << "\n";
  fs::remove(out + "/model.h5");
  fs::remove(out + "/reimported.h5");
  fs::remove(out + "/reimported.tokenizer.json");
  std::printf("%s: %s %s, %lld tokens\n", out.c_str(), arch_name(m.arch), argv[4], static_cast<long long>(T));
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "hf_check_fixture: %s\n", e.what());
  return 2;
}
