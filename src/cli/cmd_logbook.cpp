// `llmpi logbook RUN_DIR [--csv [--out DIR] | --jsonl [--out FILE]]`: the logbook for people
// (LOGBOOK.md rendered afresh from logbook.h5) or exported for dashboards.
#include <filesystem>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "analysis/logbook_tables.h"
#include "cli/command.h"
#include "cli/options.h"
#include "core/error.h"
#include "core/file_kind.h"
#include "core/output_rule.h"
#include "core/text_file.h"
#include "io/logbook_file.h"
#include "io/logbook_markdown.h"

namespace llmpi {

namespace {
namespace fs = std::filesystem;

constexpr const char* kDescription = R"(Reads RUN_DIR/logbook.h5 (also while the run is training, or after it was killed).
Without an export option, prints the logbook as LOGBOOK.md tells it: the lineage of the
run's segments and every journal event. --csv writes steps.csv (one row per trained step,
every per-step field), layer_stats.csv and events.csv into --out (default
RUN_DIR/logbook-export); --jsonl writes one JSON object per line (a schema line, then
steps, per-layer rows and events) to stdout or to --out FILE. Columns and fields:
docs/logbook-format.md. An existing file at an output path is replaced only if it is an
earlier export of the same kind (its first line), else only with --force.
)";

struct LogbookArgs {
  std::string run_dir, out;
  bool csv = false, jsonl = false, force = false;
};

std::string first_line_of_text(const std::string& text) { return text.substr(0, text.find('\n')); }

int run_logbook(const LogbookArgs& a) {
  require_run_directory(a.run_dir);
  const LogbookContents lb = read_logbook_file((fs::path(a.run_dir) / "logbook.h5").string());
  for (const std::string& n : lb.notes) std::cerr << "llmpi logbook: note: " << n << "\n";
  if (a.csv) {
    const fs::path dir = a.out.empty() ? fs::path(a.run_dir) / "logbook-export" : fs::path(a.out);
    const std::vector<Table> tables = {steps_table(lb.steps), layer_stats_table(lb), events_table(lb.events)};
    for (const Table& t : tables) {  // the output rule: an earlier export's file has its header
      const std::string header = first_line_of_text(to_csv(t));
      claim_outputs({dir.string(), {(dir / (t.name + ".csv")).string()}, "a logbook " + t.name +
                     ".csv export (first line: its header)",
                     [&](const std::string& f) { return first_line_of(f) == header; }},
                    a.force);
    }
    std::error_code ec;
    fs::create_directories(dir, ec);
    if (ec) user_error(dir.string(), ": cannot create: ", ec.message());
    for (const Table& t : tables) {
      write_text_atomically((dir / (t.name + ".csv")).string(), to_csv(t));
      std::cout << "wrote " << (dir / (t.name + ".csv")).string() << " (" << t.rows.size() << " rows)\n";
    }
  } else if (a.jsonl) {
    if (a.out.empty() || a.out == "-") {
      write_jsonl(lb, std::cout);
    } else {
      claim_outputs({"", {a.out}, "a logbook --jsonl export (first line: the schema record)",
                     [](const std::string& f) {
                       const auto j = nlohmann::json::parse(first_line_of(f), nullptr, false);
                       return j.is_object() && j.value("record", "") == "schema";
                     }},
                    a.force);
      std::ostringstream text;
      write_jsonl(lb, text);
      write_text_atomically(a.out, text.str());
    }
  } else {
    std::cout << render_logbook_markdown(a.run_dir, lb.events, summarize_segments(lb.steps, lb.events));
  }
  return 0;
}

}  // namespace

CommandSpec logbook_command() {
  return {"logbook", "RUN_DIR [--csv [--out DIR] | --jsonl [--out FILE]]",
          "print a run's logbook, or export it as CSV or JSON lines", kDescription,
          [](CLI::App& app) -> CommandAction {
            auto a = std::make_shared<LogbookArgs>();
            add_value(app, "RUN_DIR", a->run_dir, "RUN_DIR", "the run directory")->required();
            Opt csv = add_switch(app, "--csv", a->csv, "write steps.csv, layer_stats.csv and events.csv");
            Opt jsonl = add_switch(app, "--jsonl", a->jsonl, "write JSON lines");
            csv->excludes(jsonl);
            Opt out = add_value(app, "--out", a->out, "PATH",
                                "--csv: a directory (default RUN_DIR/logbook-export); --jsonl: a "
                                "file\n(default: stdout)");
            out->needs_one_of({csv, jsonl});  // the printed logbook has no --out
            add_switch(app, "--force", a->force,
                       "replace files at the --out paths that are not an earlier export of the\n"
                       "same kind (recognised by the first line)");
            return [a](CommandEnv&) { return run_logbook(*a); };
          }};
}

}  // namespace llmpi
