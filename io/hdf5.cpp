#include "io/hdf5.h"

#include <cstdio>
#include <cstdlib>
#include <filesystem>

#include "core/error.h"
#include "core/file_kind.h"
#include "io/hdf5_open_files.h"

namespace llmpi::h5 {

long open_file_count() { return long(H5Fget_obj_count(H5F_OBJ_ALL, H5F_OBJ_FILE)); }

void exit_if_files_left_open(int code) {
  if (open_file_count() == 0) return;
  std::fflush(nullptr);
  std::_Exit(code);
}

void silence_errors() { H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr); }

void check(herr_t status, const std::string& file, const std::string& what) {
  if (status < 0) user_error(file, ": HDF5 error while ", what);
}

hid_t check_id(hid_t id, const std::string& file, const std::string& what) {
  if (id < 0) user_error(file, ": HDF5 error while ", what);
  return id;
}

bool is_standard_number(hid_t type, H5T_class_t cls) {
  const H5T_class_t have = H5Tget_class(type);
  if (have != H5T_INTEGER && have != H5T_FLOAT) return false;
  if (cls != H5T_NO_CLASS && have != cls) return false;
  const hid_t standard[] = {
      H5T_STD_I8LE,  H5T_STD_I8BE,  H5T_STD_U8LE,  H5T_STD_U8BE,  H5T_STD_I16LE, H5T_STD_I16BE,
      H5T_STD_U16LE, H5T_STD_U16BE, H5T_STD_I32LE, H5T_STD_I32BE, H5T_STD_U32LE, H5T_STD_U32BE,
      H5T_STD_I64LE, H5T_STD_I64BE, H5T_STD_U64LE, H5T_STD_U64BE, H5T_IEEE_F32LE, H5T_IEEE_F32BE,
      H5T_IEEE_F64LE, H5T_IEEE_F64BE};
  for (hid_t s : standard)
    if (H5Tequal(type, s) > 0) return true;
  return false;
}

namespace {
// Every file is opened or created through here: the place to turn HDF5's own error printing
// off, so that any program using io/ (with or without a Runtime) prints only our messages.
Id file_access(MPI_Comm comm, const std::string& path) {
  silence_errors();
  Id fapl(check_id(H5Pcreate(H5P_FILE_ACCESS), path, "creating a file-access list"), H5Pclose);
  if (comm != MPI_COMM_NULL) {
    check(H5Pset_fapl_mpio(fapl, comm, MPI_INFO_NULL), path, "selecting MPI-IO");
    // Rank 0 alone writes metadata. With the default (distributed) strategy a rank whose
    // metadata write fails at close — a disk that filled up during the save — skips the
    // flush's closing barrier that the other ranks wait in, and the job hangs inside
    // H5Fclose; rank 0's failure is met alike by every rank (tests/unit/test_full_disk.cpp).
    H5AC_cache_config_t mdc{};
    mdc.version = H5AC__CURR_CACHE_CONFIG_VERSION;
    check(H5Pget_mdc_config(fapl, &mdc), path, "reading the metadata cache configuration");
    mdc.metadata_write_strategy = H5AC_METADATA_WRITE_STRATEGY__PROCESS_0_ONLY;
    check(H5Pset_mdc_config(fapl, &mdc), path, "choosing rank 0 to write metadata");
  }
  return fapl;
}
}  // namespace

Id create_file(const std::string& path, MPI_Comm comm, hsize_t userblock) {
  // H5F_ACC_TRUNC would write through a symbolic link at `path`: the link goes first.
  int rank = 0;
  if (comm != MPI_COMM_NULL) MPI_Comm_rank(comm, &rank);
  std::error_code ec;
  if (rank == 0 && std::filesystem::is_symlink(std::filesystem::symlink_status(path, ec)))
    std::filesystem::remove(path, ec);
  if (comm != MPI_COMM_NULL) MPI_Barrier(comm);
  Id fapl = file_access(comm, path);
  Id fcpl(check_id(H5Pcreate(H5P_FILE_CREATE), path, "creating a file-creation list"), H5Pclose);
  if (userblock > 0) check(H5Pset_userblock(fcpl, userblock), path, "reserving a user block");
  return Id(check_id(H5Fcreate(path.c_str(), H5F_ACC_TRUNC, fcpl, fapl), path,
                     "creating the file"),
            H5Fclose);
}

