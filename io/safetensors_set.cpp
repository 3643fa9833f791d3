// Single and sharded safetensors directories; see safetensors_set.h.
#include "io/safetensors_set.h"

#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <set>

#include "core/error.h"
#include "core/text_file.h"

namespace llmpi {

namespace fs = std::filesystem;
using Json = nlohmann::json;

namespace {

constexpr const char* kSingle = "model.safetensors";
constexpr const char* kIndex = "model.safetensors.index.json";

bool plain_file_name(const std::string& s) {
  return !s.empty() && s.find('/') == std::string::npos && s.find('\\') == std::string::npos &&
         s != "." && s != "..";
}

}  // namespace

SafetensorsSet::SafetensorsSet(const std::string& dir) : dir_(dir) {
  const fs::path d(dir);
  std::error_code ec;
  if (!fs::is_directory(d, ec)) user_error(dir, ": not a directory");
  if (fs::exists(d / kSingle)) {
    files_.emplace_back((d / kSingle).string());
    for (const StEntry& e : files_[0].header().tensors) where_[e.name] = {0, &e};
    return;
  }
  const std::string index = (d / kIndex).string();
  if (!fs::exists(index))
    user_error(dir, ": no ", kSingle, " and no ", kIndex, " (not a Hugging Face model directory?)");
  Json j;
  try {
    j = Json::parse(read_text_file(index));
  } catch (const Json::exception& e) {
    user_error(index, ": not valid JSON: ", e.what());
  }
  if (!j.is_object() || !j.contains("weight_map") || !j["weight_map"].is_object())
    user_error(index, ": weight_map: expected an object {tensor: shard file}");
  std::map<std::string, size_t> shard_of_file;
  std::map<std::string, std::string> wanted;  // tensor → shard file
  for (const auto& [tensor, file] : j["weight_map"].items()) {
    if (!file.is_string() || !plain_file_name(file.get<std::string>()))
      user_error(index, ": weight_map: tensor \"", tensor, "\" names ", file.dump(),
                 ", expected a file name in this directory");
    wanted[tensor] = file.get<std::string>();
    shard_of_file.emplace(file.get<std::string>(), 0);
  }
  for (auto& [file, slot] : shard_of_file) {
    slot = files_.size();
    files_.emplace_back((d / file).string());
  }
  for (size_t s = 0; s < files_.size(); ++s)
    for (const StEntry& e : files_[s].header().tensors) {
      const auto w = wanted.find(e.name);
      if (w == wanted.end())
        user_error(files_[s].path(), ": tensor \"", e.name, "\" is not in ", index);
      if (shard_of_file[w->second] != s)
        user_error(files_[s].path(), ": tensor \"", e.name, "\" is here, but ", index,
                   " places it in ", w->second);
      if (!where_.emplace(e.name, std::make_pair(s, &e)).second)
        user_error(files_[s].path(), ": tensor \"", e.name, "\" is in two shards");
    }
  for (const auto& [tensor, file] : wanted)
    if (!where_.count(tensor))
      user_error(index, ": tensor \"", tensor, "\" is missing from ", file);
}

std::vector<std::string> SafetensorsSet::names() const {
  std::vector<std::string> out;
  for (const auto& [n, _] : where_) out.push_back(n);
  return out;
}

const StEntry& SafetensorsSet::entry(const std::string& name) const {
  const auto it = where_.find(name);
  if (it == where_.end()) user_error(dir_, ": tensor \"", name, "\" is missing");
  return *it->second.second;
}

std::vector<float> SafetensorsSet::read_f32(const std::string& name) const {
  const auto it = where_.find(name);
  if (it == where_.end()) user_error(dir_, ": tensor \"", name, "\" is missing");
  return files_[it->second.first].read_f32(*it->second.second);
}

std::string SafetensorsSet::source(const std::string& name) const {
  const auto it = where_.find(name);
  const std::string file = it == where_.end() ? dir_ : files_[it->second.first].path();
  return file + ": tensor \"" + name + "\"";
}

ShardedWriteReport write_safetensors_set(
    const std::string& dir, const std::vector<StSpec>& tensors,
    const std::function<std::vector<uint8_t>(const StSpec&)>& bytes_of, uint64_t max_shard_bytes,
    const std::map<std::string, std::string>& metadata) {
  // Greedy split in order: a shard closes when the next tensor would pass the limit.
  std::vector<std::vector<StSpec>> shards(1);
  uint64_t in_shard = 0, total = 0;
  for (const StSpec& s : tensors) {
    int64_t n = 1;
    for (int64_t d : s.shape) n *= d;
    const uint64_t bytes = uint64_t(n * st_dtype_size(s.dtype));
    if (!shards.back().empty() && in_shard + bytes > max_shard_bytes) {
      shards.emplace_back();
      in_shard = 0;
    }
    shards.back().push_back(s);
    in_shard += bytes;
    total += bytes;
  }
  ShardedWriteReport rep;
  rep.total_bytes = total;
  const fs::path d(dir);
  // Remove what a previous export may have left (the other layout's files).
  std::error_code ec;
  fs::remove(d / kSingle, ec);
  fs::remove(d / kIndex, ec);
  for (const auto& e : fs::directory_iterator(d, ec)) {
    const std::string f = e.path().filename().string();
    if (f.rfind("model-", 0) == 0 && e.path().extension() == ".safetensors") fs::remove(e.path(), ec);
  }
  Json weight_map = Json::object();
  for (size_t k = 0; k < shards.size(); ++k) {
    char name[64];
    std::snprintf(name, sizeof name, "model-%05zu-of-%05zu.safetensors", k + 1, shards.size());
    const std::string file = shards.size() == 1 ? kSingle : name;
    SafetensorsWriter w((d / file).string(), shards[k], metadata);
    for (const StSpec& s : shards[k]) {
      w.write(s.name, bytes_of(s));
      weight_map[s.name] = file;
    }
    w.commit();
    rep.files.push_back(file);
  }
  if (shards.size() > 1) {
    const Json index = {{"metadata", {{"total_size", total}}}, {"weight_map", weight_map}};
    write_text_atomically((d / kIndex).string(), index.dump(2) + "\n");
    rep.files.push_back(kIndex);
  }
  return rep;
}

}  // namespace llmpi
