// JSONL on nlohmann-json's SAX interface: the handler keeps only the wanted top-level string
// and the nesting depth; no document tree is built. Lone surrogate escapes are rewritten to
// \uFFFD before parsing (nlohmann rejects them), by a scan that only runs when the line holds
// a "\u" escape of a surrogate.
#include "data/jsonl.h"

#include <cerrno>
#include <cstring>
#include <nlohmann/json.hpp>

#include "core/error.h"

namespace llmpi {

namespace {

constexpr int kMaxDepth = 256;

using Json = nlohmann::json;

// Hex value of a \uXXXX escape's 4 digits at s[i], or -1.
int hex4(std::string_view s, size_t i) {
  if (i + 4 > s.size()) return -1;
  int v = 0;
  for (size_t k = i; k < i + 4; ++k) {
    const char h = s[k];
    v <<= 4;
    if (h >= '0' && h <= '9') v |= h - '0';
    else if (h >= 'a' && h <= 'f') v |= h - 'a' + 10;
    else if (h >= 'A' && h <= 'F') v |= h - 'A' + 10;
    else return -1;
  }
  return v;
}

// Positions of "\u" escapes (the backslash itself not escaped) holding a surrogate that is
// not part of a valid high-low pair; rewritten to \uFFFD. Returns false if there is none.
bool repair_lone_surrogates(std::string_view s, std::string* out) {
  bool changed = false;
  size_t copied = 0;
  for (size_t i = 0; i + 5 < s.size() + 0; ++i) {
    if (s[i] != '\\') continue;
    if (s[i + 1] != 'u') { ++i; continue; }  // any other escape: skip its character
    const int cp = hex4(s, i + 2);
    if (cp < 0xD800 || cp > 0xDFFF) { i += 5; continue; }
    if (cp <= 0xDBFF && i + 11 < s.size() + 0 && s[i + 6] == '\\' && s[i + 7] == 'u') {
      const int lo = hex4(s, i + 8);
      if (lo >= 0xDC00 && lo <= 0xDFFF) { i += 11; continue; }  // a valid pair
    }
    if (!changed) out->clear();
    out->append(s.substr(copied, i - copied)).append("\\uFFFD");
    copied = i + 6;
    changed = true;
    i += 5;
  }
  if (changed) out->append(s.substr(copied));
  return changed;
}

// SAX handler: records the last top-level value of `field` (which must be a string).
class FieldPicker : public nlohmann::json_sax<Json> {
 public:
  explicit FieldPicker(std::string_view field) : field_(field) {}

  bool null() override { return scalar(); }
  bool boolean(bool) override { return scalar(); }
  bool number_integer(number_integer_t) override { return scalar(); }
  bool number_unsigned(number_unsigned_t) override { return scalar(); }
  bool number_float(number_float_t, const string_t&) override { return scalar(); }
  bool binary(binary_t&) override { return scalar(); }
  bool string(string_t& s) override {
    if (depth_ == 0) return fail("expected '{' (each line must be a JSON object)");
    if (depth_ == 1 && at_field_) {
      value_ = std::move(s);
      found_ = true;
      at_field_ = false;
    }
    return true;
  }
  bool start_object(std::size_t) override { return open(); }
  bool start_array(std::size_t) override {
    if (depth_ == 0) return fail("expected '{' (each line must be a JSON object)");
    return open();
  }
  bool end_object() override { --depth_; return true; }
  bool end_array() override { --depth_; return true; }
  bool key(string_t& k) override {
    if (depth_ == 1) at_field_ = (k == field_);
    return true;
  }
  bool parse_error(std::size_t byte, const std::string&, const nlohmann::detail::exception& e)
      override {
    // what() = "[json.exception.parse_error.101] parse error at line 1, column 14: <reason>"
    std::string reason = e.what();
    if (const size_t c = reason.find("column "); c != std::string::npos)
      if (const size_t colon = reason.find(": ", c); colon != std::string::npos)
        reason.erase(0, colon + 2);
    error_ = reason;
    error_column_ = byte == 0 ? 1 : byte;
    return false;
  }

  std::string_view field_;
  std::string value_, error_;
  size_t error_column_ = 0;  // 0: the error has no column
  bool found_ = false;

 private:
  bool open() {
    if (at_field_ && depth_ == 1) return fail_field();
    if (++depth_ > kMaxDepth) return fail("JSON nested deeper than 256 levels");
    return true;
  }
  bool scalar() {
    if (depth_ == 0) return fail("expected '{' (each line must be a JSON object)");
    if (depth_ == 1 && at_field_) return fail_field();
    return true;
  }
  bool fail_field() { return fail("field \"" + std::string(field_) + "\" must be a string"); }
  bool fail(std::string what) {
    error_ = std::move(what);
    return false;
  }
  int depth_ = 0;
  bool at_field_ = false;
};

}  // namespace

std::string json_object_string_field(std::string_view line, std::string_view field,
                                     const std::string& where) {
  std::string repaired;
  if (line.find("\\u") != std::string_view::npos && repair_lone_surrogates(line, &repaired))
    line = repaired;
  FieldPicker picker(field);
  const bool ok = Json::sax_parse(line.begin(), line.end(), &picker,
                                  nlohmann::detail::input_format_t::json, /*strict=*/true);
  if (!ok) {
    if (picker.error_column_ > 0) user_error(where, ":", picker.error_column_, ": ", picker.error_);
    user_error(where, ": ", picker.error_);
  }
  if (!picker.found_) user_error(where, ": object has no string field \"", field, "\"");
  return std::move(picker.value_);
}

JsonlReader::JsonlReader(std::string path, std::string field)
    : path_(std::move(path)), field_(std::move(field)), in_(path_, std::ios::binary) {
  if (!in_) user_error(path_, ": cannot open: ", std::strerror(errno));
}

bool JsonlReader::next(std::string* text) {
  while (std::getline(in_, line_)) {
    ++line_no_;
    bytes_ += static_cast<int64_t>(line_.size()) + 1;
    if (line_no_ == 1 && line_.rfind("\xEF\xBB\xBF", 0) == 0) line_.erase(0, 3);  // UTF-8 BOM
    if (line_.find_first_not_of(" \t\r") == std::string::npos) continue;  // blank line
    *text = json_object_string_field(line_, field_, path_ + ":" + std::to_string(line_no_));
    return true;
  }
  if (in_.bad()) user_error(path_, ": read error after line ", line_no_);
  return false;
}

}  // namespace llmpi
