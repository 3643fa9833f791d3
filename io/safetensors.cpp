// safetensors: header validation, the mapped reader, dtype conversion and the atomic writer.
// One rule in one place: parse_safetensors() is the only reader of header bytes; the fuzz
// target (tests/fuzz/fuzz_safetensors.cpp) drives it directly.
#include "io/safetensors.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <set>

#include "core/error.h"
#include "core/float16.h"
#include "core/text_file.h"
#include "data/mapped_file.h"

namespace llmpi {

namespace {

using Json = nlohmann::json;

struct DtypeInfo {
  StDtype dtype;
  const char* name;
  int64_t size;
};
constexpr DtypeInfo kDtypes[] = {
    {StDtype::f64, "F64", 8},      {StDtype::f32, "F32", 4},         {StDtype::f16, "F16", 2},
    {StDtype::bf16, "BF16", 2},    {StDtype::i64, "I64", 8},         {StDtype::i32, "I32", 4},
    {StDtype::i16, "I16", 2},      {StDtype::i8, "I8", 1},           {StDtype::u64, "U64", 8},
    {StDtype::u32, "U32", 4},      {StDtype::u16, "U16", 2},         {StDtype::u8, "U8", 1},
    {StDtype::boolean, "BOOL", 1}, {StDtype::f8_e4m3, "F8_E4M3", 1}, {StDtype::f8_e5m2, "F8_E5M2", 1},
};

const DtypeInfo& info(StDtype d) {
  for (const auto& i : kDtypes)
    if (i.dtype == d) return i;
  throw InternalError("unknown StDtype");
}

std::string dq(std::string_view s) { return "\"" + std::string(s) + "\""; }

uint64_t read_u64_le(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

// A non-negative JSON integer (not a float, not negative) or UserError.
uint64_t json_uint(const Json& v, const std::string& file, const std::string& what) {
  if (!v.is_number_unsigned() && !(v.is_number_integer() && v.get<int64_t>() >= 0))
    user_error(file, ": ", what, " must be a non-negative integer, got ", v.dump());
  return v.get<uint64_t>();
}

StEntry parse_entry(const std::string& name, const Json& v, const std::string& file) {
  const std::string where = "tensor " + dq(name);
  if (!v.is_object()) user_error(file, ": ", where, ": expected an object, got ", v.type_name());
  for (const auto& [key, _] : v.items())
    if (key != "dtype" && key != "shape" && key != "data_offsets")
      user_error(file, ": ", where, ": unknown key ", dq(key),
                 " (expected dtype, shape, data_offsets)");
  for (const char* key : {"dtype", "shape", "data_offsets"})
    if (!v.contains(key)) user_error(file, ": ", where, ": missing key ", dq(key));
  StEntry e;
  e.name = name;
  const Json& dt = v["dtype"];
  if (!dt.is_string()) user_error(file, ": ", where, ": dtype must be a string");
  const std::string dts = dt.get<std::string>();
  const auto it = std::find_if(std::begin(kDtypes), std::end(kDtypes),
                               [&](const DtypeInfo& i) { return dts == i.name; });
  if (it == std::end(kDtypes))
    user_error(file, ": ", where, ": unknown dtype ", dq(dts),
               " (expected one of F64 F32 F16 BF16 I64 I32 I16 I8 U64 U32 U16 U8 BOOL "
               "F8_E4M3 F8_E5M2)");
  e.dtype = it->dtype;
  const Json& shape = v["shape"];
  if (!shape.is_array()) user_error(file, ": ", where, ": shape must be an array");
  uint64_t numel = 1;
  for (const Json& d : shape) {
    const uint64_t n = json_uint(d, file, where + ": shape entry");
    if (n > uint64_t(INT64_MAX) || __builtin_mul_overflow(numel, n, &numel))
      user_error(file, ": ", where, ": shape ", shape.dump(), " has too many elements");
    e.shape.push_back(int64_t(n));
  }
  const Json& off = v["data_offsets"];
  if (!off.is_array() || off.size() != 2)
    user_error(file, ": ", where, ": data_offsets must be an array [begin, end]");
  e.begin = json_uint(off[0], file, where + ": data_offsets[0]");
  e.end = json_uint(off[1], file, where + ": data_offsets[1]");
  if (e.end < e.begin)
    user_error(file, ": ", where, ": data_offsets [", e.begin, ", ", e.end, "] end before begin");
  uint64_t bytes = 0;
  if (__builtin_mul_overflow(numel, uint64_t(it->size), &bytes) || bytes != e.end - e.begin)
    user_error(file, ": ", where, ": shape ", shape.dump(), " of ", dts, " needs ",
               numel, " x ", it->size, " bytes, but data_offsets [", e.begin, ", ", e.end,
               "] hold ", e.end - e.begin);
  return e;
}

}  // namespace

const char* st_dtype_name(StDtype d) { return info(d).name; }
int64_t st_dtype_size(StDtype d) { return info(d).size; }

StDtype st_export_dtype(std::string_view name) {
  if (name == "f32" || name == "float32") return StDtype::f32;
  if (name == "bf16" || name == "bfloat16") return StDtype::bf16;
  if (name == "f16" || name == "float16") return StDtype::f16;
  user_error("--dtype ", dq(name), ": expected f32, bf16 or f16");
}

int64_t StEntry::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

StHeader parse_safetensors(std::span<const uint8_t> bytes, const std::string& file) {
  if (bytes.size() < 8)
    user_error(file, ": not a safetensors file: ", bytes.size(),
               " bytes, too short for the 8-byte header length");
  const uint64_t n = read_u64_le(bytes.data());
  if (n < 2 || n > kSafetensorsMaxHeader || n > bytes.size() - 8)
    user_error(file, ": not a safetensors file: header length ", n, " is outside [2, ",
               std::min<uint64_t>(kSafetensorsMaxHeader, bytes.size() - 8), "] (file size ",
               bytes.size(), ")");
  const std::string_view text(reinterpret_cast<const char*>(bytes.data() + 8), size_t(n));
  if (text[0] != '{') user_error(file, ": safetensors header must start with '{'");
  // nlohmann-json ends its input at a NUL byte: "{...}\0{...}" would pass with its second half
  // unread, where other readers refuse the file. The format pads with spaces.
  if (const size_t nul = text.find('\0'); nul != std::string_view::npos)
    user_error(file, ": safetensors header has a NUL byte at offset ", nul,
               " (the header is JSON text, padded with spaces)");

  // Duplicate names are detected while parsing (a JSON object would keep only the last);
  // nesting deeper than a valid header needs (root > tensor > shape) is refused.
  std::string duplicate;
  bool too_deep = false;
  std::set<std::string> seen;
  auto callback = [&](int depth, Json::parse_event_t ev, Json& parsed) {
    if (ev == Json::parse_event_t::key && depth == 1 &&
        !seen.insert(parsed.get<std::string>()).second && duplicate.empty())
      duplicate = parsed.get<std::string>();
    if ((ev == Json::parse_event_t::object_start || ev == Json::parse_event_t::array_start) &&
        depth > 3) {
      too_deep = true;
      return false;
    }
    return true;
  };
  Json root;
  try {
    root = Json::parse(text.begin(), text.end(), callback, /*allow_exceptions=*/true);
  } catch (const Json::exception& e) {
    std::string why = e.what();
    if (const size_t p = why.find("] "); p != std::string::npos) why.erase(0, p + 2);
    user_error(file, ": safetensors header is not valid JSON: ", why);
  }
  if (!duplicate.empty())
    user_error(file, ": tensor ", dq(duplicate), " appears twice in the header");
  if (too_deep) user_error(file, ": safetensors header nests deeper than a header can");
  if (!root.is_object()) user_error(file, ": safetensors header must be a JSON object");

  StHeader h;
  h.data_start = 8 + n;
  const uint64_t data_size = bytes.size() - h.data_start;
  for (const auto& [name, v] : root.items()) {
    if (name == "__metadata__") {
      if (!v.is_object()) user_error(file, ": __metadata__ must be an object of strings");
      for (const auto& [k, s] : v.items()) {
        if (!s.is_string())
          user_error(file, ": __metadata__ ", dq(k), " must be a string, got ", s.type_name());
        h.metadata[k] = s.get<std::string>();
      }
      continue;
    }
    if (name.empty()) user_error(file, ": a tensor has an empty name");
    h.tensors.push_back(parse_entry(name, v, file));
  }
  std::sort(h.tensors.begin(), h.tensors.end(), [](const StEntry& a, const StEntry& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  uint64_t expect = 0;
  for (const StEntry& e : h.tensors) {
    if (e.end > data_size)
      user_error(file, ": tensor ", dq(e.name), ": data_offsets [", e.begin, ", ", e.end,
                 "] reach past the end of the data (", data_size, " bytes)");
    if (e.begin < expect)
      user_error(file, ": tensor ", dq(e.name), ": data_offsets [", e.begin, ", ", e.end,
                 "] overlap the previous tensor, which ends at ", expect);
    if (e.begin > expect)
      user_error(file, ": tensor ", dq(e.name), ": data_offsets [", e.begin, ", ", e.end,
                 "] leave a gap of ", e.begin - expect, " bytes after offset ", expect);
    expect = e.end;
  }
  if (expect != data_size)
    user_error(file, ": ", data_size - expect, " bytes after the last tensor (data ends at ",
               expect, ", file has ", data_size, ")");
  return h;
}

// ---- reader -----------------------------------------------------------------------------

struct SafetensorsFile::Mapping {
  MappedFile file;
};

SafetensorsFile::SafetensorsFile(std::string path)
    : map_(std::make_unique<Mapping>(Mapping{MappedFile(std::move(path), "a .safetensors file")})) {
  header_ = parse_safetensors({map_->file.data(), map_->file.size()}, map_->file.path());
  for (size_t i = 0; i < header_.tensors.size(); ++i) index_[header_.tensors[i].name] = i;
}
SafetensorsFile::~SafetensorsFile() = default;
SafetensorsFile::SafetensorsFile(SafetensorsFile&&) noexcept = default;
SafetensorsFile& SafetensorsFile::operator=(SafetensorsFile&&) noexcept = default;

const std::string& SafetensorsFile::path() const { return map_->file.path(); }

const StEntry* SafetensorsFile::find(std::string_view name) const {
  const auto it = index_.find(name);
  return it == index_.end() ? nullptr : &header_.tensors[it->second];
}

std::span<const uint8_t> SafetensorsFile::bytes(const StEntry& e) const {
  return {map_->file.data() + header_.data_start + e.begin, size_t(e.end - e.begin)};
}

std::vector<float> SafetensorsFile::read_f32(const StEntry& e) const {
  return decode_f32(bytes(e), e.dtype, path() + ": tensor " + dq(e.name));
}

std::vector<float> decode_f32(std::span<const uint8_t> b, StDtype dtype, const std::string& what) {
  const size_t n = b.size() / size_t(st_dtype_size(dtype));
  std::vector<float> out(n);
  switch (dtype) {
    case StDtype::f32:
      if (n > 0) std::memcpy(out.data(), b.data(), n * 4);  // little-endian host (x86-64, aarch64)
      break;
    case StDtype::bf16:
    case StDtype::f16:
      for (size_t i = 0; i < n; ++i) {
        const uint16_t h = uint16_t(b[2 * i] | (b[2 * i + 1] << 8));
        out[i] = dtype == StDtype::bf16 ? bf16_to_f32(h) : f16_to_f32(h);
      }
      break;
    default:
      user_error(what, ": dtype ", st_dtype_name(dtype),
                 " is not supported for model weights (expected F32, BF16 or F16)");
  }
  return out;
}

std::vector<uint8_t> encode_f32(std::span<const float> v, StDtype dtype) {
  std::vector<uint8_t> out(v.size() * size_t(st_dtype_size(dtype)));
  if (dtype == StDtype::f32) {
    if (!out.empty()) std::memcpy(out.data(), v.data(), out.size());
    return out;
  }
  LLMPI_CHECK(dtype == StDtype::bf16 || dtype == StDtype::f16, "encode_f32 to ",
              st_dtype_name(dtype));
  for (size_t i = 0; i < v.size(); ++i) {
    const uint16_t h = dtype == StDtype::bf16 ? f32_to_bf16(v[i]) : f32_to_f16(v[i]);
    out[2 * i] = uint8_t(h & 0xFF);
    out[2 * i + 1] = uint8_t(h >> 8);
  }
  return out;
}

// ---- writer -----------------------------------------------------------------------------

namespace {

// Header text padded with spaces so that the data starts at a multiple of 8.
std::string header_text(const std::vector<StEntry>& entries,
                        const std::map<std::string, std::string>& metadata) {
  Json root = Json::object();
  if (!metadata.empty()) root["__metadata__"] = metadata;
  for (const StEntry& e : entries)
    root[e.name] = {{"dtype", st_dtype_name(e.dtype)},
                    {"shape", e.shape},
                    {"data_offsets", {e.begin, e.end}}};
  std::string text = root.dump();
  text.append((8 - text.size() % 8) % 8, ' ');
  return text;
}

std::vector<StEntry> layout(const std::vector<StSpec>& specs) {
  std::vector<StEntry> out;
  std::set<std::string_view> names;
  uint64_t at = 0;
  for (const StSpec& s : specs) {
    LLMPI_CHECK(names.insert(s.name).second, "safetensors: duplicate tensor ", s.name);
    StEntry e{s.name, s.dtype, s.shape, at, 0};
    e.end = at + uint64_t(e.numel() * st_dtype_size(s.dtype));
    at = e.end;
    out.push_back(std::move(e));
  }
  return out;
}

}  // namespace

uint64_t safetensors_file_size(const std::vector<StSpec>& tensors,
                               const std::map<std::string, std::string>& metadata) {
  const std::vector<StEntry> e = layout(tensors);
  return 8 + header_text(e, metadata).size() + (e.empty() ? 0 : e.back().end);
}

SafetensorsWriter::SafetensorsWriter(std::string path, const std::vector<StSpec>& tensors,
                                     const std::map<std::string, std::string>& metadata)
    : path_(std::move(path)), tmp_(temporary_of(path_)), entries_(layout(tensors)) {
  f_ = std::fopen(tmp_.c_str(), "wb");
  if (!f_) user_error(tmp_, ": cannot create: ", std::strerror(errno));
  const std::string text = header_text(entries_, metadata);
  uint8_t len[8];
  for (int i = 0; i < 8; ++i) len[i] = uint8_t(uint64_t(text.size()) >> (8 * i));
  if (std::fwrite(len, 1, 8, f_) != 8 || std::fwrite(text.data(), 1, text.size(), f_) != text.size())
    user_error(tmp_, ": write failed: ", std::strerror(errno));
}

SafetensorsWriter::~SafetensorsWriter() {
  if (f_) {
    std::fclose(f_);
    std::remove(tmp_.c_str());
  }
}

void SafetensorsWriter::write(std::string_view name, std::span<const uint8_t> bytes) {
  LLMPI_CHECK(next_ < entries_.size() && entries_[next_].name == name,
              "safetensors writer: tensor ", name, " written out of order");
  const StEntry& e = entries_[next_++];
  LLMPI_CHECK(bytes.size() == e.end - e.begin, "safetensors writer: tensor ", name, " has ",
              bytes.size(), " bytes, expected ", e.end - e.begin);
  if (std::fwrite(bytes.data(), 1, bytes.size(), f_) != bytes.size())
    user_error(tmp_, ": write failed: ", std::strerror(errno));
  total_ += bytes.size();
}

void SafetensorsWriter::commit() {
  LLMPI_CHECK(next_ == entries_.size(), "safetensors writer: ", entries_.size() - next_,
              " tensors not written");
  const bool ok = std::fflush(f_) == 0;
  std::fclose(f_);
  f_ = nullptr;
  if (!ok) {
    std::remove(tmp_.c_str());
    user_error(tmp_, ": write failed: ", std::strerror(errno));
  }
  std::error_code ec;
  std::filesystem::rename(tmp_, path_, ec);
  if (ec) user_error(path_, ": cannot rename from ", tmp_, ": ", ec.message());
}

}  // namespace llmpi
