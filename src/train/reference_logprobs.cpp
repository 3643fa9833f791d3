// The reference log-probability cache file (reference_logprobs.h).
#include "train/reference_logprobs.h"

#include <cstdio>
#include <filesystem>

#include "core/error.h"
#include "io/hdf5.h"

namespace llmpi {

namespace fs = std::filesystem;

namespace {

constexpr int64_t kFormatVersion = 1;

std::string hex(uint64_t v) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "0x%016llx", static_cast<unsigned long long>(v));
  return buf;
}

void write_split(hid_t file, const ReferenceSplit& s, const std::string& path) {
  LLMPI_CHECK(int64_t(s.logprobs.size()) == 2 * s.key.pairs, s.logprobs.size(),
              " reference values for ", s.key.pairs, " pairs");
  h5::Id g = h5::create_group(file, s.name, path);
  const hsize_t dims[2] = {hsize_t(s.key.pairs), 2};
  h5::Id space(h5::check_id(H5Screate_simple(2, dims, nullptr), path, "H5Screate_simple"), H5Sclose);
  h5::Id set(h5::check_id(H5Dcreate2(g, "logprobs", H5T_IEEE_F64LE, space, H5P_DEFAULT,
                                     H5P_DEFAULT, H5P_DEFAULT),
                          path, "create " + s.name + "/logprobs"),
             H5Dclose);
  if (s.key.pairs > 0)
    h5::check(H5Dwrite(set, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, s.logprobs.data()),
              path, "write " + s.name + "/logprobs");
  h5::write_attr(g, "data_hash", s.key.data_hash, path);
  h5::write_attr(g, "tokens", s.key.tokens, path);
  h5::write_attr(g, "pairs", s.key.pairs, path);
}

// The split's sums, or "" replaced by the reason it cannot be used.
std::vector<double> read_split(hid_t file, const ReferenceSplit& want, const std::string& path,
                               std::string& why) {
  if (!h5::exists(file, want.name)) {
    why = "no group /" + want.name;
    return {};
  }
  h5::Id g = h5::open_group(file, want.name, path);
  const uint64_t hash = h5::read_attr_uint(g, "data_hash", path);
  const int64_t tokens = h5::read_attr_int(g, "tokens", path);
  const int64_t pairs = h5::read_attr_int(g, "pairs", path);
  if (hash != want.key.data_hash || tokens != want.key.tokens || pairs != want.key.pairs) {
    why = want.name + " data: the cache is of " + std::to_string(pairs) + " pairs, " +
          std::to_string(tokens) + " tokens, hash " + hex(hash) + "; the run's data has " +
          std::to_string(want.key.pairs) + " pairs, " + std::to_string(want.key.tokens) +
          " tokens, hash " + hex(want.key.data_hash);
    return {};
  }
  h5::Id set(h5::check_id(H5Dopen2(g, "logprobs", H5P_DEFAULT), path, want.name + "/logprobs"),
             H5Dclose);
  h5::Id space(h5::check_id(H5Dget_space(set), path, "H5Dget_space"), H5Sclose);
  hsize_t dims[2] = {0, 0};
  if (H5Sget_simple_extent_ndims(space) != 2 ||
      H5Sget_simple_extent_dims(space, dims, nullptr) != 2 || dims[0] != hsize_t(pairs) ||
      dims[1] != 2) {
    why = want.name + "/logprobs is not of shape [" + std::to_string(pairs) + ", 2]";
    return {};
  }
  std::vector<double> v(size_t(2 * pairs));
  if (pairs > 0)
    h5::check(H5Dread(set, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, v.data()), path,
              "read " + want.name + "/logprobs");
  return v;
}

}  // namespace

std::string reference_cache_path(const std::string& run_dir) {
  return (fs::path(run_dir) / "reference_logprobs.h5").string();
}

void write_reference_cache(const std::string& path, const std::vector<ReferenceSplit>& splits) {
  LLMPI_CHECK(!splits.empty(), "a reference cache without splits");
  const std::string tmp = path + ".tmp";
  {
    h5::Id f = h5::create_file(tmp, MPI_COMM_NULL);
    h5::write_attr(f, "format_version", kFormatVersion, tmp);
    h5::write_attr(f, "reference", splits.front().key.reference, tmp);
    h5::write_attr(f, "model", splits.front().key.model, tmp);
    for (const ReferenceSplit& s : splits) write_split(f, s, tmp);
  }
  std::error_code ec;
  fs::rename(tmp, path, ec);
  if (ec) user_error(path, ": cannot write the reference log-prob cache: ", ec.message());
}

std::optional<std::vector<ReferenceSplit>> read_reference_cache(
    const std::string& path, const std::vector<ReferenceSplit>& wanted, std::string& why) {
  if (!fs::exists(path)) {
    why = "no cache file";
    return std::nullopt;
  }
  try {
    h5::Id f = h5::open_file(path, MPI_COMM_NULL);
    const int64_t version = h5::read_attr_int(f, "format_version", path);
    if (version != kFormatVersion) {
      why = "format_version " + std::to_string(version) + ", expected " + std::to_string(kFormatVersion);
      return std::nullopt;
    }
    const std::string ref = h5::read_attr_string(f, "reference", path);
    const std::string model = h5::read_attr_string(f, "model", path);
    const ReferenceKey& k = wanted.front().key;
    if (ref != k.reference) {
      why = "its reference model is \"" + ref + "\", this run's is \"" + k.reference + "\"";
      return std::nullopt;
    }
    if (model != k.model) {
      why = "it was computed for another [model] shape";
      return std::nullopt;
    }
    std::vector<ReferenceSplit> out = wanted;
    for (ReferenceSplit& s : out) {
      s.logprobs = read_split(f, s, path, why);
      if (!why.empty()) return std::nullopt;
    }
    return out;
  } catch (const UserError& e) {
    why = std::string("unreadable: ") + e.what();
    return std::nullopt;
  }
}

}  // namespace llmpi
