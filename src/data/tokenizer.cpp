// Byte-level BPE: construction checks, encoding, decoding and the llmpi tokenizer file
// (format in docs/data-format.md). A chunk is encoded on a linked list of symbols with a
// min-heap of (merge rank, position): the lowest rank pops first and, within one rank, the
// leftmost occurrence — with the invariant that merges only join tokens made by earlier merges,
// this is exactly GPT-2's "merge every occurrence of the best pair, left to right", in
// O(n log n) for chunks of any length (GPT-2's pre-tokenizer does not bound them).
#include "data/tokenizer.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <limits>
#include <queue>
#include <sstream>

#include "core/error.h"
#include "core/file_kind.h"
#include "core/text_file.h"
#include "data/gpt2_pretokenize.h"
#include "data/pretokenize.h"

namespace llmpi {

namespace {

constexpr uint64_t pair_key(uint32_t a, uint32_t b) { return (uint64_t{a} << 32) | b; }
constexpr std::string_view kFileMagic = "llmpi-bpe";
constexpr int kFileVersion = 1;
constexpr std::string_view kPretokenizer = "bytes-gpt2-v1";

BpeVocab llmpi_vocab(std::vector<BpeMerge> merges) {
  BpeVocab v;
  v.pretokenizer = Pretokenizer::llmpi_bytes;
  v.tokens.reserve(257 + merges.size());
  for (int b = 0; b < 256; ++b) v.tokens.emplace_back(1, static_cast<char>(b));
  for (size_t i = 0; i < merges.size(); ++i) {
    BpeMerge& m = merges[i];
    m.result = 256 + static_cast<uint32_t>(i);
    if (m.left >= m.result || m.right >= m.result)
      user_error("llmpi tokenizer: merge ", i, " refers to a later token");
    v.tokens.push_back(v.tokens[m.left] + v.tokens[m.right]);
  }
  v.specials = {static_cast<uint32_t>(v.tokens.size())};
  v.tokens.emplace_back(kEndOfText);
  v.merges = std::move(merges);
  return v;
}

}  // namespace

const char* pretokenizer_name(Pretokenizer p) {
  return p == Pretokenizer::llmpi_bytes ? "llmpi-bytes" : "gpt2";
}

Tokenizer::Tokenizer() : Tokenizer(std::vector<BpeMerge>{}) {}

Tokenizer::Tokenizer(std::vector<BpeMerge> merges)
    : Tokenizer(llmpi_vocab(std::move(merges)), "llmpi tokenizer") {}

Tokenizer::Tokenizer(BpeVocab v, const std::string& source)
    : pre_(v.pretokenizer), merges_(std::move(v.merges)), bytes_(std::move(v.tokens)),
      specials_(std::move(v.specials)) {
  index(source);
}

void Tokenizer::index(const std::string& src) {
  const size_t V = bytes_.size();
  if (V == 0 || V > (size_t{1} << 31)) user_error(src, ": vocabulary size ", V, " is out of range");
  std::sort(specials_.begin(), specials_.end());
  bool have_eot = false;
  for (size_t i = 0; i < specials_.size(); ++i) {
    if (specials_[i] >= V) user_error(src, ": special token id ", specials_[i], " >= vocabulary size ", V);
    if (i > 0 && specials_[i] == specials_[i - 1]) user_error(src, ": special token id ", specials_[i], " listed twice");
    if (bytes_[specials_[i]] == kEndOfText) {
      eot_ = specials_[i];
      have_eot = true;
    }
  }
  if (!have_eot) user_error(src, ": no special token \"", kEndOfText, "\" (llmpi needs a document separator)");
  std::unordered_map<std::string_view, uint32_t> by_bytes;
  by_bytes.reserve(V);
  bool have_byte[256] = {};
  for (uint32_t id = 0; id < V; ++id) {
    if (is_special(id)) continue;
    const std::string& b = bytes_[id];
    if (b.empty()) user_error(src, ": token ", id, " is empty");
    if (auto [it, fresh] = by_bytes.emplace(b, id); !fresh)
      user_error(src, ": tokens ", it->second, " and ", id, " have the same bytes");
    if (b.size() == 1) {
      byte_id_[static_cast<unsigned char>(b[0])] = id;
      have_byte[static_cast<unsigned char>(b[0])] = true;
    }
  }
  for (int b = 0; b < 256; ++b)
    if (!have_byte[b]) user_error(src, ": no token for the byte 0x", std::hex, b, " (a byte-level BPE needs all 256)");
  // made[id]: a byte or the result of an earlier merge — what a merge may join.
  std::vector<char> made(V, 0);
  for (int b = 0; b < 256; ++b) made[byte_id_[b]] = 1;
  rank_.reserve(merges_.size());
  for (size_t r = 0; r < merges_.size(); ++r) {
    const BpeMerge m = merges_[r];
    if (m.left >= V || m.right >= V || m.result >= V)
      user_error(src, ": merge ", r, " refers to a token id >= vocabulary size ", V);
    if (!made[m.left] || !made[m.right])
      user_error(src, ": merge ", r, " (", m.left, ", ", m.right, ") joins a token that no earlier merge makes");
    if (made[m.result] || is_special(m.result))
      user_error(src, ": merge ", r, " makes token ", m.result, ", which already exists before it");
    if (bytes_[m.result] != bytes_[m.left] + bytes_[m.right])
      user_error(src, ": merge ", r, " (", m.left, ", ", m.right, ") makes token ", m.result,
                 " whose bytes are not the pair's bytes joined");
    if (!rank_.emplace(pair_key(m.left, m.right), (uint64_t{r} << 32) | m.result).second)
      user_error(src, ": merge ", r, " (", m.left, ", ", m.right, ") is a duplicate");
    made[m.result] = 1;
  }
}

bool Tokenizer::is_special(uint32_t id) const {
  return std::binary_search(specials_.begin(), specials_.end(), id);
}

bool Tokenizer::has_llmpi_layout() const {
  const size_t M = merges_.size();
  if (pre_ != Pretokenizer::llmpi_bytes || bytes_.size() != 257 + M || specials_.size() != 1 ||
      eot_ != 256 + M)
    return false;
  for (uint32_t b = 0; b < 256; ++b)
    if (byte_id_[b] != b) return false;
  for (size_t i = 0; i < M; ++i)
    if (merges_[i].result != 256 + i) return false;
  return true;
}

void Tokenizer::encode_chunk(std::string_view chunk, std::vector<uint32_t>& out) const {
  const size_t n = chunk.size();
  if (n == 1) {
    out.push_back(byte_id_[static_cast<unsigned char>(chunk[0])]);
    return;
  }
  constexpr uint32_t kDead = std::numeric_limits<uint32_t>::max();
  struct Sym {
    uint32_t id;
    int32_t prev, next;
  };
  std::vector<Sym> s(n);
  for (size_t i = 0; i < n; ++i)
    s[i] = {byte_id_[static_cast<unsigned char>(chunk[i])], int32_t(i) - 1,
            i + 1 < n ? int32_t(i + 1) : -1};
  // Heap entries: rank << 32 | position of the pair's left symbol; smallest first.
  std::priority_queue<uint64_t, std::vector<uint64_t>, std::greater<>> heap;
  auto push = [&](int32_t pos) {
    if (pos < 0 || s[size_t(pos)].next < 0) return;
    const auto it = rank_.find(pair_key(s[size_t(pos)].id, s[size_t(s[size_t(pos)].next)].id));
    if (it != rank_.end()) heap.push((it->second & 0xFFFFFFFF00000000ull) | uint32_t(pos));
  };
  for (size_t i = 0; i + 1 < n; ++i) push(int32_t(i));
  while (!heap.empty()) {
    const uint64_t top = heap.top();
    heap.pop();
    const int32_t pos = int32_t(top & 0xFFFFFFFFu);
    Sym& a = s[size_t(pos)];
    if (a.id == kDead || a.next < 0) continue;
    Sym& b = s[size_t(a.next)];
    const auto it = rank_.find(pair_key(a.id, b.id));
    if (it == rank_.end() || (it->second >> 32) != (top >> 32)) continue;  // stale entry
    a.id = uint32_t(it->second & 0xFFFFFFFFu);
    b.id = kDead;
    a.next = b.next;
    if (a.next >= 0) s[size_t(a.next)].prev = pos;
    push(a.prev);
    push(pos);
  }
  for (int32_t i = 0; i >= 0; i = s[size_t(i)].next) out.push_back(s[size_t(i)].id);
}

void Tokenizer::encode_append(std::string_view text, std::vector<uint32_t>& out,
                              EncodeCache* cache) const {
  auto each = [&](std::string_view chunk) {
    if (cache == nullptr) return encode_chunk(chunk, out);
    if (auto it = cache->map.find(std::string(chunk)); it != cache->map.end()) {
      out.insert(out.end(), it->second.begin(), it->second.end());
      return;
    }
    const size_t start = out.size();
    encode_chunk(chunk, out);
    if (cache->map.size() >= cache->max_entries) cache->map.clear();
    cache->map.emplace(std::string(chunk), std::vector<uint32_t>(out.begin() + start, out.end()));
  };
  if (pre_ == Pretokenizer::gpt2) for_each_gpt2_chunk(text, each);
  else for_each_chunk(text, each);
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
  if (!has_llmpi_layout())
    user_error(path, ": a ", pretokenizer_name(pre_), " tokenizer is not in llmpi's id layout; "
               "write it as tokenizer.json (data/hf_tokenizer.h) instead");
  const std::string tmp = temporary_of(path);
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
  require_regular_file(path, "a tokenizer file (tokenizer.bpe, from llmpi prepare)");
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
