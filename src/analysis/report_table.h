#pragma once
// A table of numbers behind a chart of the analysis report, and its CSV and JSON forms.
// Every chart names the table it plots, and every table is written as data/<name>.csv and
// into report.json, so each number in the report can be checked or re-plotted.
// CSV: a header row of column names (units in the name: "time_s", "loss_nats"), then one
// row per record; numbers in the shortest form that reads back to the same double (so a
// CSV value compares equal to the logbook's), NaN as an empty cell, strings quoted when
// they hold a comma, quote or newline. JSON: {"name", "title", "columns", "rows"} with NaN
// as null.
#include <cstdint>
#include <string>
#include <variant>
#include <vector>

#include <nlohmann/json.hpp>

namespace llmpi {

using Cell = std::variant<int64_t, double, std::string>;

struct Table {
  std::string name;   // file stem: data/<name>.csv
  std::string title;  // one line saying what a row is
  std::vector<std::string> columns;
  std::vector<std::vector<Cell>> rows;

  void add(std::vector<Cell> row);  // LLMPI_CHECK: one cell per column
  size_t column(const std::string& name) const;  // index; LLMPI_CHECK that it exists
};

std::string to_csv(const Table& t);
nlohmann::json to_json(const Table& t);
// A number as the CSV writes it ("" for NaN).
std::string number_cell(double v);

}  // namespace llmpi
