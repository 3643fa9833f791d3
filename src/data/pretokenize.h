#pragma once
// Pre-tokenization: splits text into chunks that BPE merges never cross, in the spirit of
// GPT-2's pattern  's|'t|'re|'ve|'m|'ll|'d| ?L+| ?N+| ?[^\sLN]+|\s+(?!\S)|\s+  but written
// by hand over bytes (no regex, no Unicode tables):
//   letter L = ASCII letter or any byte >= 0x80 (so multi-byte UTF-8 characters, and any
//   invalid bytes, stay inside words); digit N = '0'..'9'; space = ' ' \t \n \r \v \f;
//   everything else (ASCII punctuation, control bytes incl. NUL) is "other".
// A single ' ' before a non-space run joins that run; a whitespace run keeps its last ' ' for
// the following word. Chunks longer than kMaxChunkBytes are cut into pieces of that size.
// Invariant: the chunks, concatenated in order, are exactly the input (lossless).
#include <cstddef>
#include <string_view>

namespace llmpi {

inline constexpr size_t kMaxChunkBytes = 256;

// Calls fn(std::string_view chunk) for each chunk of text, in order.
template <class Fn>
void for_each_chunk(std::string_view text, Fn&& fn);

// Length of the chunk that starts at text[pos] (before the kMaxChunkBytes cut).
size_t chunk_length(std::string_view text, size_t pos);

template <class Fn>
void for_each_chunk(std::string_view text, Fn&& fn) {
  size_t pos = 0;
  while (pos < text.size()) {
    const size_t len = chunk_length(text, pos);
    for (size_t off = 0; off < len; off += kMaxChunkBytes)
      fn(text.substr(pos + off, len - off < kMaxChunkBytes ? len - off : kMaxChunkBytes));
    pos += len;
  }
}

}  // namespace llmpi
