#pragma once
// The logbook's contents as tables and JSON lines — what `llmpi logbook --csv|--jsonl`
// exports and what the analysis report's CSV files hold:
//   steps        one row per /steps row, one column per StepField, values unchanged
//   events       one row per journal event: time (unix and UTC), segment, step, rank, host,
//                type, the LOGBOOK.md sentence, the details as JSON
//   layer_stats  long format: one row per (per-layer row, statistic, tensor or block)
// JSON lines: a {"record": "schema"} line (parameter names, blocks), then one line per step
// ({"record": "step", <field>: value, ...}), per-layer row ({"record": "layers", ...}) and
// event ({"record": "event", ...}); NaN is written as null.
#include <ostream>

#include "analysis/report_table.h"
#include "io/logbook_file.h"

namespace llmpi {

Table steps_table(const std::vector<StepMetrics>& steps);
Table events_table(const std::vector<Event>& events);
Table layer_stats_table(const LogbookContents& lb);
void write_jsonl(const LogbookContents& lb, std::ostream& out);

}  // namespace llmpi
