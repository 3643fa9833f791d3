// read_logbook_file (see logbook_file.h): logbook.h5 read back, each table on its own, the
// longest consistent prefix of each.
#include <algorithm>
#include <filesystem>
#include <string_view>

#include "core/error.h"
#include "core/file_kind.h"
#include "io/hdf5.h"
#include "io/logbook_file.h"
#include "io/logbook_tables.h"

namespace llmpi {

using namespace logbook_h5;

namespace {

// Bounds on values another tool may have written: segments (one per launch or rollback), times and
// the nesting of an event's details (nlohmann's dump recurses, so a deeper text would
// overflow the stack of every export).
constexpr int64_t kMaxSegment = int64_t(1) << 31;
constexpr int kMaxDetailsDepth = 64;
constexpr double kMaxTimeUnix = 1e11;  // year 5138: beyond is damage (and overflows time_t)

// Whether the JSON text nests arrays/objects deeper than `limit` (strings skipped).
bool nests_deeper_than(std::string_view text, int limit) {
  int depth = 0;
  bool in_string = false, escaped = false;
  for (const char ch : text) {
    if (in_string) {
      if (escaped) escaped = false;
      else if (ch == '\\') escaped = true;
      else if (ch == '"') in_string = false;
    } else if (ch == '"') {
      in_string = true;
    } else if (ch == '[' || ch == '{') {
      if (++depth > limit) return true;
    } else if (ch == ']' || ch == '}') {
      --depth;
    }
  }
  return false;
}

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
  // Steps are 1-based: a row of zeros is space the writer extended but never filled. A
  // segment outside 0..2^31 is damage; the table is kept up to the first such row.
  const auto bad = std::find_if(c.steps.begin(), c.steps.end(), [](const StepMetrics& s) {
    return s.step <= 0 || s.segment < 0 || s.segment > kMaxSegment;
  });
  if (bad != c.steps.end()) {
    c.notes.push_back("steps: " + std::to_string(c.steps.end() - bad) + " row(s) from row " +
                      std::to_string(bad - c.steps.begin()) +
                      " on were dropped (unwritten, or a step <= 0 or segment out of range)");
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
    const hsize_t rows = readable_rows(d, std::string(fields[k].name), sizeof(double), f, &cols);
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
  for (size_t i = 0; i < n; ++i)
    if (steps[i] <= 0 || segments[i] < 0 || segments[i] > kMaxSegment) {
      c.notes.push_back("layers: " + std::to_string(n - i) + " row(s) from row " + std::to_string(i) +
                        " on were dropped (a step <= 0 or segment out of range)");
      n = i;
    }
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
    const int64_t off = ints[3][i], len = ints[4][i], size = int64_t(text.size());
    if (!(time[i] > 0 && time[i] < kMaxTimeUnix) || types[i].empty() || off < 0 || len < 0 || off > size || len > size - off ||
        ints[1][i] < -1 || ints[1][i] > kMaxSegment) {
      c.notes.push_back("journal: " + std::to_string(n - i) + " event(s) from row " + std::to_string(i) +
                        " on were dropped (incomplete: a writer stopped mid-flush, or damaged)");
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
    if (!nests_deeper_than(json, kMaxDetailsDepth))
      e.details = nlohmann::json::parse(json, nullptr, /*allow_exceptions=*/false);
    else
      e.details = nlohmann::json::value_t::discarded;
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
  if (!fs::exists(fs::symlink_status(path, ec))) user_error(path, ": no logbook (no such file)");
  require_regular_file(path, "the run's logbook (an HDF5 file)");
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
      c.unreadable.push_back(name);
    }
  }
  return c;
}

}  // namespace llmpi