// Byte-level BPE: encoding, decoding and the tokenizer file (format in docs/data-format.md).
// Encoding a chunk repeatedly merges the adjacent pair with the lowest merge index — the
// order the merges were learned in — until no adjacent pair is a merge. Chunks are at most
// kMaxChunkBytes long, so the quadratic scan per chunk is cheap; EncodeCache removes repeats.
#include "data/tokenizer.h"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <limits>
#include <sstream>

#include "core/error.h"
#include "data/pretokenize.h"

namespace llmpi {

namespace {

constexpr uint64_t pair_key(uint32_t a, uint32_t b) { return (uint64_t{a} << 32) | b; }
constexpr std::string_view kFileMagic = "llmpi-bpe";
constexpr int kFileVersion = 1;
constexpr std::string_view kPretokenizer = "bytes-gpt2-v1";

}  // namespace

Tokenizer::Tokenizer() : Tokenizer(std::vector<BpeMerge>{}) {}

Tokenizer::Tokenizer(std::vector<BpeMerge> merges) : merges_(std::move(merges)) {
  bytes_.reserve(257 + merges_.size());
  for (int b = 0; b < 256; ++b) bytes_.emplace_back(1, static_cast<char>(b));
  rank_.reserve(merges_.size());
  for (size_t i = 0; i < merges_.size(); ++i) {
    const BpeMerge m = merges_[i];
    const uint32_t id = 256 + static_cast<uint32_t>(i);
    LLMPI_CHECK(m.left < id && m.right < id, "merge ", i, " refers to a later token");
    const bool fresh = rank_.emplace(pair_key(m.left, m.right), static_cast<uint32_t>(i)).second;
    LLMPI_CHECK(fresh, "merge ", i, " (", m.left, ", ", m.right, ") is a duplicate");
    bytes_.push_back(bytes_[m.left] + bytes_[m.right]);
  }
  bytes_.emplace_back(kEndOfText);
}

void Tokenizer::encode_chunk(std::string_view chunk, std::vector<uint32_t>& out) const {
  const size_t start = out.size();
  for (char c : chunk) out.push_back(static_cast<unsigned char>(c));
  // ids lives in out[start, end); merge in place.
  size_t end = out.size();
  while (end - start >= 2) {
    uint32_t best_rank = std::numeric_limits<uint32_t>::max();
    for (size_t i = start; i + 1 < end; ++i) {
      auto it = rank_.find(pair_key(out[i], out[i + 1]));
      if (it != rank_.end() && it->second < best_rank) best_rank = it->second;
    }
    if (best_rank == std::numeric_limits<uint32_t>::max()) break;
    const BpeMerge m = merges_[best_rank];
    const uint32_t id = 256 + best_rank;
    size_t w = start;
    for (size_t r = start; r < end;) {
      if (r + 1 < end && out[r] == m.left && out[r + 1] == m.right) {
        out[w++] = id;
        r += 2;
      } else {
        out[w++] = out[r++];
      }
    }
    end = w;
  }
  out.resize(end);
}

void Tokenizer::encode_append(std::string_view text, std::vector<uint32_t>& out,
                              EncodeCache* cache) const {
  for_each_chunk(text, [&](std::string_view chunk) {
    if (cache == nullptr) return encode_chunk(chunk, out);
    std::string key(chunk);
    if (auto it = cache->map.find(key); it != cache->map.end()) {
      out.insert(out.end(), it->second.begin(), it->second.end());
      return;
    }
    const size_t start = out.size();
    encode_chunk(chunk, out);
    if (cache->map.size() >= cache->max_entries) cache->map.clear();
    cache->map.emplace(std::move(key), std::vector<uint32_t>(out.begin() + start, out.end()));
  });
}

std::vector<uint32_t> Tokenizer::encode(std::string_view text) const {
  std::vector<uint32_t> out;
  out.reserve(text.size() / 3 + 1);
  encode_append(text, out);
  return out;
}

const std::string& Tokenizer::token_bytes(uint32_t id) const {
  if (id >= bytes_.size())
    user_error("token id ", id, " is out of range for vocabulary size ", bytes_.size());
  return bytes_[id];
}

std::string Tokenizer::decode(const std::vector<uint32_t>& ids) const {
  std::string s;
  for (uint32_t id : ids) s += token_bytes(id);
  return s;
}

// ---- file format ------------------------------------------------------------------------
//   llmpi-bpe 1
//   pretokenizer bytes-gpt2-v1
//   vocab_size <257 + M>
//   special <|endoftext|> <256 + M>
//   merges <M>
//   <left> <right>        (M lines; line i defines id 256 + i)

void Tokenizer::save(const std::string& path) const {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    if (!f) user_error(tmp, ": cannot create: ", std::strerror(errno));
    f << kFileMagic << ' ' << kFileVersion << '\n'
      << "pretokenizer " << kPretokenizer << '\n'
      << "vocab_size " << vocab_size() << '\n'
      << "special " << kEndOfText << ' ' << eot_id() << '\n'
      << "merges " << merges_.size() << '\n';
    for (const BpeMerge& m : merges_) f << m.left << ' ' << m.right << '\n';
    f.flush();
    if (!f) {
      std::remove(tmp.c_str());
      user_error(tmp, ": write failed");
    }
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    const int err = errno;
    std::remove(tmp.c_str());
    user_error(path, ": cannot rename from ", tmp, ": ", std::strerror(err));
  }
}

