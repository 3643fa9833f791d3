#pragma once
// BpeTrainer: learns byte-level BPE merges from text.
//   BpeTrainer t;  t.add_text(doc) for every document;  Tokenizer tok = t.train(vocab_size);
// add_text pre-tokenizes and counts distinct chunks ("words"); training then works on the
// (word, count) table only, so memory is O(distinct words), not O(corpus).
// Each step merges the most frequent adjacent pair (count = sum of the counts of the words it
// occurs in, non-overlapping occurrences); ties go to the smaller (left, right) id pair, so the
// result is a pure function of the multiset of words. Pair counts are updated incrementally,
// touching only words that contain the merged pair. Training stops early when no pair occurs
// at least twice, so vocab_size() of the result may be smaller than requested.
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>

#include "data/tokenizer.h"

namespace llmpi {

// UserError unless 257 <= vocab_size <= 2^31 (256 bytes + end-of-text at least); `what`
// names the value in the message ("--vocab-size").
void check_bpe_vocab_size(int64_t vocab_size, std::string_view what);

class BpeTrainer {
 public:
  void add_text(std::string_view text);
  size_t distinct_words() const { return word_counts_.size(); }
  // vocab_size as check_bpe_vocab_size allows; merges = vocab_size - 257 at most.
  Tokenizer train(int64_t vocab_size) const;

 private:
  std::unordered_map<std::string, int64_t> word_counts_;
};

}  // namespace llmpi
