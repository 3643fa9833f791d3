#pragma once
// Thin RAII over the HDF5 C API: every hid_t lives in an H5Id that closes it with the
// right H5*close on destruction, and every call is checked. Failures throw UserError
// naming the file (a missing, unreadable or malformed file is bad input, not a bug).
// Automatic HDF5 error-stack printing is turned off when a file is opened or created (our
// messages replace it).
#include <hdf5.h>
#include <mpi.h>

#include <cstdint>
#include <string>
#include <vector>

namespace llmpi::h5 {

class Id {
 public:
  using Closer = herr_t (*)(hid_t);
  Id() = default;
  Id(hid_t id, Closer close) : id_(id), close_(close) {}
  Id(const Id&) = delete;
  Id& operator=(const Id&) = delete;
  Id(Id&& o) noexcept : id_(o.id_), close_(o.close_) { o.id_ = H5I_INVALID_HID; }
  Id& operator=(Id&& o) noexcept {
    if (this != &o) {
      reset();
      id_ = o.id_;
      close_ = o.close_;
      o.id_ = H5I_INVALID_HID;
    }
    return *this;
  }
  ~Id() { reset(); }
  void reset() {
    if (id_ >= 0 && close_) close_(id_);
    id_ = H5I_INVALID_HID;
  }
  hid_t get() const { return id_; }
  operator hid_t() const { return id_; }
  bool valid() const { return id_ >= 0; }

 private:
  hid_t id_ = H5I_INVALID_HID;
  Closer close_ = nullptr;
};

// Turn off HDF5's automatic error printing (process-wide library setting); create_file and
// open_file call it, so callers need not.
void silence_errors();

// Throws UserError("<file>: <what>") when status < 0.
void check(herr_t status, const std::string& file, const std::string& what);
hid_t check_id(hid_t id, const std::string& file, const std::string& what);

// Open/create. With comm != MPI_COMM_NULL the file uses MPI-IO and calls are collective
// over comm; with MPI_COMM_NULL it is opened serially by this process alone.
// userblock > 0 (a power of two >= 512) reserves that many bytes at the start of the file for
// the caller (HDF5 tools skip it); checkpoints keep their integrity header there.
Id create_file(const std::string& path, MPI_Comm comm, hsize_t userblock = 0);
Id open_file(const std::string& path, MPI_Comm comm, bool writable = false);
Id create_group(hid_t parent, const std::string& name, const std::string& file);
Id open_group(hid_t parent, const std::string& name, const std::string& file);
bool exists(hid_t parent, const std::string& name);

// The stored type `type` of an attribute or dataset, as read from a file, is one of HDF5's
// standard numbers: a 1/2/4/8-byte integer or a 4/8-byte IEEE float, either byte order, every
// bit used. HDF5 converts any well-formed numeric type, but trusts a damaged one's precision
// and offset and reads outside its buffer; every numeric read of a file's value checks this
// first. `cls` narrows it to integers or floats (H5T_NO_CLASS: either).
bool is_standard_number(hid_t type, H5T_class_t cls = H5T_NO_CLASS);

// Attributes on any object.
void write_attr(hid_t obj, const std::string& name, const std::string& value, const std::string& file);
void write_attr(hid_t obj, const std::string& name, int64_t value, const std::string& file);
void write_attr(hid_t obj, const std::string& name, uint64_t value, const std::string& file);
void write_attr(hid_t obj, const std::string& name, double value, const std::string& file);
void write_attr(hid_t obj, const std::string& name, const std::vector<int64_t>& value,
                const std::string& file);
bool has_attr(hid_t obj, const std::string& name);
std::string read_attr_string(hid_t obj, const std::string& name, const std::string& file);
int64_t read_attr_int(hid_t obj, const std::string& name, const std::string& file);
uint64_t read_attr_uint(hid_t obj, const std::string& name, const std::string& file);
double read_attr_double(hid_t obj, const std::string& name, const std::string& file);
std::vector<int64_t> read_attr_ints(hid_t obj, const std::string& name, const std::string& file);

// Names of the links (datasets, groups) directly under a group, in name order.
std::vector<std::string> list_names(hid_t group, const std::string& file);

}  // namespace llmpi::h5
