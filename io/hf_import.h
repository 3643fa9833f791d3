#pragma once
// Import of a Hugging Face model directory (GPT2LMHeadModel or LlamaForCausalLM: config.json,
// model.safetensors or its shards, and tokenizer.json or vocab.json + merges.txt if present).
// open_hf_model() checks everything before any value is read (UserError naming file, key or
// tensor): the config (io/hf_config.h), every tensor llmpi needs present with the shape the
// config implies and dtype F32/BF16/F16, and no tensor llmpi cannot hold (a bias where Llama
// has none, a head that a tied model must not have unless it equals the embedding, ...).
// fill_params() then writes the local slabs of any ParamStore of that model — a whole model or
// one rank's tensor/pipeline-parallel part — so a run can start from HF weights under any
// layout. import_hf() writes an llmpi model file (and the tokenizer next to it).
#include <optional>
#include <string>

#include "backend/backend.h"
#include "data/tokenizer.h"
#include "io/hf_config.h"
#include "io/safetensors_set.h"
#include "model/param_store.h"

namespace llmpi {

struct HfModelSource {
  std::string dir;
  HfModelMeta meta;
  SafetensorsSet weights;
  std::string gpt2_prefix;  // "transformer." or ""
};

HfModelSource open_hf_model(const std::string& dir);

// Fills the slabs of `store` (host or device, f32 master) from the HF weights; parameters the
// store does not hold are skipped. Ends with refresh_compute().
void fill_params(const HfModelSource& src, ParamStore& store, Backend& be);

struct HfImportReport {
  HfModelMeta meta;
  std::string tokenizer_path;  // written next to the model file; empty: the dir has none
  int64_t params = 0;
};

// Existing outputs follow core/output_rule.h: an llmpi model file at out_model (and the
// tokenizer beside it) is replaced; anything else only with force. with_tokenizer = false
// imports the weights alone (a directory whose tokenizer llmpi cannot read, e.g. Llama 2's
// SentencePiece-style BPE with byte_fallback, is otherwise refused naming the key).
HfImportReport import_hf(const std::string& dir, const std::string& out_model, bool force = false,
                         bool with_tokenizer = true);

// True if `path` is a directory holding a Hugging Face model (config.json).
bool is_hf_model_dir(const std::string& path);

}  // namespace llmpi
