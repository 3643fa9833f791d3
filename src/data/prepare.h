#pragma once
// prepare_dataset: raw text / JSONL → cleaned, deduplicated, tokenized token shards.
// Pipeline (docs/data-format.md): read documents (text: a file, or pieces separated by a
// delimiter line; JSONL: the "text" field of each line) → clean_text → drop short → drop exact
// duplicates → split train/val by content hash → [train a BPE tokenizer on the train
// documents, pass 1] → encode each document + <|endoftext|> → OUT/train.bin, OUT/val.bin,
// OUT/tokenizer.bpe (llmpi's tokenizer) or OUT/tokenizer.json (GPT-2's, HF format),
// OUT/prepare.json. Files are processed in the order given (globs sorted).
// Every output is written under a temporary name and renamed when complete.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "data/text_clean.h"

namespace llmpi {

enum class InputFormat : uint8_t { by_extension, text, jsonl };

struct PrepareOptions {
  std::vector<std::string> inputs;         // files or glob patterns
  InputFormat format = InputFormat::by_extension;  // by_extension: *.jsonl → jsonl, else text
  std::optional<std::string> delimiter;    // text: a line equal to this separates documents
  std::string out_dir;
  int64_t vocab_size = 0;                  // > 0: train a tokenizer of this size
  std::string tokenizer_path;              // else: load this tokenizer (data/hf_tokenizer.h:
                                           // a .bpe file, tokenizer.json or a GPT-2 dir)
  double val_fraction = 0.05;              // in [0, 1)
  int64_t min_chars = 1;                   // documents shorter (code points) are dropped
  uint64_t seed = 1234;                    // keys the train/val split
  bool show_progress = true;               // progress meter on stderr
  bool force = false;                      // replace foreign files at the output paths
};

struct PrepareReport {
  int64_t files = 0;
  int64_t bytes_read = 0;
  CleanStats clean;  // documents_read, dropped_short, dropped_duplicate, kept
  int64_t train_documents = 0, val_documents = 0;
  int64_t train_tokens = 0, val_tokens = 0;
  int64_t vocab_size = 0;
  uint32_t eot_id = 0;
  int token_width = 0;
  std::string tokenizer_file;  // "tokenizer.bpe" (llmpi's) or "tokenizer.json" (any other)
};

PrepareReport prepare_dataset(const PrepareOptions& options);

// Expands glob patterns (sorted matches) and plain paths; UserError for a pattern matching
// nothing, a missing file, a token shard (already prepared: its bytes are no text), or a file
// that is one of the outputs in out_dir (prepare would overwrite its own input).
std::vector<std::string> expand_inputs(const std::vector<std::string>& patterns,
                                       const std::string& out_dir);

// True if a document with this content hash belongs to the validation split.
bool is_validation_document(const Hash128& h, double val_fraction, uint64_t seed);

// The output rule (core/output_rule.h) for prepare and prepare --format sft writing into
// out_dir: train.bin, val.bin, tokenizer.bpe, tokenizer.json and prepare.json may be replaced
// when out_dir/prepare.json is prepare's manifest (a JSON object with format_version and
// tokenizer_file), else only with force. UserError naming the first refused path.
void claim_prepare_outputs(const std::string& out_dir, bool force);

// The JSON text of prepare.json for a report (also used by tests).
std::string prepare_report_json(const PrepareReport& r, const PrepareOptions& o);

}  // namespace llmpi
