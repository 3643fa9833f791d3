#pragma once
// A model's weights as Hugging Face lays them out in a directory: one model.safetensors, or
// shards model-0000k-of-0000n.safetensors listed by model.safetensors.index.json
// ({"metadata": {"total_size": bytes}, "weight_map": {tensor: shard file}}).
// Reading checks the index against the shards (UserError naming the file and tensor): shard
// names are plain file names inside the directory (no '/' or ".."), every tensor of the map is
// in its shard and every tensor of a shard is in the map, names are unique across shards.
// Writing streams tensors (one at a time through a callback) into shards of at most
// max_shard_bytes of data (a bigger tensor gets a shard of its own), with the index when
// there is more than one; every file is written atomically.
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

// Writes `tensors` (in this order) into dir; bytes_of(spec) returns a tensor's bytes.
ShardedWriteReport write_safetensors_set(
    const std::string& dir, const std::vector<StSpec>& tensors,
    const std::function<std::vector<uint8_t>(const StSpec&)>& bytes_of,
    uint64_t max_shard_bytes = kDefaultMaxShardBytes,
    const std::map<std::string, std::string>& metadata = {{"format", "pt"}});

}  // namespace llmpi
