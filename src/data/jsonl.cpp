// A recursive-descent JSON parser that only materializes one string field of the top-level
// object. Grammar per RFC 8259; whitespace = space, \t, \n, \r.
#include "data/jsonl.h"

#include <cerrno>
#include <cstring>

#include "core/error.h"

namespace llmpi {

namespace {

constexpr int kMaxDepth = 256;

class Parser {
 public:
  Parser(std::string_view s, const std::string& where) : s_(s), where_(where) {}

  std::string object_field(std::string_view field) {
    ws();
    expect('{', "'{' (each line must be a JSON object)");
    bool found = false;
    std::string value;
    ws();
    if (peek() == '}') {
      ++pos_;
    } else {
      for (;;) {
        ws();
        if (peek() != '"') fail("expected a string key");
        std::string key;
        string(&key);
        ws();
        expect(':', "':' after an object key");
        ws();
        if (key == field) {
          if (peek() != '"') fail("field \"" + std::string(field) + "\" must be a string");
          value.clear();
          string(&value);
          found = true;
        } else {
          skip_value(1);
        }
        ws();
        if (peek() == ',') { ++pos_; continue; }
        expect('}', "',' or '}' in object");
        break;
      }
    }
    ws();
    if (pos_ != s_.size()) fail("unexpected content after the JSON object");
    if (!found) fail("object has no string field \"" + std::string(field) + "\"", 0);
    return value;
  }

 private:
  [[noreturn]] void fail(const std::string& what, int with_column = 1) const {
    if (with_column) user_error(where_, ":", pos_ + 1, ": ", what);
    user_error(where_, ": ", what);
  }
  char peek() const { return pos_ < s_.size() ? s_[pos_] : '\0'; }
  bool at_end() const { return pos_ >= s_.size(); }
  void expect(char c, const char* what) {
    if (at_end() || s_[pos_] != c) fail(std::string("expected ") + what);
    ++pos_;
  }
  void ws() {
    while (!at_end() && (s_[pos_] == ' ' || s_[pos_] == '\t' || s_[pos_] == '\n' ||
                         s_[pos_] == '\r'))
      ++pos_;
  }

  void skip_value(int depth) {
    if (depth > kMaxDepth) fail("JSON nested deeper than 256 levels");
    ws();
    const char c = peek();
    if (c == '"') return string(nullptr);
    if (c == '{' || c == '[') {
      const char close = c == '{' ? '}' : ']';
      ++pos_;
      ws();
      if (peek() == close) { ++pos_; return; }
      for (;;) {
        ws();
        if (c == '{') {
          if (peek() != '"') fail("expected a string key");
          string(nullptr);
          ws();
          expect(':', "':' after an object key");
        }
        skip_value(depth + 1);
        ws();
        if (peek() == ',') { ++pos_; continue; }
        if (c == '{') expect('}', "',' or '}' in object");
        else expect(']', "',' or ']' in array");
        return;
      }
    }
    if (c == '-' || (c >= '0' && c <= '9')) return number();
    for (std::string_view lit : {"true", "false", "null"})
      if (s_.substr(pos_, lit.size()) == lit) { pos_ += lit.size(); return; }
    fail(at_end() ? "unexpected end of line, expected a value" : "expected a JSON value");
  }

  void digits() {
    if (!(peek() >= '0' && peek() <= '9')) fail("expected a digit in number");
    while (peek() >= '0' && peek() <= '9') ++pos_;
  }
  void number() {
    if (peek() == '-') ++pos_;
    if (peek() == '0') ++pos_;  // no leading zeros: "01" fails at the next token
    else digits();
    if (peek() == '.') { ++pos_; digits(); }
    if (peek() == 'e' || peek() == 'E') {
      ++pos_;
      if (peek() == '+' || peek() == '-') ++pos_;
      digits();
    }
  }

  unsigned hex4() {
    if (pos_ + 4 > s_.size()) fail("truncated \\u escape");
    unsigned v = 0;
    for (int i = 0; i < 4; ++i) {
      const char h = s_[pos_++];
      v <<= 4;
      if (h >= '0' && h <= '9') v |= h - '0';
      else if (h >= 'a' && h <= 'f') v |= h - 'a' + 10;
      else if (h >= 'A' && h <= 'F') v |= h - 'A' + 10;
      else { --pos_; fail("bad hex digit in \\u escape"); }
    }
    return v;
  }

  static void put_utf8(std::string* out, uint32_t cp) {
    if (cp < 0x80) {
      out->push_back(static_cast<char>(cp));
    } else if (cp < 0x800) {
      out->push_back(static_cast<char>(0xC0 | (cp >> 6)));
      out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else if (cp < 0x10000) {
      out->push_back(static_cast<char>(0xE0 | (cp >> 12)));
      out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
      out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else {
      out->push_back(static_cast<char>(0xF0 | (cp >> 18)));
      out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
      out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
      out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    }
  }

  // Parses a string at pos_ (which is '"'); appends its unescaped bytes to out if non-null.
  void string(std::string* out) {
    ++pos_;
    for (;;) {
      if (at_end()) fail("unterminated string");
      const char c = s_[pos_];
      if (c == '"') { ++pos_; return; }
      if (static_cast<unsigned char>(c) < 0x20) fail("raw control character in string (must be escaped)");
      if (c != '\\') {
        const size_t run = pos_;
        while (pos_ < s_.size() && s_[pos_] != '"' && s_[pos_] != '\\' &&
               static_cast<unsigned char>(s_[pos_]) >= 0x20)
          ++pos_;
        if (out) out->append(s_.substr(run, pos_ - run));
        continue;
      }
      ++pos_;
      if (at_end()) fail("unterminated escape");
      const char e = s_[pos_++];
      char plain = 0;
      switch (e) {
        case '"': plain = '"'; break;
        case '\\': plain = '\\'; break;
        case '/': plain = '/'; break;
        case 'b': plain = '\b'; break;
        case 'f': plain = '\f'; break;
        case 'n': plain = '\n'; break;
        case 'r': plain = '\r'; break;
        case 't': plain = '\t'; break;
        case 'u': {
          uint32_t cp = hex4();
          if (cp >= 0xD800 && cp <= 0xDBFF) {  // high surrogate: a low one must follow
            if (s_.substr(pos_, 2) == "\\u") {
              const size_t save = pos_;
              pos_ += 2;
              const uint32_t lo = hex4();
              if (lo >= 0xDC00 && lo <= 0xDFFF) cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
              else { pos_ = save; cp = 0xFFFD; }
            } else {
              cp = 0xFFFD;
            }
          } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
            cp = 0xFFFD;  // lone low surrogate
          }
          if (out) put_utf8(out, cp);
          continue;
        }
        default:
          --pos_;
          fail(std::string("invalid escape '\\") + e + "'");
      }
      if (out) out->push_back(plain);
    }
  }

  std::string_view s_;
  const std::string& where_;
  size_t pos_ = 0;
};

}  // namespace

std::string json_object_string_field(std::string_view line, std::string_view field,
                                     const std::string& where) {
  return Parser(line, where).object_field(field);
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
