#pragma once
// safetensors files (Hugging Face's tensor container), read as hostile input and written
// atomically. Layout: u64 little-endian N | N bytes of JSON header | data. The header maps
// each tensor name to {"dtype", "shape", "data_offsets": [begin, end)} (offsets relative to
// the data start) plus an optional "__metadata__" object of string values.
// Reader invariants (each violation is a UserError naming the file, and the tensor or key):
// 8 <= file size; 2 <= N <= min(100 MB, size - 8); the header is one well-formed JSON object
// (UTF-8, no NUL byte) starting with '{'; names are non-empty and unique; each entry has exactly the three
// keys; dtype is one of the format's names; shape entries are non-negative and their product
// times the dtype size equals end - begin (no overflow); the ranges, sorted, tile the data
// section exactly from 0 to its end (no gap, no overlap, nothing outside the file).
// Values convert to f32 from F32, F16 and BF16 (the dtypes llmpi imports and exports).
#include <cstdint>
#include <cstdio>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace llmpi {

enum class StDtype : uint8_t { f64, f32, f16, bf16, i64, i32, i16, i8, u64, u32, u16, u8,
                               boolean, f8_e4m3, f8_e5m2 };

const char* st_dtype_name(StDtype d);  // "F32", "BF16", ...
int64_t st_dtype_size(StDtype d);      // bytes per element
// The dtype of a --dtype style name ("f32", "bf16", "f16"); UserError otherwise.
StDtype st_export_dtype(std::string_view name);

inline constexpr uint64_t kSafetensorsMaxHeader = 100'000'000;

struct StEntry {
  std::string name;
  StDtype dtype = StDtype::f32;
  std::vector<int64_t> shape;
  uint64_t begin = 0, end = 0;  // [begin, end) in the data section

  int64_t numel() const;
};

struct StHeader {
  std::vector<StEntry> tensors;  // in data order (sorted by begin)
  std::map<std::string, std::string> metadata;
  uint64_t data_start = 0;  // 8 + N
};

// Validates the bytes of a whole file (see the invariants above); `file` names it in errors.
StHeader parse_safetensors(std::span<const uint8_t> bytes, const std::string& file);

// A validated file, memory-mapped.
class SafetensorsFile {
 public:
  explicit SafetensorsFile(std::string path);
  ~SafetensorsFile();
  SafetensorsFile(SafetensorsFile&&) noexcept;
  SafetensorsFile& operator=(SafetensorsFile&&) noexcept;

  const std::string& path() const;
  const StHeader& header() const { return header_; }
  const StEntry* find(std::string_view name) const;  // nullptr if absent
  std::span<const uint8_t> bytes(const StEntry& e) const;
  // The tensor's values as f32 (F32/F16/BF16; UserError naming file and tensor otherwise).
  std::vector<float> read_f32(const StEntry& e) const;

 private:
  struct Mapping;
  std::unique_ptr<Mapping> map_;
  StHeader header_;
  std::map<std::string, size_t, std::less<>> index_;
};

// Converts f32 values into a dtype's little-endian bytes (F32, F16 or BF16).
std::vector<uint8_t> encode_f32(std::span<const float> values, StDtype dtype);
// Converts a tensor's bytes to f32 (F32, F16, BF16); `what` names it in errors.
std::vector<float> decode_f32(std::span<const uint8_t> bytes, StDtype dtype,
                              const std::string& what);

// Streaming writer: the header is fixed up front from the entries' dtypes and shapes (offsets
// assigned in the given order), then each tensor's bytes are written in that order, then
// commit() renames "<path>.tmp" to path. Destroyed without commit: the temporary is removed.
struct StSpec {
  std::string name;
  StDtype dtype = StDtype::f32;
  std::vector<int64_t> shape;
};

class SafetensorsWriter {
 public:
  SafetensorsWriter(std::string path, const std::vector<StSpec>& tensors,
                    const std::map<std::string, std::string>& metadata = {});
  ~SafetensorsWriter();
  SafetensorsWriter(const SafetensorsWriter&) = delete;
  SafetensorsWriter& operator=(const SafetensorsWriter&) = delete;

  // Writes the next tensor; its name and byte size must be the next spec's.
  void write(std::string_view name, std::span<const uint8_t> bytes);
  void commit();
  uint64_t data_bytes() const { return total_; }

 private:
  std::string path_, tmp_;
  std::FILE* f_ = nullptr;
  std::vector<StEntry> entries_;
  size_t next_ = 0;
  uint64_t total_ = 0;
};

// The size of the file a writer produces for these tensors and metadata.
uint64_t safetensors_file_size(const std::vector<StSpec>& tensors,
                               const std::map<std::string, std::string>& metadata = {});

}  // namespace llmpi
