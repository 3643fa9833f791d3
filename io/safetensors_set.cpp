// Single and sharded safetensors directories; see safetensors_set.h.
#include "io/safetensors_set.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <set>
#include <string_view>

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
  std::vector<float> v = files_[it->second.first].read_f32(*it->second.second);
  size_t bad = 0, first = 0;
  for (size_t i = 0; i < v.size(); ++i)
    if (!std::isfinite(v[i]) && bad++ == 0) first = i;
  if (bad > 0)
    user_error(source(name), " holds ", bad, " NaN or infinite value", bad > 1 ? "s" : "", " (the first at flat index ",
               first, ": ", v[first], "); a model with such weights computes NaN, so llmpi refuses it");
  return v;
}

std::string SafetensorsSet::source(const std::string& name) const {
  const auto it = where_.find(name);
  const std::string file = it == where_.end() ? dir_ : files_[it->second.first].path();
  return file + ": tensor \"" + name + "\"";
}

bool is_safetensors_set_file(const std::string& name) {
  if (name == kSingle || name == kIndex) return true;
  // model-<digits>-of-<digits>.safetensors
  constexpr std::string_view kPrefix = "model-", kOf = "-of-", kSuffix = ".safetensors";
  const std::string_view n(name);
  if (!n.starts_with(kPrefix) || !n.ends_with(kSuffix)) return false;
  const std::string_view mid = n.substr(kPrefix.size(), n.size() - kPrefix.size() - kSuffix.size());
  const size_t of = mid.find(kOf);
  auto digits = [](std::string_view d) {
    return !d.empty() && d.find_first_not_of("0123456789") == std::string_view::npos;
  };
  return of != std::string_view::npos && digits(mid.substr(0, of)) &&
         digits(mid.substr(of + kOf.size()));
}

std::map<std::string, std::string> set_file_metadata(const std::string& path) {
  constexpr uintmax_t kMaxIndexBytes = uintmax_t{64} << 20;  // a real index is kilobytes
  std::error_code ec;
  if (!fs::is_regular_file(path, ec)) return {};
  try {
    if (fs::path(path).filename() != kIndex) return SafetensorsFile(path).header().metadata;
    if (fs::file_size(path, ec) > kMaxIndexBytes || ec) return {};
    const Json j = Json::parse(read_text_file(path), nullptr, /*allow_exceptions=*/false);
    std::map<std::string, std::string> out;
    if (j.is_object() && j.contains("metadata") && j["metadata"].is_object())
      for (const auto& [k, v] : j["metadata"].items())
        if (v.is_string()) out[k] = v.get<std::string>();
    return out;
  } catch (const UserError&) {
    return {};
  }
}

std::string SafetensorsLayout::describe() const {
  if (shards.size() == 1) return std::string("one ") + kSingle;
  return std::to_string(shards.size()) + " shards with " + kIndex;
}

SafetensorsLayout plan_safetensors_set(const std::vector<StSpec>& tensors,
                                       uint64_t max_shard_bytes) {
  SafetensorsLayout l;
  l.shards.emplace_back();
  uint64_t in_shard = 0;
  for (const StSpec& s : tensors) {
    int64_t n = 1;
    for (int64_t d : s.shape) n *= d;
    const uint64_t bytes = uint64_t(n * st_dtype_size(s.dtype));
    if (!l.shards.back().empty() && in_shard + bytes > max_shard_bytes) {
      l.shards.emplace_back();
      in_shard = 0;
    }
    l.shards.back().push_back(s);
    in_shard += bytes;
    l.total_bytes += bytes;
  }
  const size_t k = l.shards.size();
  for (size_t i = 0; i < k; ++i) {
    char name[64];
    std::snprintf(name, sizeof name, "model-%05zu-of-%05zu.safetensors", i + 1, k);
    l.files.push_back(k == 1 ? kSingle : name);
  }
  if (k > 1) l.files.push_back(kIndex);
  return l;
}

std::vector<std::string> stale_safetensors_files(const std::string& dir,
                                                 const SafetensorsLayout& layout) {
  const std::set<std::string> written(layout.files.begin(), layout.files.end());
  std::vector<std::string> stale;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    const std::string name = e.path().filename().string();
    if (is_safetensors_set_file(name) && !written.count(name)) stale.push_back(e.path().string());
  }
  std::sort(stale.begin(), stale.end());
  return stale;
}

ShardedWriteReport write_safetensors_set(
    const std::string& dir, const SafetensorsLayout& layout,
    const std::function<std::vector<uint8_t>(const StSpec&)>& bytes_of,
    const std::map<std::string, std::string>& metadata) {
  const fs::path d(dir);
  Json weight_map = Json::object();
  for (size_t k = 0; k < layout.shards.size(); ++k) {
    const std::string& file = layout.files[k];
    SafetensorsWriter w((d / file).string(), layout.shards[k], metadata);
    for (const StSpec& s : layout.shards[k]) {
      w.write(s.name, bytes_of(s));
      weight_map[s.name] = file;
    }
    w.commit();
  }
  if (layout.shards.size() > 1) {
    Json meta(metadata);
    meta["total_size"] = layout.total_bytes;
    const Json index = {{"metadata", meta}, {"weight_map", weight_map}};
    write_text_atomically((d / kIndex).string(), index.dump(2) + "\n");
  }
  // Only now, with the new set complete: a run cut short leaves the directory recognisably
  // the caller's (its files and nothing else), and a rerun finishes the job.
  for (const std::string& f : stale_safetensors_files(dir, layout)) {
    std::error_code ec;
    if (!fs::remove(f, ec) && ec) user_error(f, ": cannot remove this stale file: ", ec.message());
  }
  return {layout.files, layout.total_bytes};
}

ShardedWriteReport write_safetensors_set(
    const std::string& dir, const std::vector<StSpec>& tensors,
    const std::function<std::vector<uint8_t>(const StSpec&)>& bytes_of, uint64_t max_shard_bytes,
    const std::map<std::string, std::string>& metadata) {
  return write_safetensors_set(dir, plan_safetensors_set(tensors, max_shard_bytes), bytes_of,
                               metadata);
}

}  // namespace llmpi
