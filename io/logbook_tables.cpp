// The HDF5 tables of logbook.h5 (see logbook_tables.h).
#include "io/logbook_tables.h"

#include <algorithm>
#include <cstring>
#include <nlohmann/json.hpp>

namespace llmpi::logbook_h5 {

h5::Id fixed_string_type(size_t n) {
  h5::Id t(H5Tcopy(H5T_C_S1), H5Tclose);
  H5Tset_size(t, n);
  H5Tset_strpad(t, H5T_STR_NULLPAD);
  H5Tset_cset(t, H5T_CSET_UTF8);
  return t;
}

h5::Id file_access() {
  h5::silence_errors();  // as io/hdf5.cpp's file_access: our messages only, no HDF5 stack
  h5::Id fapl(H5Pcreate(H5P_FILE_ACCESS), H5Pclose);
  // SWMR needs the 1.10 file format; h5py (HDF5 >= 1.10) reads it.
  H5Pset_libver_bounds(fapl, H5F_LIBVER_LATEST, H5F_LIBVER_LATEST);
  // A SWMR reader retries a metadata block whose checksum fails (the writer may be mid-write),
  // by default 100 times with a doubling sleep: on a damaged file that is a hang of hours.
  // A few attempts cover a live writer (its metadata writes are ordered and short).
  H5Pset_metadata_read_attempts(fapl, kMetadataReadAttempts);
  return fapl;
}

h5::Id create_table(hid_t parent, const char* name, hid_t type, hsize_t cols, hsize_t chunk_rows,
                    const std::string& file) {
  const int rank = cols ? 2 : 1;
  const hsize_t dims[2] = {0, cols}, maxdims[2] = {H5S_UNLIMITED, cols};
  const hsize_t chunk[2] = {chunk_rows, std::max<hsize_t>(cols, 1)};
  h5::Id space(H5Screate_simple(rank, dims, maxdims), H5Sclose);
  h5::Id dcpl(H5Pcreate(H5P_DATASET_CREATE), H5Pclose);
  h5::check(H5Pset_chunk(dcpl, rank, chunk), file, std::string("chunking ") + name);
  return h5::Id(h5::check_id(H5Dcreate2(parent, name, type, space, H5P_DEFAULT, dcpl, H5P_DEFAULT),
                             file, std::string("creating dataset ") + name),
                H5Dclose);
}

h5::Id open_dataset(hid_t parent, const std::string& name, const std::string& file) {
  if (!h5::exists(parent, name)) user_error(file, ": missing dataset '", name, "'");
  return h5::Id(h5::check_id(H5Dopen2(parent, name.c_str(), H5P_DEFAULT), file,
                             "opening dataset " + name),
                H5Dclose);
}

h5::Id open_number_dataset(hid_t parent, const std::string& name, const std::string& file) {
  h5::Id d = open_dataset(parent, name, file);
  h5::Id type(h5::check_id(H5Dget_type(d), file, "reading the type of " + name), H5Tclose);
  if (!h5::is_standard_number(type))
    user_error(file, ": dataset '", name, "' should hold standard integers or floats");
  return d;
}

void append_rows(hid_t dset, hid_t mem_type, const void* data, hsize_t rows, hsize_t cols,
                 const std::string& file) {
  if (rows == 0) return;
  h5::Id space(H5Dget_space(dset), H5Sclose);
  hsize_t dims[2] = {0, 0};
  H5Sget_simple_extent_dims(space, dims, nullptr);
  const hsize_t start[2] = {dims[0], 0}, count[2] = {rows, cols};
  const hsize_t new_dims[2] = {dims[0] + rows, cols};
  h5::check(H5Dset_extent(dset, new_dims), file, "extending a table");
  h5::Id fspace(H5Dget_space(dset), H5Sclose);
  const int rank = cols ? 2 : 1;
  h5::check(H5Sselect_hyperslab(fspace, H5S_SELECT_SET, start, nullptr, count, nullptr), file,
            "selecting rows");
  h5::Id mspace(H5Screate_simple(rank, count, nullptr), H5Sclose);
  h5::check(H5Dwrite(dset, mem_type, mspace, fspace, H5P_DEFAULT, data), file, "appending rows");
}

hsize_t table_rows(hid_t dset, hsize_t* cols) {
  h5::Id space(H5Dget_space(dset), H5Sclose);
  hsize_t dims[2] = {0, 0};
  const int rank = H5Sget_simple_extent_ndims(space);
  if (rank < 1 || rank > 2) return 0;
  H5Sget_simple_extent_dims(space, dims, nullptr);
  if (cols) *cols = rank == 2 ? dims[1] : 0;
  return dims[0];
}

hsize_t readable_rows(hid_t dset, const std::string& name, size_t elem_bytes, const std::string& file,
                      hsize_t* cols) {
  {
    h5::Id space(H5Dget_space(dset), H5Sclose);
    const int rank = H5Sget_simple_extent_ndims(space);
    if (rank < 1 || rank > 2)  // table_rows says 0 rows: the table would read as empty
      user_error(file, ": dataset '", name, "' has ", rank, " dimensions, expected a table ([n] or [n, k])");
  }
  hsize_t c = 0;
  const hsize_t rows = table_rows(dset, &c);
  if (cols) *cols = c;
  hsize_t file_size = 0;
  {
    h5::Id fid(H5Iget_file_id(dset), H5Fclose);
    if (!fid.valid() || H5Fget_filesize(fid, &file_size) < 0) file_size = 0;
  }
  const long double bytes = static_cast<long double>(rows) * std::max<hsize_t>(c, 1) * elem_bytes;
  const long double limit =
      std::max<long double>(kMinTableLimit, static_cast<long double>(file_size) * kTableExpansion);
  if (bytes > limit)
    user_error(file, ": dataset '", name, "' declares ", rows, c ? " x " + std::to_string(c) : std::string(),
               " values (", static_cast<double>(bytes), " bytes) in a file of ", file_size,
               " bytes; its dimensions are damaged (expected at most ", kTableExpansion,
               " x the file's size)");
  return rows;
}

std::string valid_utf8(const std::string& s) {
  // nlohmann's dump with `replace` substitutes U+FFFD for each invalid byte sequence.
  const std::string quoted =
      nlohmann::json(s).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  return nlohmann::json::parse(quoted).get<std::string>();
}

std::vector<std::string> read_strings(hid_t parent, const std::string& name, size_t len,
                                      const std::string& file) {
  h5::Id d = open_dataset(parent, name, file);
  const hsize_t n = readable_rows(d, name, len, file);
  h5::Id type = fixed_string_type(len);
  std::vector<char> buf(n * len);
  if (n) h5::check(H5Dread(d, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf.data()), file, "reading " + name);
  std::vector<std::string> out(n);
  for (hsize_t i = 0; i < n; ++i) {
    const char* s = buf.data() + i * len;
    out[i] = valid_utf8(std::string(s, strnlen(s, len)));
  }
  return out;
}

std::vector<char> pack_strings(const std::vector<std::string>& v, size_t len) {
  std::vector<char> buf(v.size() * len, '\0');
  for (size_t i = 0; i < v.size(); ++i) std::memcpy(buf.data() + i * len, v[i].data(), std::min(len, v[i].size()));
  return buf;
}

size_t max_length(const std::vector<std::string>& v) {
  size_t n = 1;
  for (const auto& s : v) n = std::max(n, s.size());
  return n;
}

hid_t step_type(const StepField& f) {
  return std::holds_alternative<int64_t StepMetrics::*>(f.member) ? H5T_NATIVE_INT64
                                                                   : H5T_NATIVE_DOUBLE;
}

}  // namespace llmpi::logbook_h5
