#pragma once
// The HDF5 tables of logbook.h5 (io/logbook_file.h), shared by its writer (logbook_file.cpp)
// and its reader (logbook_read.cpp): extendible chunked datasets appended row by row, read
// back whole, and the journal's columns. Internal to io/.
#include <hdf5.h>

#include <string>
#include <vector>

#include "core/error.h"
#include "io/hdf5.h"
#include "io/logbook_schema.h"

namespace llmpi::logbook_h5 {

// Widths of the journal's fixed-length strings; rows per chunk of each table.
inline constexpr size_t kTypeLen = 32, kHostLen = 64;
inline constexpr hsize_t kRowChunk = 1024, kLayerChunk = 16, kEventChunk = 64, kTextChunk = 4096;
// Reading: metadata read attempts of a SWMR reader (file_access); a table whose declared size
// exceeds kTableExpansion x the file's size (and kMinTableLimit) has damaged dimensions: the
// writer neither compresses nor leaves holes, so its tables are at most the file's size.
inline constexpr unsigned kMetadataReadAttempts = 4;
inline constexpr long double kTableExpansion = 64, kMinTableLimit = 64.0L * 1024 * 1024;

// The journal's scalar columns (int64 unless noted), in file order.
struct JournalColumn {
  const char* name;
  bool is_double;
};
inline constexpr JournalColumn kJournalColumns[] = {
    {"time_unix", true}, {"step", false},           {"segment", false},
    {"rank", false},     {"details_offset", false}, {"details_length", false}};

// A UTF-8, null-padded string type of n bytes.
h5::Id fixed_string_type(size_t n);
// File access for SWMR: the 1.10 file format (h5py with HDF5 >= 1.10 reads it).
h5::Id file_access();
// The stored type of a step field's column: int64 or float64.
hid_t step_type(const StepField& f);

// ---- writing ----------------------------------------------------------------------------
// An extendible dataset: `cols` = 0 for [n], else [n, cols]; chunked along rows.
h5::Id create_table(hid_t parent, const char* name, hid_t type, hsize_t cols, hsize_t chunk_rows,
                    const std::string& file);
// Appends `rows` rows (each `cols` wide, or scalars when cols = 0) to a table.
void append_rows(hid_t dset, hid_t mem_type, const void* data, hsize_t rows, hsize_t cols,
                 const std::string& file);
// Strings as rows of `len` bytes, null-padded (longer ones cut), and the longest length (>= 1).
std::vector<char> pack_strings(const std::vector<std::string>& v, size_t len);
size_t max_length(const std::vector<std::string>& v);

// ---- reading (UserError naming the file for what is missing or malformed) ----------------
h5::Id open_dataset(hid_t parent, const std::string& name, const std::string& file);
// A dataset read back as numbers: its stored type must be a standard one (h5::is_standard_number).
h5::Id open_number_dataset(hid_t parent, const std::string& name, const std::string& file);
// The rows of a [n] or [n, cols] table (cols, when given: 0 for [n]); 0 for any other rank.
hsize_t table_rows(hid_t dset, hsize_t* cols = nullptr);
// table_rows for reading the whole table into memory, `elem_bytes` a value: UserError naming
// the dataset when it is not [n] or [n, k], or its declared size is beyond what the file can
// hold (kTableExpansion).
hsize_t readable_rows(hid_t dset, const std::string& name, size_t elem_bytes, const std::string& file,
                      hsize_t* cols = nullptr);
// `s` with every invalid UTF-8 sequence replaced by U+FFFD (strings read from a file that
// another tool wrote go on to JSON exports, which need valid UTF-8).
std::string valid_utf8(const std::string& s);
// A whole table of fixed-length strings of `len` bytes.
std::vector<std::string> read_strings(hid_t parent, const std::string& name, size_t len,
                                      const std::string& file);
// Reads a whole 1-D table as `T` (the library converts the stored type).
template <class T>
std::vector<T> read_column(hid_t parent, const std::string& name, hid_t mem_type,
                           const std::string& file) {
  h5::Id d = open_number_dataset(parent, name, file);
  hsize_t cols = 0;
  const hsize_t n = readable_rows(d, name, sizeof(T), file, &cols);
  if (cols != 0) user_error(file, ": dataset '", name, "' should be one-dimensional");
  std::vector<T> v(n);
  if (n) h5::check(H5Dread(d, mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, v.data()), file, "reading " + name);
  return v;
}

}  // namespace llmpi::logbook_h5