namespace {

// Reads "<key> <value...>" lines of the header, checking the key; returns the rest.
struct LineReader {
  std::ifstream in;
  std::string path;
  int64_t line_no = 0;

  std::string next(const char* what) {
    std::string line;
    if (!std::getline(in, line))
      user_error(path, ":", line_no + 1, ": unexpected end of file (expected ", what, ")");
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    return line;
  }
  [[noreturn]] void fail(const std::string& msg) const {
    user_error(path, ":", line_no, ": ", msg);
  }
  // "key value" → value, else fails naming the expected key.
  std::string field(const char* key) {
    const std::string line = next(key);
    const std::string prefix = std::string(key) + ' ';
    if (line.rfind(prefix, 0) != 0) fail("expected '" + prefix + "...', got '" + line + "'");
    return line.substr(prefix.size());
  }
  int64_t integer(const std::string& s, const char* what) const {
    int64_t v = 0;
    size_t used = 0;
    try {
      v = std::stoll(s, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used == 0 || used != s.size() || v < 0)
      fail(std::string("expected a non-negative integer for ") + what + ", got '" + s + "'");
    return v;
  }
};

}  // namespace

Tokenizer Tokenizer::load(const std::string& path) {
  LineReader r{std::ifstream(path, std::ios::binary), path};
  if (!r.in) user_error(path, ": cannot open tokenizer file: ", std::strerror(errno));
  const std::string magic = r.next("header");
  const std::string expect_magic = std::string(kFileMagic) + ' ' + std::to_string(kFileVersion);
  if (magic.rfind(std::string(kFileMagic) + ' ', 0) != 0)
    r.fail("not an llmpi tokenizer file (expected first line '" + expect_magic + "')");
  if (magic != expect_magic)
    r.fail("unsupported tokenizer file version '" + magic + "' (expected '" + expect_magic +
           "')");
  const std::string pre = r.field("pretokenizer");
  if (pre != kPretokenizer)
    r.fail("unknown pretokenizer '" + pre + "' (expected '" + std::string(kPretokenizer) + "')");
  const int64_t vocab = r.integer(r.field("vocab_size"), "vocab_size");
  const std::string special = r.field("special");
  const std::string expect_special_prefix = std::string(kEndOfText) + ' ';
  if (special.rfind(expect_special_prefix, 0) != 0)
    r.fail("expected 'special " + std::string(kEndOfText) + " <id>'");
  const int64_t eot = r.integer(special.substr(expect_special_prefix.size()), "special id");
  const int64_t n_merges = r.integer(r.field("merges"), "merges");
  if (vocab != 257 + n_merges)
    r.fail("vocab_size " + std::to_string(vocab) + " does not equal 257 + merges (" +
           std::to_string(257 + n_merges) + ")");
  if (eot != 256 + n_merges)
    r.fail("end-of-text id " + std::to_string(eot) + " must be the last id (" +
           std::to_string(256 + n_merges) + ")");

  std::vector<BpeMerge> merges;
  merges.reserve(static_cast<size_t>(n_merges));
  std::unordered_map<uint64_t, int64_t> seen;
  for (int64_t i = 0; i < n_merges; ++i) {
    std::istringstream ls(r.next("a merge line '<left> <right>'"));
    int64_t a = -1, b = -1;
    std::string extra;
    if (!(ls >> a >> b) || (ls >> extra) || a < 0 || b < 0)
      r.fail("expected a merge '<left> <right>' of two non-negative token ids");
    const int64_t id = 256 + i;
    if (a >= id || b >= id)
      r.fail("merge for token " + std::to_string(id) + " refers to token " +
             std::to_string(std::max(a, b)) + ", which is not defined before it");
    const uint64_t key = pair_key(static_cast<uint32_t>(a), static_cast<uint32_t>(b));
    if (auto [it, fresh] = seen.emplace(key, r.line_no); !fresh)
      r.fail("duplicate merge (" + std::to_string(a) + ", " + std::to_string(b) +
             "), first at line " + std::to_string(it->second));
    merges.push_back({static_cast<uint32_t>(a), static_cast<uint32_t>(b)});
  }
  std::string line;
  while (std::getline(r.in, line)) {
    ++r.line_no;
    if (!line.empty() && line != "\r") r.fail("unexpected content after the last merge");
  }
  return Tokenizer(std::move(merges));
}

}  // namespace llmpi
