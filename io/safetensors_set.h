#pragma once
// A model's weights as Hugging Face lays them out in a directory: one model.safetensors, or
// shards model-0000k-of-0000n.safetensors listed by model.safetensors.index.json
// ({"metadata": {"total_size": bytes, and the set's metadata}, "weight_map": {tensor: shard
// file}}, as huggingface_hub writes it; every file's "__metadata__" is the set's metadata).
// Reading checks the index against the shards (UserError naming the file and tensor): shard
// names are plain file names inside the directory (no '/' or ".."), every tensor of the map is
// in its shard and every tensor of a shard is in the map, names are unique across shards.
// Writing streams tensors (one at a time through a callback) into shards of at most
// max_shard_bytes of data (a bigger tensor gets a shard of its own), with the index when
// there is more than one; every file is written atomically. The files of the other layout
// (stale_safetensors_files) are removed after the new ones are complete, so a writer only
// writes into a directory that is its caller's own output (or holds none of them).
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "io/safetensors.h"

namespace llmpi {

class SafetensorsSet {
 public:
  explicit SafetensorsSet(const std::string& dir);
  // Every tensor name, sorted.
  std::vector<std::string> names() const;
  bool contains(const std::string& name) const { return where_.count(name) > 0; }
  // UserError naming the directory if absent.
  const StEntry& entry(const std::string& name) const;
  // The values as f32; UserError naming the tensor if any is NaN or infinite (these are model
  // weights: import-hf and init_from read them here, and a run from them computes NaN).
  std::vector<float> read_f32(const std::string& name) const;
  std::string source(const std::string& name) const;  // "<shard path>: tensor \"name\""
  size_t shard_count() const { return files_.size(); }
  const std::string& dir() const { return dir_; }

 private:
  std::string dir_;
  std::vector<SafetensorsFile> files_;
  std::map<std::string, std::pair<size_t, const StEntry*>> where_;
};

struct ShardedWriteReport {
  std::vector<std::string> files;  // written file names, in order
  uint64_t total_bytes = 0;        // tensor data bytes
};

inline constexpr uint64_t kDefaultMaxShardBytes = uint64_t{5} << 30;  // 5 GiB, as HF's default

// Whether a file name is one of a set's: model.safetensors, model.safetensors.index.json, or
// a shard model-<digits>-of-<digits>.safetensors.
bool is_safetensors_set_file(const std::string& name);

// The string metadata of a set file: a safetensors file's "__metadata__", or the index's
// "metadata". Empty for a path that is not a regular file or does not read as one (never
// throws): for recognisers.
std::map<std::string, std::string> set_file_metadata(const std::string& path);

// The files a set is written as: tensors split greedily in order (a shard closes when the next
// tensor would pass max_shard_bytes). One shard is model.safetensors; k > 1 are
// model-0000i-of-0000k.safetensors, followed by the index.
struct SafetensorsLayout {
  std::vector<std::vector<StSpec>> shards;  // the tensors of each file, in order
  std::vector<std::string> files;           // file names: the shards', then the index if k > 1
  uint64_t total_bytes = 0;                 // tensor data bytes
  std::string describe() const;  // "one model.safetensors" or "3 shards with model.safetensors.index.json"
};
SafetensorsLayout plan_safetensors_set(const std::vector<StSpec>& tensors,
                                       uint64_t max_shard_bytes = kDefaultMaxShardBytes);

// The paths in dir of set files (is_safetensors_set_file, anything of that name) that writing
// `layout` would not replace: left beside it, they would make dir read as other weights or
// inconsistently (model.safetensors is read before the index). Sorted.
std::vector<std::string> stale_safetensors_files(const std::string& dir,
                                                 const SafetensorsLayout& layout);

// Writes `layout` into dir (it must exist); bytes_of(spec) returns a tensor's bytes, asked in
// layout order. Then removes stale_safetensors_files(dir, layout): dir must be the caller's
// own output or hold none of them (train/hf_export.cpp refuses a foreign directory with any
// before writing anything: core/output_rule.h).
ShardedWriteReport write_safetensors_set(
    const std::string& dir, const SafetensorsLayout& layout,
    const std::function<std::vector<uint8_t>(const StSpec&)>& bytes_of,
    const std::map<std::string, std::string>& metadata = {{"format", "pt"}});

// The same for `tensors` laid out by plan_safetensors_set.
ShardedWriteReport write_safetensors_set(
    const std::string& dir, const std::vector<StSpec>& tensors,
    const std::function<std::vector<uint8_t>(const StSpec&)>& bytes_of,
    uint64_t max_shard_bytes = kDefaultMaxShardBytes,
    const std::map<std::string, std::string>& metadata = {{"format", "pt"}});

}  // namespace llmpi
