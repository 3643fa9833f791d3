// The report page and its files: one self-contained HTML document (inline CSS and SVG, no
// script, nothing loaded from elsewhere), data/<table>.csv per table, and report.json.
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>

#include "analysis/report.h"
#include "analysis/svg_chart.h"
#include "core/error.h"
#include "core/file_kind.h"
#include "core/output_rule.h"
#include "core/text_file.h"
#include "core/version.h"
#include "io/logbook_markdown.h"

namespace llmpi {

namespace fs = std::filesystem;

namespace {

constexpr const char* kStyle = R"(
body{margin:0;background:#f4f5f7;color:#1f2430;font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif}
header{background:#1f2a44;color:#fff;padding:22px 32px 18px}
header h1{margin:0 0 4px;font-size:24px;font-weight:600}
header p{margin:0;color:#c9d2e3;font-size:13px}
main{max-width:1060px;margin:0 auto;padding:4px 20px 48px}
section{background:#fff;border-radius:8px;box-shadow:0 1px 3px rgba(20,30,60,.10);padding:14px 24px 18px;margin:18px 0}
h2{font-size:19px;margin:6px 0 6px;color:#1f2a44}
p.intro{margin:0 0 6px;color:#4a5264;font-size:14px}
nav{font-size:14px;margin:14px 0 0}
nav a{color:#2c5aa0;text-decoration:none;margin-right:14px;white-space:nowrap}
svg.chart{display:block;width:100%;height:auto;margin:14px 0 4px}
svg.chart text{font-family:inherit;font-size:13px;fill:#3a4150}
svg.chart .title{font-size:16px;font-weight:600;fill:#1f2430}
svg.chart .label{font-size:14px;fill:#1f2430}
svg.chart .source{font-size:12px;fill:#8a91a0}
svg.chart .vlabel{font-size:12px}
svg.chart .grid line{stroke:#e8eaee;stroke-width:1}
svg.chart .axis line{stroke:#6b7280;stroke-width:1}
svg.chart .legend text{font-size:13px}
table{border-collapse:collapse;width:100%;font-size:13.5px;margin:8px 0}
th{text-align:left;background:#eef1f6;color:#1f2a44;font-weight:600}
th,td{padding:5px 8px;border-bottom:1px solid #e6e8ec;vertical-align:top}
table.numbers td{font-variant-numeric:tabular-nums}
table.summary th{width:230px;background:none}
ul.notes li{color:#8a4b00}
)";

void write_text(const fs::path& p, const std::string& text) { write_text_atomically(p.string(), text); }

}  // namespace

std::string html_escape(const std::string& s) { return xml_escape(s); }

std::string html_table(const std::vector<std::string>& header,
                       const std::vector<std::vector<std::string>>& rows, const std::string& cls) {
  std::string h = "<table" + (cls.empty() ? std::string() : " class=\"" + cls + "\"") + "><thead><tr>";
  for (const std::string& c : header) h += "<th>" + html_escape(c) + "</th>";
  h += "</tr></thead><tbody>";
  for (const auto& row : rows) {
    h += "<tr>";
    for (const std::string& c : row) h += "<td>" + html_escape(c) + "</td>";
    h += "</tr>";
  }
  return h + "</tbody></table>";
}

namespace {

bool is_earlier_report(const fs::path& dir) {
  const fs::path json = dir / "report.json";
  if (!not_regular_file(json.string()).empty()) return false;
  const nlohmann::json j = nlohmann::json::parse(read_text_file_if_exists(json.string()), nullptr, false);
  if (!j.is_object()) return false;
  if (j.contains("writer")) return j["writer"] == kReportWriter;
  return j.contains("run") && j.contains("llmpi_version") && j.contains("summary") && j.contains("tables");
}

}  // namespace

void claim_report_dir(const std::string& dir, bool force) {
  const fs::path out(dir), data = out / "data";
  OutputClaim c;
  c.dir = dir;
  c.what = "part of an earlier llmpi analyze --out report";
  c.files = {(out / "report.html").string(), (out / "report.json").string()};
  std::error_code ec;
  if (fs::exists(fs::symlink_status(data, ec)) && !fs::is_directory(data, ec))
    user_error(data.string(), ": exists and is not a directory; expected the report's data/ folder");
  for (fs::directory_iterator it(data, ec), end; !ec && it != end; it.increment(ec))
    if (it->path().extension() == ".csv") c.files.push_back(it->path().string());
  const bool ours = is_earlier_report(out);  // decided once, for every file of the directory
  c.ours = [ours](const std::string&) { return ours; };
  claim_outputs(c, force);
}

Report build_report(const AnalysisInputs& in) {
  Report r;
  r.summary.push_back({"run directory", in.run_dir});
  r.notes = in.notes;
  if (in.logbook)
    for (const std::string& n : in.logbook->notes) r.notes.push_back("logbook.h5: " + n);
  add_training_sections(in, r);
  add_checkpoint_sections(in, r);
  char secs[64];
  std::snprintf(secs, sizeof secs, "%.2f s", in.seconds);
  r.summary.push_back({"analysis time", secs});
  return r;
}

void write_report(const Report& r, const std::string& title, const std::string& out_dir) {
  const fs::path out(out_dir), data = out / "data";
  std::error_code ec;
  fs::create_directories(data, ec);
  if (ec) user_error(out_dir, ": cannot create the report directory: ", ec.message());
  nlohmann::json tables = nlohmann::json::object();
  for (const Table& t : r.tables) {
    write_text(data / (t.name + ".csv"), to_csv(t));
    tables[t.name] = to_json(t);
  }
  nlohmann::json summary = nlohmann::json::object();
  for (const auto& [k, v] : r.summary) summary[k] = v;
  const nlohmann::json doc = {{"writer", kReportWriter},
                              {"run", title},
                              {"llmpi_version", kVersion},
                              {"git_revision", kGitRevision},
                              {"summary", summary},
                              {"notes", r.notes},
                              {"tables", tables}};
  write_text(out / "report.json", doc.dump(1));

  std::string h = "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
                  "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
                  "<title>llmpi analysis: " + html_escape(title) + "</title><style>" + kStyle + "</style></head><body>";
  const double now = double(std::time(nullptr));
  h += "<header><h1>Training dynamics of " + html_escape(title) + "</h1><p>llmpi analyze " + kVersion +
       " (git " + kGitRevision + "), " + utc_time_text(now) + " UTC. Every chart's numbers are in data/&lt;table&gt;.csv "
       "and report.json next to this file.</p></header><main>";
  h += "<section id=\"summary\"><h2>Summary</h2>";
  std::vector<std::vector<std::string>> rows;
  for (const auto& [k, v] : r.summary) rows.push_back({k, v});
  h += html_table({"", ""}, rows, "summary");
  if (!r.notes.empty()) {
    h += "<h2>Notes</h2><ul class=\"notes\">";
    for (const std::string& n : r.notes) h += "<li>" + html_escape(n) + "</li>";
    h += "</ul>";
  }
  h += "<nav>";
  for (const ReportSection& s : r.sections) h += "<a href=\"#" + s.id + "\">" + html_escape(s.title) + "</a>";
  h += "</nav></section>";
  for (const ReportSection& s : r.sections) {
    h += "<section id=\"" + s.id + "\"><h2>" + html_escape(s.title) + "</h2>";
    if (!s.intro.empty()) h += "<p class=\"intro\">" + html_escape(s.intro) + "</p>";
    for (const std::string& b : s.blocks) h += b;
    h += "</section>";
  }
  h += "</main></body></html>\n";
  write_text(out / "report.html", h);
}

}  // namespace llmpi
