#include "io/logbook_file.h"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <filesystem>

#include "core/error.h"
#include "core/version.h"
#include "io/hdf5.h"

namespace llmpi {

namespace {

constexpr size_t kTypeLen = 32, kHostLen = 64;
constexpr hsize_t kRowChunk = 1024, kLayerChunk = 16, kEventChunk = 64, kTextChunk = 4096;

// The journal's scalar columns (int64 unless noted), in file order.
struct JournalColumn {
  const char* name;
  bool is_double;
};
const JournalColumn kJournalColumns[] = {{"time_unix", true}, {"step", false},
                                         {"segment", false},  {"rank", false},
                                         {"details_offset", false}, {"details_length", false}};

h5::Id fixed_string_type(size_t n) {
  h5::Id t(H5Tcopy(H5T_C_S1), H5Tclose);
  H5Tset_size(t, n);
  H5Tset_strpad(t, H5T_STR_NULLPAD);
  H5Tset_cset(t, H5T_CSET_UTF8);
  return t;
}

h5::Id file_access() {
  h5::Id fapl(H5Pcreate(H5P_FILE_ACCESS), H5Pclose);
  // SWMR needs the 1.10 file format; h5py (HDF5 >= 1.10) reads it.
  H5Pset_libver_bounds(fapl, H5F_LIBVER_LATEST, H5F_LIBVER_LATEST);
  return fapl;
}

// An extendible dataset: `cols` = 0 for [n], else [n, cols]; chunked along rows.
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

// A dataset read back as numbers: its stored type must be a standard one (h5::is_standard_number).
h5::Id open_number_dataset(hid_t parent, const std::string& name, const std::string& file) {
  h5::Id d = open_dataset(parent, name, file);
  h5::Id type(h5::check_id(H5Dget_type(d), file, "reading the type of " + name), H5Tclose);
  if (!h5::is_standard_number(type))
    user_error(file, ": dataset '", name, "' should hold standard integers or floats");
  return d;
}

// Appends `rows` rows (each `cols` wide, or scalars when cols = 0) to a table.
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

hsize_t table_rows(hid_t dset, hsize_t* cols = nullptr) {
  h5::Id space(H5Dget_space(dset), H5Sclose);
  hsize_t dims[2] = {0, 0};
  const int rank = H5Sget_simple_extent_ndims(space);
  if (rank < 1 || rank > 2) return 0;
  H5Sget_simple_extent_dims(space, dims, nullptr);
  if (cols) *cols = rank == 2 ? dims[1] : 0;
  return dims[0];
}

// Reads a whole 1-D table as `T` (the library converts the stored type).
template <class T>
std::vector<T> read_column(hid_t parent, const std::string& name, hid_t mem_type,
                           const std::string& file) {
  h5::Id d = open_number_dataset(parent, name, file);
  hsize_t cols = 0;
  const hsize_t n = table_rows(d, &cols);
  if (cols != 0) user_error(file, ": dataset '", name, "' should be one-dimensional");
  std::vector<T> v(n);
  if (n) h5::check(H5Dread(d, mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, v.data()), file, "reading " + name);
  return v;
}

std::vector<std::string> read_strings(hid_t parent, const std::string& name, size_t len,
                                      const std::string& file) {
  h5::Id d = open_dataset(parent, name, file);
  const hsize_t n = table_rows(d);
  h5::Id type = fixed_string_type(len);
  std::vector<char> buf(n * len);
  if (n) h5::check(H5Dread(d, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf.data()), file, "reading " + name);
  std::vector<std::string> out(n);
  for (hsize_t i = 0; i < n; ++i) {
    const char* s = buf.data() + i * len;
    out[i].assign(s, strnlen(s, len));
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

}  // namespace

struct LogbookFile::Impl {
  std::string path;
  LogbookSchema schema;
  h5::Id file;
  std::vector<h5::Id> steps;  // one per step field
  h5::Id layer_step, layer_segment;
  std::vector<h5::Id> layers;  // one per layer stat field
  std::vector<h5::Id> journal;  // kJournalColumns
  h5::Id journal_type, journal_host, journal_details;
  int64_t details_bytes = 0;

  void open_all() {
    const std::string& f = path;
    h5::Id g = h5::open_group(file, "steps", f);
    steps.clear();
    for (const StepField& sf : step_fields()) steps.push_back(open_dataset(g, std::string(sf.name), f));
    h5::Id l = h5::open_group(file, "layers", f);
    layer_step = open_dataset(l, "step", f);
    layer_segment = open_dataset(l, "segment", f);
    layers.clear();
    for (const LayerStatField& lf : layer_stat_fields()) layers.push_back(open_dataset(l, std::string(lf.name), f));
    h5::Id j = h5::open_group(file, "journal", f);
    journal.clear();
    for (const JournalColumn& c : kJournalColumns) journal.push_back(open_dataset(j, c.name, f));
    journal_type = open_dataset(j, "type", f);
    journal_host = open_dataset(j, "host", f);
    journal_details = open_dataset(j, "details", f);
    details_bytes = int64_t(table_rows(journal_details));
  }
};

LogbookFile::LogbookFile(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
LogbookFile::LogbookFile(LogbookFile&&) noexcept = default;
LogbookFile& LogbookFile::operator=(LogbookFile&&) noexcept = default;
LogbookFile::~LogbookFile() = default;  // handles close datasets, then the file
const std::string& LogbookFile::path() const { return impl_->path; }

LogbookFile LogbookFile::create(const std::string& path, const LogbookSchema& schema,
                                const LogbookContents* initial) {
  LLMPI_CHECK(!schema.params.empty() && schema.blocks >= 1, "a logbook schema needs parameters and blocks");
  const std::string building = path + ".new";
  {
    auto impl = std::make_unique<Impl>();
    impl->path = building;
    impl->schema = schema;
    h5::Id fapl = file_access();
    impl->file = h5::Id(h5::check_id(H5Fcreate(building.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, fapl),
                                     building, "creating the logbook"),
                        H5Fclose);
    create_structure(*impl);
    LogbookFile f(std::move(impl));
    if (initial) {
      f.append_steps(initial->steps);
      f.append_layers(initial->layers);
      f.append_events(initial->events);
    }
  }  // closed cleanly
  std::error_code ec;
  std::filesystem::rename(building, path, ec);
  if (ec) user_error(building, ": cannot be renamed to ", path, ": ", ec.message());
  return open_append(path, schema);
}

void LogbookFile::create_structure(Impl& impl) {
  const LogbookSchema& schema = impl.schema;
  const std::string& f = impl.path;
  hid_t root = impl.file;
  h5::write_attr(root, "format", std::string("llmpi-logbook"), f);
  h5::write_attr(root, "format_version", kLogbookFormatVersion, f);
  h5::write_attr(root, "llmpi_version", std::string(kVersion), f);
  h5::write_attr(root, "git_revision", std::string(kGitRevision), f);
  h5::write_attr(root, "created_unix",
                 std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count(), f);
  {
    h5::Id g = h5::create_group(root, "steps", f);
    for (const StepField& sf : step_fields()) {
      h5::Id d = create_table(g, std::string(sf.name).c_str(),
                              step_type(sf) == H5T_NATIVE_INT64 ? H5T_STD_I64LE : H5T_IEEE_F64LE,
                              0, kRowChunk, f);
      h5::write_attr(d, "units", std::string(sf.units), f);
      h5::write_attr(d, "description", std::string(sf.description), f);
    }
  }
  {
    h5::Id l = h5::create_group(root, "layers", f);
    h5::write_attr(l, "blocks", schema.blocks, f);
    const size_t len = max_length(schema.params);
    h5::Id st = fixed_string_type(len);
    const hsize_t P = schema.params.size();
    h5::Id space(H5Screate_simple(1, &P, nullptr), H5Sclose);
    h5::Id names(h5::check_id(H5Dcreate2(l, "params", st, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT),
                              f, "creating /layers/params"),
                 H5Dclose);
    const std::vector<char> packed = pack_strings(schema.params, len);
    h5::check(H5Dwrite(names, st, H5S_ALL, H5S_ALL, H5P_DEFAULT, packed.data()), f, "writing /layers/params");
    create_table(l, "step", H5T_STD_I64LE, 0, kLayerChunk, f);
    create_table(l, "segment", H5T_STD_I64LE, 0, kLayerChunk, f);
    for (const LayerStatField& lf : layer_stat_fields()) {
      h5::Id d = create_table(l, std::string(lf.name).c_str(), H5T_IEEE_F64LE,
                              lf.per_block ? hsize_t(schema.blocks) : P, kLayerChunk, f);
      h5::write_attr(d, "description", std::string(lf.description), f);
    }
  }
  {
    h5::Id j = h5::create_group(root, "journal", f);
    for (const JournalColumn& c : kJournalColumns)
      create_table(j, c.name, c.is_double ? H5T_IEEE_F64LE : H5T_STD_I64LE, 0, kEventChunk, f);
    create_table(j, "type", fixed_string_type(kTypeLen), 0, kEventChunk, f);
    create_table(j, "host", fixed_string_type(kHostLen), 0, kEventChunk, f);
    create_table(j, "details", H5T_STD_U8LE, 0, kTextChunk, f);
  }
  impl.open_all();
}

LogbookFile LogbookFile::open_append(const std::string& path, const LogbookSchema& schema) {
  auto impl = std::make_unique<Impl>();
  impl->path = path;
  h5::Id fapl = file_access();
  const hid_t f = H5Fopen(path.c_str(), H5F_ACC_RDWR | H5F_ACC_SWMR_WRITE, fapl);
  if (f < 0)
    user_error(path, ": cannot be reopened for appending (left open by a killed writer, damaged, "
                     "or not an HDF5 1.10 file)");
  impl->file = h5::Id(f, H5Fclose);
  if (!h5::has_attr(f, "format") || h5::read_attr_string(f, "format", path) != "llmpi-logbook")
    user_error(path, ": not an llmpi logbook (attribute format != \"llmpi-logbook\")");
  if (h5::read_attr_int(f, "format_version", path) != kLogbookFormatVersion)
    user_error(path, ": logbook format_version ", h5::read_attr_int(f, "format_version", path),
               " (this llmpi appends to version ", kLogbookFormatVersion, ")");
  {
    h5::Id l = h5::open_group(f, "layers", path);
    h5::Id names = open_dataset(l, "params", path);
    h5::Id type(H5Dget_type(names), H5Tclose);
    const size_t len = H5Tget_size(type);
    impl->schema.params = read_strings(l, "params", len, path);
    impl->schema.blocks = h5::read_attr_int(l, "blocks", path);
  }
  if (!(impl->schema == schema))
    user_error(path, ": written for another model (", impl->schema.params.size(), " parameters, ",
               impl->schema.blocks, " blocks; this run has ", schema.params.size(), " and ",
               schema.blocks, ")");
  impl->open_all();
  // Every table exists: no object or attribute is created while in SWMR mode.
  return LogbookFile(std::move(impl));
}

void LogbookFile::append_steps(const std::vector<StepMetrics>& rows) {
  const auto fields = step_fields();
  std::vector<int64_t> ibuf(rows.size());
  std::vector<double> dbuf(rows.size());
  for (size_t k = 0; k < fields.size(); ++k) {
    std::visit(
        [&](auto member) {
          using T = std::remove_reference_t<decltype(std::declval<StepMetrics&>().*member)>;
          if constexpr (std::is_same_v<T, int64_t>) {
            for (size_t i = 0; i < rows.size(); ++i) ibuf[i] = rows[i].*member;
            append_rows(impl_->steps[k], H5T_NATIVE_INT64, ibuf.data(), rows.size(), 0, impl_->path);
          } else {
            for (size_t i = 0; i < rows.size(); ++i) dbuf[i] = rows[i].*member;
            append_rows(impl_->steps[k], H5T_NATIVE_DOUBLE, dbuf.data(), rows.size(), 0, impl_->path);
          }
        },
        fields[k].member);
  }
}

void LogbookFile::append_layers(const std::vector<LayerStats>& rows) {
  if (rows.empty()) return;
  const std::string& f = impl_->path;
  std::vector<int64_t> steps, segments;
  for (const LayerStats& r : rows) {
    steps.push_back(r.step);
    segments.push_back(r.segment);
  }
  append_rows(impl_->layer_step, H5T_NATIVE_INT64, steps.data(), rows.size(), 0, f);
  append_rows(impl_->layer_segment, H5T_NATIVE_INT64, segments.data(), rows.size(), 0, f);
  const auto fields = layer_stat_fields();
  for (size_t k = 0; k < fields.size(); ++k) {
    const size_t cols = fields[k].per_block ? size_t(impl_->schema.blocks) : impl_->schema.params.size();
    std::vector<double> buf(rows.size() * cols, kNotMeasured);
    for (size_t i = 0; i < rows.size(); ++i) {
      const std::vector<double>& v = rows[i].*(fields[k].member);
      LLMPI_CHECK(v.empty() || v.size() == cols, "layer stat ", fields[k].name, " has ", v.size(),
                  " values for ", cols, " columns");
      std::copy(v.begin(), v.end(), buf.begin() + i * cols);
    }
    append_rows(impl_->layers[k], H5T_NATIVE_DOUBLE, buf.data(), rows.size(), cols, f);
  }
}

void LogbookFile::append_events(const std::vector<Event>& events) {
  if (events.empty()) return;
  const std::string& f = impl_->path;
  const size_t n = events.size();
  std::vector<double> time(n);
  std::vector<int64_t> step(n), segment(n), rank(n), offset(n), length(n);
  std::vector<std::string> types(n), hosts(n);
  std::string text;
  for (size_t i = 0; i < n; ++i) {
    const Event& e = events[i];
    LLMPI_CHECK(e.type.size() <= kTypeLen, "event type name longer than ", kTypeLen, ": ", e.type);
    time[i] = e.time_unix;
    step[i] = e.step;
    segment[i] = e.segment;
    rank[i] = e.rank;
    types[i] = e.type;
    hosts[i] = e.host.substr(0, kHostLen);
    const std::string json = e.details.dump();
    offset[i] = impl_->details_bytes + int64_t(text.size());
    length[i] = int64_t(json.size());
    text += json;
  }
  // Details first: a reader that sees an event always finds its text.
  append_rows(impl_->journal_details, H5T_NATIVE_UINT8, text.data(), text.size(), 0, f);
  impl_->details_bytes += int64_t(text.size());
  const void* cols[] = {time.data(), step.data(), segment.data(), rank.data(), offset.data(), length.data()};
  for (size_t k = 0; k < std::size(kJournalColumns); ++k)
    append_rows(impl_->journal[k], kJournalColumns[k].is_double ? H5T_NATIVE_DOUBLE : H5T_NATIVE_INT64,
                cols[k], n, 0, f);
  h5::Id tt = fixed_string_type(kTypeLen), ht = fixed_string_type(kHostLen);
  const std::vector<char> tp = pack_strings(types, kTypeLen), hp = pack_strings(hosts, kHostLen);
  append_rows(impl_->journal_type, tt, tp.data(), n, 0, f);
  append_rows(impl_->journal_host, ht, hp.data(), n, 0, f);
}

void LogbookFile::flush() {
  h5::check(H5Fflush(impl_->file, H5F_SCOPE_GLOBAL), impl_->path, "flushing the logbook");
}

// ---- reading ---------------------------------------------------------------------------

namespace {

void read_steps(hid_t root, LogbookContents& c, const std::string& f) {
  h5::Id g = h5::open_group(root, "steps", f);
  const auto fields = step_fields();
  std::vector<std::vector<int64_t>> ints(fields.size());
  std::vector<std::vector<double>> dbls(fields.size());
  size_t n = SIZE_MAX, longest = 0;
  for (size_t k = 0; k < fields.size(); ++k) {
    const std::string name(fields[k].name);
    size_t len = 0;
    if (step_type(fields[k]) == H5T_NATIVE_INT64) {
      ints[k] = read_column<int64_t>(g, name, H5T_NATIVE_INT64, f);
      len = ints[k].size();
    } else {
      dbls[k] = read_column<double>(g, name, H5T_NATIVE_DOUBLE, f);
      len = dbls[k].size();
    }
    n = std::min(n, len);
    longest = std::max(longest, len);
  }
  if (n == SIZE_MAX) n = 0;
  if (longest > n)
    c.notes.push_back("steps: " + std::to_string(longest - n) +
                      " row(s) present in some columns only (a writer stopped mid-flush) were dropped");
  c.steps.resize(n);
  for (size_t k = 0; k < fields.size(); ++k)
    std::visit(
        [&](auto member) {
          using T = std::remove_reference_t<decltype(std::declval<StepMetrics&>().*member)>;
          for (size_t i = 0; i < n; ++i) {
            if constexpr (std::is_same_v<T, int64_t>) c.steps[i].*member = ints[k][i];
            else c.steps[i].*member = dbls[k][i];
          }
        },
        fields[k].member);
  // Steps are 1-based: a row of zeros is space the writer extended but never filled.
  const auto bad = std::find_if(c.steps.begin(), c.steps.end(), [](const StepMetrics& s) { return s.step <= 0; });
  if (bad != c.steps.end()) {
    c.notes.push_back("steps: " + std::to_string(c.steps.end() - bad) + " unwritten row(s) at the end were dropped");
    c.steps.erase(bad, c.steps.end());
  }
}

void read_layers(hid_t root, LogbookContents& c, const std::string& f) {
  h5::Id l = h5::open_group(root, "layers", f);
  {
    h5::Id names = open_dataset(l, "params", f);
    h5::Id type(H5Dget_type(names), H5Tclose);
    const size_t len = H5Tget_size(type);
    if (H5Tget_class(type) != H5T_STRING || len == 0 || len > 4096)
      user_error(f, ": /layers/params should hold fixed-length strings");
    c.schema.params = read_strings(l, "params", len, f);
  }
  c.schema.blocks = h5::read_attr_int(l, "blocks", f);
  const auto steps = read_column<int64_t>(l, "step", H5T_NATIVE_INT64, f);
  const auto segments = read_column<int64_t>(l, "segment", H5T_NATIVE_INT64, f);
  size_t n = std::min(steps.size(), segments.size());
  const auto fields = layer_stat_fields();
  std::vector<std::vector<double>> data(fields.size());
  std::vector<size_t> width(fields.size());
  for (size_t k = 0; k < fields.size(); ++k) {
    h5::Id d = open_number_dataset(l, std::string(fields[k].name), f);
    hsize_t cols = 0;
    const hsize_t rows = table_rows(d, &cols);
    const size_t want = fields[k].per_block ? size_t(c.schema.blocks) : c.schema.params.size();
    if (cols != want)
      user_error(f, ": /layers/", fields[k].name, " has ", cols, " columns, expected ", want);
    data[k].resize(rows * cols);
    if (rows) h5::check(H5Dread(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, data[k].data()), f,
                        "reading /layers/" + std::string(fields[k].name));
    width[k] = cols;
    n = std::min<size_t>(n, rows);
  }
  while (n > 0 && steps[n - 1] <= 0) --n;
  for (size_t i = 0; i < n; ++i) {
    LayerStats r;
    r.step = steps[i];
    r.segment = segments[i];
    for (size_t k = 0; k < fields.size(); ++k)
      (r.*(fields[k].member)).assign(data[k].begin() + i * width[k], data[k].begin() + (i + 1) * width[k]);
    c.layers.push_back(std::move(r));
  }
}

void read_journal(hid_t root, LogbookContents& c, const std::string& f) {
  h5::Id j = h5::open_group(root, "journal", f);
  const auto time = read_column<double>(j, "time_unix", H5T_NATIVE_DOUBLE, f);
  std::vector<std::vector<int64_t>> ints;
  for (size_t k = 1; k < std::size(kJournalColumns); ++k)
    ints.push_back(read_column<int64_t>(j, kJournalColumns[k].name, H5T_NATIVE_INT64, f));
  const auto types = read_strings(j, "type", kTypeLen, f);
  const auto hosts = read_strings(j, "host", kHostLen, f);
  const auto text = read_column<uint8_t>(j, "details", H5T_NATIVE_UINT8, f);
  size_t n = std::min({time.size(), types.size(), hosts.size()});
  for (const auto& col : ints) n = std::min(n, col.size());
  for (size_t i = 0; i < n; ++i) {
    const int64_t off = ints[3][i], len = ints[4][i];
    if (time[i] <= 0 || types[i].empty() || off < 0 || len < 0 || off + len > int64_t(text.size())) {
      c.notes.push_back("journal: " + std::to_string(n - i) + " incomplete event(s) at the end were dropped");
      break;
    }
    Event e;
    e.time_unix = time[i];
    e.step = ints[0][i];
    e.segment = ints[1][i];
    e.rank = ints[2][i];
    e.type = types[i];
    e.host = hosts[i];
    const std::string json(text.begin() + off, text.begin() + off + len);
    e.details = nlohmann::json::parse(json, nullptr, /*allow_exceptions=*/false);
    if (e.details.is_discarded() || !e.details.is_object()) {
      c.notes.push_back("journal: event " + std::to_string(i) + " (" + e.type + ") has unreadable details");
      e.details = nlohmann::json::object();
    }
    c.events.push_back(std::move(e));
  }
}

}  // namespace

LogbookContents read_logbook_file(const std::string& path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::is_regular_file(path, ec)) user_error(path, ": no logbook (no such file)");
  h5::Id fapl = file_access();
  const hid_t fid = H5Fopen(path.c_str(), H5F_ACC_RDONLY | H5F_ACC_SWMR_READ, fapl);
  if (fid < 0) user_error(path, ": cannot be read as an HDF5 logbook (damaged or not HDF5)");
  h5::Id file(fid, H5Fclose);
  if (!h5::has_attr(file, "format") || h5::read_attr_string(file, "format", path) != "llmpi-logbook")
    user_error(path, ": not an llmpi logbook (attribute format != \"llmpi-logbook\")");
  const int64_t version = h5::read_attr_int(file, "format_version", path);
  if (version < 1 || version > kLogbookFormatVersion)
    user_error(path, ": logbook format_version ", version, " is newer than this llmpi reads (",
               kLogbookFormatVersion, ")");
  LogbookContents c;
  if (h5::has_attr(file, "created_unix")) c.created_unix = h5::read_attr_double(file, "created_unix", path);
  if (h5::has_attr(file, "llmpi_version")) c.llmpi_version = h5::read_attr_string(file, "llmpi_version", path);
  if (h5::has_attr(file, "git_revision")) c.git_revision = h5::read_attr_string(file, "git_revision", path);
  // Each table on its own: damage in one leaves the others readable.
  const std::pair<const char*, void (*)(hid_t, LogbookContents&, const std::string&)> tables[] = {
      {"steps", read_steps}, {"layers", read_layers}, {"journal", read_journal}};
  for (const auto& [name, read] : tables) {
    try {
      read(file, c, path);
    } catch (const UserError& e) {
      c.notes.push_back(std::string(name) + ": unreadable (" + e.what() + ")");
    }
  }
  return c;
}

}  // namespace llmpi
