#pragma once
// GPT-2's pre-tokenization, exactly as its regex
//   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
// matches (leftmost alternative first, greedy), written by hand over UTF-8:
//   - an English contraction at the position ('s 't 're 've 'm 'll 'd, case-sensitive);
//   - else an optional single U+0020 followed by a run of letters, of numbers, or of "other"
//     characters (neither letter, number nor space);
//   - else a whitespace run: all of it at the end of the text or when it is one character,
//     otherwise all but its last character (which then leads the next chunk: a U+0020
//     joins the following word, any other space stands alone).
// Classes come from unicode_classes.h (\s = White_Space). A byte that is not part of valid
// UTF-8 counts as one "other" character — where a decoder would put U+FFFD, also "other" —
// and is kept as it is. Invariant: the chunks, concatenated, are exactly the input. Chunks are
// not length-limited (the BPE in tokenizer.cpp is O(n log n)).
#include <cstddef>
#include <string_view>

namespace llmpi {

// Length in bytes of the chunk starting at text[pos] (pos < text.size()).
size_t gpt2_chunk_length(std::string_view text, size_t pos);

template <class Fn>
void for_each_gpt2_chunk(std::string_view text, Fn&& fn) {
  for (size_t pos = 0; pos < text.size();) {
    const size_t len = gpt2_chunk_length(text, pos);
    fn(text.substr(pos, len));
    pos += len;
  }
}

}  // namespace llmpi
