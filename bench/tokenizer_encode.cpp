// Encoding throughput of llmpi's GPT-2 tokenizer, the way `llmpi prepare` encodes (one
// EncodeCache over the corpus, documents appended to one id buffer), and without the cache.
//   bench_tokenizer_encode TOKENIZER CORPUS [REPEATS=3]
// CORPUS: documents separated by "\n%\n" (bench/tokenizer_encode.sh builds it from the
// fortunes files). Prints "<impl> <MB/s> <tokens>" lines, best of REPEATS.
#include <chrono>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "data/hf_tokenizer.h"

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: %s TOKENIZER CORPUS [REPEATS]\n", argv[0]);
    return 2;
  }
  const llmpi::Tokenizer tok = llmpi::load_tokenizer(argv[1]);
  std::ifstream in(argv[2], std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string text = ss.str();
  std::vector<std::string_view> docs;
  for (size_t pos = 0; pos <= text.size();) {
    size_t end = text.find("\n%\n", pos);
    if (end == std::string::npos) end = text.size();
    docs.emplace_back(text.data() + pos, end - pos);
    pos = end + 3;
  }
  const int repeats = argc > 3 ? std::atoi(argv[3]) : 3;
  for (const bool cached : {true, false}) {
    double best = 1e30;
    size_t tokens = 0;
    for (int r = 0; r < repeats; ++r) {
      llmpi::EncodeCache cache;
      std::vector<uint32_t> ids;
      const auto t0 = std::chrono::steady_clock::now();
      for (std::string_view d : docs) tok.encode_append(d, ids, cached ? &cache : nullptr);
      const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      best = std::min(best, s);
      tokens = ids.size();
    }
    std::printf("llmpi%s %.2f %zu\n", cached ? "(prepare: chunk cache)" : "(no cache)",
                double(text.size()) / 1e6 / best, tokens);
  }
  return 0;
}
