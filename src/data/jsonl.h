#pragma once
// JSONL reader for `llmpi prepare`: each non-blank line is one JSON object (RFC 8259, parsed by
// nlohmann-json's SAX parser, the project's one JSON library); the value of one string field
// (default "text") is returned unescaped as UTF-8 and every other value is parsed and skipped,
// so a malformed line is always detected. An unpaired \uD800-\uDFFF escape (seen in scraped
// data) becomes U+FFFD instead of failing the line. Nesting is limited to 256 levels.
// Errors: UserError "FILE:LINE:COLUMN: <what was expected>" (or "FILE:LINE: ..." where no
// column applies); a line whose object lacks the field, or has a non-string value for it, is
// an error too. If the field appears twice, the last value wins.
#include <cstdint>
#include <fstream>
#include <string>
#include <string_view>

namespace llmpi {

// Parses one JSON object and returns its `field` string. `where` prefixes error messages
// (e.g. "data.jsonl:12"); the column is appended.
std::string json_object_string_field(std::string_view line, std::string_view field,
                                     const std::string& where);

class JsonlReader {
 public:
  explicit JsonlReader(std::string path, std::string field = "text");
  // Reads the next non-blank line's field into *text; false at end of file.
  bool next(std::string* text);
  int64_t line_number() const { return line_no_; }
  int64_t bytes_read() const { return bytes_; }

 private:
  std::string path_, field_;
  std::ifstream in_;
  std::string line_;
  int64_t line_no_ = 0, bytes_ = 0;
};

}  // namespace llmpi
