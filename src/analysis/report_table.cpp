#include "analysis/report_table.h"

#include <charconv>
#include <cmath>

#include "core/error.h"

namespace llmpi {

void Table::add(std::vector<Cell> row) {
  LLMPI_CHECK(row.size() == columns.size(), "table ", name, ": a row of ", row.size(),
              " cells for ", columns.size(), " columns");
  rows.push_back(std::move(row));
}

size_t Table::column(const std::string& c) const {
  for (size_t i = 0; i < columns.size(); ++i)
    if (columns[i] == c) return i;
  throw InternalError("table " + name + " has no column " + c);
}

std::string number_cell(double v) {
  if (std::isnan(v)) return "";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  char buf[64];
  const auto r = std::to_chars(buf, buf + sizeof buf, v);  // shortest round-trip form
  return std::string(buf, r.ptr);
}

namespace {

std::string csv_text(const std::string& s) {
  if (s.find_first_of(",\"\n\r") == std::string::npos) return s;
  std::string q = "\"";
  for (char c : s) q += c == '"' ? std::string("\"\"") : std::string(1, c);
  return q + "\"";
}

std::string cell_text(const Cell& c) {
  if (const auto* i = std::get_if<int64_t>(&c)) return std::to_string(*i);
  if (const auto* d = std::get_if<double>(&c)) return number_cell(*d);
  return csv_text(std::get<std::string>(c));
}

}  // namespace

std::string to_csv(const Table& t) {
  std::string s;
  for (size_t i = 0; i < t.columns.size(); ++i) s += (i ? "," : "") + csv_text(t.columns[i]);
  s += "\n";
  for (const auto& row : t.rows) {
    for (size_t i = 0; i < row.size(); ++i) s += (i ? "," : "") + cell_text(row[i]);
    s += "\n";
  }
  return s;
}

nlohmann::json to_json(const Table& t) {
  nlohmann::json rows = nlohmann::json::array();
  for (const auto& row : t.rows) {
    nlohmann::json r = nlohmann::json::array();
    for (const Cell& c : row) {
      if (const auto* i = std::get_if<int64_t>(&c)) r.push_back(*i);
      else if (const auto* d = std::get_if<double>(&c)) r.push_back(std::isfinite(*d) ? nlohmann::json(*d) : nlohmann::json());
      else r.push_back(std::get<std::string>(c));
    }
    rows.push_back(std::move(r));
  }
  return {{"name", t.name}, {"title", t.title}, {"columns", t.columns}, {"rows", std::move(rows)}};
}

}  // namespace llmpi
