#pragma once
// prepare_sft: fine-tuning JSONL (data/sft_records.h shapes) → version 3 token shards with
// documents and a per-token loss mask (docs/data-format.md, docs/finetuning.md).
// Per record: parse → render through the chat template (data/chat_template.h) → tokenize with
// the loss mask from the answer spans (data/chat_tokenize.h) → OUT/train.bin or OUT/val.bin
// (split by the content hash of the rendered text, as `prepare` splits documents). An SFT
// record is one document; a preference pair is two adjacent documents, prompt + chosen then
// prompt + rejected (same split). The first valid record decides the dataset's kind.
// Bad records — unparsable, of no known shape, badly ordered or empty turns, longer than
// max_tokens, of the other kind — are never dropped silently: each is counted, the first
// `report_limit` of each file are printed as FILE:LINE: reason, every file's count is
// printed, and prepare.json lists them (the first 1000) with the counts. No valid record at
// all is a UserError.
// Outputs (atomic): OUT/train.bin, OUT/val.bin, OUT/tokenizer.bpe (or tokenizer.json for a
// tokenizer that is not llmpi's, as `prepare` writes), OUT/prepare.json.
#include <cstdint>
#include <cstdio>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "data/chat_template.h"
#include "data/sft_records.h"

namespace llmpi {

struct SftPrepareOptions {
  std::vector<std::string> inputs;  // JSONL files or glob patterns, read in order
  std::string out_dir;
  std::string tokenizer_path;       // the model's tokenizer (required)
  std::string template_name;                   // a built-in template ("": chatml) …
  std::optional<ChatTemplateSpec> template_spec;  // … or one given as strings …
  std::string template_file;                      // … or a JSON file (ChatTemplate::from_file)
  int64_t max_tokens = 0;           // > 0: longer sequences are bad records
  double val_fraction = 0.05;       // in [0, 1)
  uint64_t seed = 1234;             // keys the train/val split
  int64_t report_limit = 10;        // bad records printed per file
  bool show_progress = true;
  bool force = false;               // replace foreign files at the output paths
  std::FILE* log = stderr;          // bad-record lines and the per-file counts
};

struct BadRecord {
  std::string file;
  int64_t line = 0;
  std::string reason;
};

struct SftPrepareReport {
  RecordKind kind = RecordKind::sft;
  int64_t files = 0, records_read = 0, bad_records = 0;
  std::map<std::string, int64_t> bad_per_file;   // every file, 0 included
  std::map<std::string, int64_t> shapes;         // valid records per shape
  std::vector<BadRecord> bad;                    // the first 1000
  int64_t train_records = 0, val_records = 0;
  int64_t train_tokens = 0, val_tokens = 0;            // all tokens
  int64_t train_loss_tokens = 0, val_loss_tokens = 0;  // tokens with mask 1
  int64_t longest = 0;                                 // tokens of the longest sequence
  int64_t vocab_size = 0;
  std::string template_name;
  std::string tokenizer_file;  // "tokenizer.bpe" (llmpi's) or "tokenizer.json"
};

SftPrepareReport prepare_sft(const SftPrepareOptions& o);

}  // namespace llmpi
