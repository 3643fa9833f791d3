// LogbookFile (see logbook_file.h): creating, reopening and appending to logbook.h5.
#include "io/logbook_file.h"

#include <algorithm>
#include <chrono>
#include <filesystem>

#include "core/error.h"
#include "core/version.h"
#include "io/hdf5.h"
#include "io/logbook_tables.h"

namespace llmpi {

using namespace logbook_h5;

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

  // Opens every table for appending and checks that appending is safe: each dataset has the
  // writer's exact stored type and width, is extendible along its rows, and the columns of a
  // table have one length (else new rows would land beside other steps' values). UserError
  // naming the dataset otherwise; nothing has been written then.
  void open_all() {
    const std::string& f = path;
    h5::Id g = h5::open_group(file, "steps", f);
    steps.clear();
    hsize_t n = kAnyRows;
    for (const StepField& sf : step_fields()) {
      const bool is_int = step_type(sf) == H5T_NATIVE_INT64;
      steps.push_back(open_table("steps", g, std::string(sf.name), is_int ? H5T_STD_I64LE : H5T_IEEE_F64LE, 0, n));
    }
    h5::Id l = h5::open_group(file, "layers", f);
    n = kAnyRows;
    layer_step = open_table("layers", l, "step", H5T_STD_I64LE, 0, n);
    layer_segment = open_table("layers", l, "segment", H5T_STD_I64LE, 0, n);
    layers.clear();
    for (const LayerStatField& lf : layer_stat_fields())
      layers.push_back(open_table("layers", l, std::string(lf.name), H5T_IEEE_F64LE,
                                  lf.per_block ? hsize_t(schema.blocks) : schema.params.size(), n));
    h5::Id j = h5::open_group(file, "journal", f);
    journal.clear();
    n = kAnyRows;
    for (const JournalColumn& c : kJournalColumns)
      journal.push_back(open_table("journal", j, c.name, c.is_double ? H5T_IEEE_F64LE : H5T_STD_I64LE, 0, n));
    journal_type = open_table("journal", j, "type", fixed_string_type(kTypeLen), 0, n);
    journal_host = open_table("journal", j, "host", fixed_string_type(kHostLen), 0, n);
    hsize_t bytes = kAnyRows;
    journal_details = open_table("journal", j, "details", H5T_STD_U8LE, 0, bytes);
    details_bytes = int64_t(bytes);
  }

  static constexpr hsize_t kAnyRows = ~hsize_t(0);

  // One column of `table`, checked as open_all says; `rows`: the length of the table's columns
  // opened so far (kAnyRows before its first), which this one must have.
  h5::Id open_table(const char* table, hid_t parent, const std::string& name, hid_t want_type,
                    hsize_t cols, hsize_t& rows) {
    const std::string what = std::string("/") + table + "/" + name;
    h5::Id d = open_dataset(parent, name, path);
    h5::Id type(h5::check_id(H5Dget_type(d), path, "reading the type of " + what), H5Tclose);
    if (H5Tequal(type, want_type) <= 0)
      user_error(path, ": ", what, " is not of the type this llmpi writes (changed by another tool?)");
    h5::Id space(H5Dget_space(d), H5Sclose);
    const int rank = H5Sget_simple_extent_ndims(space);
    hsize_t dims[2] = {0, 0}, maxdims[2] = {0, 0};
    if (rank != (cols ? 2 : 1) || H5Sget_simple_extent_dims(space, dims, maxdims) < 0 ||
        maxdims[0] != H5S_UNLIMITED || (cols && dims[1] != cols))
      user_error(path, ": ", what, " is not an extendible ",
                 cols ? "[n, " + std::to_string(cols) + "]" : std::string("[n]"), " table");
    if (rows != kAnyRows && dims[0] != rows)
      user_error(path, ": ", what, " has ", dims[0], " rows, the other columns of /", table, " ", rows);
    rows = dims[0];
    return d;
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

}  // namespace llmpi
