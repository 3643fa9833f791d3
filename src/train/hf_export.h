#pragma once
// Export of an llmpi model (a model file, a checkpoint, or a run directory's model.h5 / newest
// checkpoint) as a Hugging Face model directory:
//   config.json, generation_config.json        (io/hf_config.h)
//   model.safetensors, or shards + model.safetensors.index.json above max_shard_bytes (a
//                                               re-export removes the other layout's files;
//                                               other directories must not hold any)
//   tokenizer.json, tokenizer_config.json      (data/hf_tokenizer.h; GPT-2's also vocab.json,
//                                               merges.txt) when a tokenizer is known
// The tokenizer is --tokenizer or the model's data.tokenizer; its vocabulary size is the real
// vocabulary, and the embedding/head rows beyond it (llmpi's padding) are not written. With no
// tokenizer the whole table is written and the report says so.
#include <cstdint>
#include <string>
#include <vector>

#include "io/safetensors.h"
#include "io/safetensors_set.h"

namespace llmpi {

struct HfExportOptions {
  std::string out_dir;
  StDtype dtype = StDtype::f32;
  uint64_t max_shard_bytes = kDefaultMaxShardBytes;
  std::string tokenizer;  // empty: the model config's data.tokenizer (if it exists)
  bool force = false;     // replace files in out_dir that are not an earlier export's
                          // (core/output_rule.h; a directory holding only them is replaced);
                          // never removes one: a file of the other weight layout in such a
                          // directory is refused even with force
};

struct HfExportReport {
  std::string model_path;        // the model file that was read
  std::string tokenizer_path;    // empty: no tokenizer written
  std::string tokenizer_note;    // why none was written
  int64_t vocab_rows = 0;        // rows written
  int64_t padding_rows = 0;      // rows of llmpi's table not written
  std::vector<std::string> files;
  uint64_t tensor_bytes = 0;
};

HfExportReport export_hf(const std::string& model_or_run, const HfExportOptions& o);

}  // namespace llmpi