Id open_file(const std::string& path, MPI_Comm comm, bool writable) {
  require_regular_file(path, "an HDF5 file");  // before H5Fopen: a FIFO would block it
  Id fapl = file_access(comm, path);
  const hid_t f = H5Fopen(path.c_str(), writable ? H5F_ACC_RDWR : H5F_ACC_RDONLY, fapl);
  if (f < 0) user_error(path, ": cannot open as an HDF5 file (missing, unreadable or not HDF5)");
  return Id(f, H5Fclose);
}

Id create_group(hid_t parent, const std::string& name, const std::string& file) {
  return Id(check_id(H5Gcreate2(parent, name.c_str(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT),
                     file, "creating group '" + name + "'"),
            H5Gclose);
}

Id open_group(hid_t parent, const std::string& name, const std::string& file) {
  if (!exists(parent, name)) user_error(file, ": missing group '", name, "'");
  return Id(check_id(H5Gopen2(parent, name.c_str(), H5P_DEFAULT), file,
                     "opening group '" + name + "'"),
            H5Gclose);
}

bool exists(hid_t parent, const std::string& name) {
  return H5Lexists(parent, name.c_str(), H5P_DEFAULT) > 0;
}

namespace {
void write_attr_raw(hid_t obj, const std::string& name, hid_t mem_type, hid_t file_type,
                    const void* data, hsize_t n, const std::string& file) {
  if (H5Aexists(obj, name.c_str()) > 0) H5Adelete(obj, name.c_str());
  Id space(n == 0 ? H5Screate(H5S_SCALAR) : H5Screate_simple(1, &n, nullptr), H5Sclose);
  Id attr(check_id(H5Acreate2(obj, name.c_str(), file_type, space, H5P_DEFAULT, H5P_DEFAULT),
                   file, "creating attribute '" + name + "'"),
          H5Aclose);
  check(H5Awrite(attr, mem_type, data), file, "writing attribute '" + name + "'");
}

Id open_attr(hid_t obj, const std::string& name, const std::string& file) {
  if (H5Aexists(obj, name.c_str()) <= 0) user_error(file, ": missing attribute '", name, "'");
  return Id(check_id(H5Aopen(obj, name.c_str(), H5P_DEFAULT), file,
                     "opening attribute '" + name + "'"),
            H5Aclose);
}

// What a stored type is, for messages: "a string", "a float", "an integer", "a compound"...
std::string type_words(hid_t type) {
  switch (H5Tget_class(type)) {
    case H5T_INTEGER: return H5Tget_sign(type) == H5T_SGN_NONE ? "an unsigned integer" : "an integer";
    case H5T_FLOAT: return "a float";
    case H5T_STRING: return "a string";
    case H5T_COMPOUND: return "a compound";
    case H5T_ENUM: return "an enum (h5py writes a bool as one)";
    case H5T_ARRAY: return "an array type";
    default: return "a non-numeric type";
  }
}

// Opens a numeric attribute that should hold one value of class `cls` (H5T_NO_CLASS: integer
// or float); `expected` names it in messages ("an integer").
Id open_number_attr(hid_t obj, const std::string& name, H5T_class_t cls, const char* expected,
                    const std::string& file, Id& type) {
  Id attr = open_attr(obj, name, file);
  type = Id(H5Aget_type(attr), H5Tclose);
  if (!is_standard_number(type, cls))
    user_error(file, ": attribute '", name, "' should be ", expected, " (a standard HDF5 type), found ",
               type_words(type),
               (H5Tget_class(type) == H5T_INTEGER || H5Tget_class(type) == H5T_FLOAT) &&
                       !is_standard_number(type)
                   ? " of a non-standard size or layout"
                   : "");
  Id space(H5Aget_space(attr), H5Sclose);
  if (H5Sget_simple_extent_npoints(space) != 1)
    user_error(file, ": attribute '", name, "' should be a single value, found ",
               H5Sget_simple_extent_type(space) == H5S_NULL
                   ? std::string("an empty attribute")
                   : std::to_string(H5Sget_simple_extent_npoints(space)) + " values");
  return attr;
}

// An integer attribute of either signedness, as a sign flag and its magnitude bits: HDF5's
// conversions clamp out-of-range values (uint64 2^63 + 5 read as int64 becomes INT64_MAX)
// without a word, so each is read in its own signedness and range-checked by the caller.
struct StoredInt {
  bool is_signed = true;
  int64_t s = 0;
  uint64_t u = 0;
};
StoredInt read_stored_int(hid_t obj, const std::string& name, const std::string& file) {
  Id type;
  Id attr = open_number_attr(obj, name, H5T_INTEGER, "an integer", file, type);
  StoredInt v;
  v.is_signed = H5Tget_sign(type) != H5T_SGN_NONE;
  check(v.is_signed ? H5Aread(attr, H5T_NATIVE_INT64, &v.s) : H5Aread(attr, H5T_NATIVE_UINT64, &v.u),
        file, "reading attribute '" + name + "'");
  return v;
}
}  // namespace

void write_attr(hid_t obj, const std::string& name, const std::string& value,
                const std::string& file) {
  if (H5Aexists(obj, name.c_str()) > 0) H5Adelete(obj, name.c_str());
  Id type(H5Tcopy(H5T_C_S1), H5Tclose);
  H5Tset_size(type, value.empty() ? 1 : value.size());
  H5Tset_cset(type, H5T_CSET_UTF8);
  H5Tset_strpad(type, H5T_STR_NULLPAD);
  Id space(H5Screate(H5S_SCALAR), H5Sclose);
  Id attr(check_id(H5Acreate2(obj, name.c_str(), type, space, H5P_DEFAULT, H5P_DEFAULT), file,
                   "creating attribute '" + name + "'"),
          H5Aclose);
  const std::string padded = value.empty() ? std::string(1, '\0') : value;
  check(H5Awrite(attr, type, padded.data()), file, "writing attribute '" + name + "'");
}

void write_attr(hid_t obj, const std::string& name, int64_t value, const std::string& file) {
  write_attr_raw(obj, name, H5T_NATIVE_INT64, H5T_STD_I64LE, &value, 0, file);
}
void write_attr(hid_t obj, const std::string& name, uint64_t value, const std::string& file) {
  write_attr_raw(obj, name, H5T_NATIVE_UINT64, H5T_STD_U64LE, &value, 0, file);
}
void write_attr(hid_t obj, const std::string& name, double value, const std::string& file) {
  write_attr_raw(obj, name, H5T_NATIVE_DOUBLE, H5T_IEEE_F64LE, &value, 0, file);
}
void write_attr(hid_t obj, const std::string& name, const std::vector<int64_t>& value,
                const std::string& file) {
  if (value.empty()) {  // an empty list: a null dataspace, nothing to write
    if (H5Aexists(obj, name.c_str()) > 0) H5Adelete(obj, name.c_str());
    Id space(H5Screate(H5S_NULL), H5Sclose);
    Id attr(check_id(H5Acreate2(obj, name.c_str(), H5T_STD_I64LE, space, H5P_DEFAULT, H5P_DEFAULT),
                     file, "creating attribute '" + name + "'"),
            H5Aclose);
    return;
  }
  write_attr_raw(obj, name, H5T_NATIVE_INT64, H5T_STD_I64LE, value.data(), value.size(), file);
}

bool has_attr(hid_t obj, const std::string& name) { return H5Aexists(obj, name.c_str()) > 0; }

std::string read_attr_string(hid_t obj, const std::string& name, const std::string& file) {
  Id attr = open_attr(obj, name, file);
  Id type(H5Aget_type(attr), H5Tclose);
  if (H5Tget_class(type) != H5T_STRING)
    user_error(file, ": attribute '", name, "' should be a string, found ", type_words(type));
  Id space(H5Aget_space(attr), H5Sclose);
  if (H5Sget_simple_extent_npoints(space) != 1)
    user_error(file, ": attribute '", name, "' should be a single string");
  if (H5Tis_variable_str(type) > 0) {
    Id mem(H5Tcopy(H5T_C_S1), H5Tclose);
    H5Tset_size(mem, H5T_VARIABLE);
    // h5py writes a str as a variable-length UTF-8 string; HDF5 converts no string between
    // character sets, so the memory type takes the stored one.
    H5Tset_cset(mem, H5Tget_cset(type));
    char* s = nullptr;
    check(H5Aread(attr, mem, &s), file, "reading attribute '" + name + "'");
    std::string out = s ? s : "";
    H5free_memory(s);
    return out;
  }
  const size_t n = H5Tget_size(type);
  if (n == 0 || n > (size_t(1) << 30)) user_error(file, ": attribute '", name, "' has a bad size");
  std::string buf(n, '\0');
  check(H5Aread(attr, type, buf.data()), file, "reading attribute '" + name + "'");
  buf.resize(buf.find('\0') == std::string::npos ? n : buf.find('\0'));
  return buf;
}

int64_t read_attr_int(hid_t obj, const std::string& name, const std::string& file) {
  const StoredInt v = read_stored_int(obj, name, file);
  if (!v.is_signed && v.u > uint64_t(INT64_MAX))
    user_error(file, ": attribute '", name, "' = ", v.u, " is out of range (at most 2^63 - 1)");
  return v.is_signed ? v.s : int64_t(v.u);
}
uint64_t read_attr_uint(hid_t obj, const std::string& name, const std::string& file) {
  const StoredInt v = read_stored_int(obj, name, file);
  if (v.is_signed && v.s < 0)
    user_error(file, ": attribute '", name, "' = ", v.s, " is negative; expected an unsigned integer");
  return v.is_signed ? uint64_t(v.s) : v.u;
}
double read_attr_double(hid_t obj, const std::string& name, const std::string& file) {
  Id type;
  Id attr = open_number_attr(obj, name, H5T_NO_CLASS, "a number", file, type);
  double v = 0;
  check(H5Aread(attr, H5T_NATIVE_DOUBLE, &v), file, "reading attribute '" + name + "'");
  return v;
}

std::vector<int64_t> read_attr_ints(hid_t obj, const std::string& name,
                                    const std::string& file) {
  Id attr = open_attr(obj, name, file);
  Id type(H5Aget_type(attr), H5Tclose);
  if (!is_standard_number(type, H5T_INTEGER))
    user_error(file, ": attribute '", name, "' should be integers (standard HDF5), found ",
               type_words(type));
  Id space(H5Aget_space(attr), H5Sclose);
  const hssize_t n = H5Sget_simple_extent_npoints(space);
  if (n < 0 || n > (1 << 20)) user_error(file, ": attribute '", name, "' has a bad size");
  std::vector<int64_t> v(static_cast<size_t>(n));
  if (n == 0) return v;
  if (H5Tget_sign(type) == H5T_SGN_NONE) {  // read as stored: HDF5 would clamp past 2^63 - 1
    std::vector<uint64_t> u(v.size());
    check(H5Aread(attr, H5T_NATIVE_UINT64, u.data()), file, "reading attribute '" + name + "'");
    for (size_t i = 0; i < u.size(); ++i) {
      if (u[i] > uint64_t(INT64_MAX))
        user_error(file, ": attribute '", name, "' holds ", u[i], ", out of range (at most 2^63 - 1)");
      v[i] = int64_t(u[i]);
    }
    return v;
  }
  check(H5Aread(attr, H5T_NATIVE_INT64, v.data()), file, "reading attribute '" + name + "'");
  return v;
}

std::vector<std::string> list_names(hid_t group, const std::string& file) {
  H5G_info_t info;
  check(H5Gget_info(group, &info), file, "listing a group");
  std::vector<std::string> names;
  for (hsize_t i = 0; i < info.nlinks; ++i) {
    const ssize_t n = H5Lget_name_by_idx(group, ".", H5_INDEX_NAME, H5_ITER_INC, i, nullptr, 0,
                                         H5P_DEFAULT);
    if (n < 0) user_error(file, ": HDF5 error while listing a group");
    std::string s(static_cast<size_t>(n) + 1, '\0');
    H5Lget_name_by_idx(group, ".", H5_INDEX_NAME, H5_ITER_INC, i, s.data(), s.size(), H5P_DEFAULT);
    s.resize(static_cast<size_t>(n));
    names.push_back(std::move(s));
  }
  return names;
}

}  // namespace llmpi::h5
