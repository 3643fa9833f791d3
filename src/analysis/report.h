#pragma once
// The analysis report of a run (llmpi analyze): sections of charts and tables built from
// what could be read — the logbook (per-step curves, per-layer statistics, journal,
// lineage) and the checkpoint series (weight dynamics, loss over checkpoints, memorization,
// the data→checkpoint map) — written as one self-contained HTML file (inline SVG and CSS,
// no script, nothing fetched), the CSV of every table under data/, and report.json holding
// every table plus the notes. A section whose input is missing is left out and the reason
// listed under "Notes", so a partial run still gets a partial report.
#include <optional>
#include <string>
#include <vector>

#include "analysis/checkpoint_series.h"
#include "analysis/model_probe.h"
#include "analysis/report_table.h"
#include "analysis/weight_dynamics.h"
#include "io/logbook_file.h"

namespace llmpi {

struct AnalysisInputs {
  std::string run_dir;
  std::optional<LogbookContents> logbook;
  double grad_clip = 0.0;   // the run's train.grad_clip (0: unknown or off), drawn on the chart
  CheckpointSeries series;
  WeightDynamics weights;
  ProbeResults probes;
  std::vector<std::string> notes;  // problems met while reading, for the Notes section
  double seconds = 0.0;            // wall time of the analysis so far
};

struct ReportSection {
  std::string id, title;
  std::string intro;                // one paragraph, plain text
  std::vector<std::string> blocks;  // HTML: SVG figures and tables, in order
};

struct Report {
  std::vector<ReportSection> sections;
  std::vector<Table> tables;
  std::vector<std::string> notes;
  std::vector<std::pair<std::string, std::string>> summary;  // key facts, in order
};

// The sections and tables from the logbook (report_training.cpp).
void add_training_sections(const AnalysisInputs& in, Report& r);
// ... from the checkpoint series (report_checkpoints.cpp).
void add_checkpoint_sections(const AnalysisInputs& in, Report& r);

Report build_report(const AnalysisInputs& in);

// report.json's "writer": how analyze recognises a report directory it wrote.
inline constexpr const char* kReportWriter = "llmpi analyze";
// The output rule (core/output_rule.h) for a report directory, checked before the analysis:
// report.html, report.json and every existing data/*.csv (any of which a report may write)
// are replaced only when <dir>/report.json is analyze's (its writer mark; a report of an
// earlier llmpi, without the mark: an object with run, llmpi_version, summary and tables),
// else only with force; a data/ that is not a directory is refused. UserError naming the path.
void claim_report_dir(const std::string& dir, bool force);
// Writes <out_dir>/report.html, report.json and data/<table>.csv (creating the folders).
// UserError naming the path when it cannot write.
void write_report(const Report& r, const std::string& title, const std::string& out_dir);

// HTML helpers shared by the section builders.
std::string html_table(const std::vector<std::string>& header,
                       const std::vector<std::vector<std::string>>& rows, const std::string& cls = "");
std::string html_escape(const std::string& s);

}  // namespace llmpi
