#pragma once
// Charts of the analysis report as standalone SVG (no script, no external file): a line
// chart (lines, points, stacked areas; linear or log y) with event markers, and a heatmap.
// Every chart has a title, labelled axes with units, tick labels, a legend, and the name of
// the table (data/<name>.csv) that holds its numbers. Long series are thinned per pixel
// column keeping each column's first, minimum, maximum and last point, so spikes survive.
// NaN values break lines (gaps); on a log axis values <= 0 are left out.
#include <cstdint>
#include <string>
#include <vector>

namespace llmpi {

struct ChartSeries {
  std::string name;
  std::vector<double> x, y;
  std::string color;        // CSS color; empty = the palette's next one
  bool points = false;      // dots instead of a line (sparse data: validation losses)
  bool dashed = false;
  double opacity = 1.0;
  double width = 1.8;       // line width (px); a summary line drawn over its parts is wider
};

enum class MarkerKind : uint8_t { spike, skip, rollback, restart };

struct ChartMarker {
  MarkerKind kind;
  double x = 0.0;
  double y = 0.0;     // spike/skip: the value marked; rollback/restart: unused (vertical line)
  std::string label;  // drawn next to vertical lines ("segment 2"), in the tooltip otherwise
};

struct LineChart {
  std::string id;                 // HTML anchor
  std::string title, x_label, y_label;  // labels carry units: "step", "loss (nats/token)"
  std::string data_file;          // "data/steps.csv"
  bool log_y = false;
  bool stacked = false;           // series are stacked areas (same x for all)
  bool integer_x = true;          // x is a count (steps): ticks on whole numbers
  std::vector<ChartSeries> series;
  std::vector<ChartMarker> markers;
};

struct Heatmap {
  std::string id, title, x_label, y_label, value_label, data_file;
  std::vector<std::string> rows;  // row labels, top to bottom
  // Optional, one per row: the group of each row. When the rows are too thin for every
  // label, only the first row of each group is labelled (with the group) and groups are
  // separated by a line.
  std::vector<std::string> row_groups;
  std::vector<double> columns;    // column x values (e.g. checkpoint steps), left to right
  std::vector<double> values;     // [rows × columns] row-major; NaN = no value
  bool log_scale = true;
};

std::string render_svg(const LineChart& c);
std::string render_svg(const Heatmap& h);

// Colors: a qualitative palette (10 colors, cycled) and a sequential ramp for ordered
// series (layers 0..n-1).
std::string palette_color(size_t i);
std::string sequential_color(size_t i, size_t n);

// Tick positions "nice" for a human: 1, 2, 2.5, 5 × 10^k steps covering [lo, hi] (about
// `target`); with `integer`, whole-number steps of 1, 2, 5 × 10^k only.
std::vector<double> nice_ticks(double lo, double hi, int target, bool integer = false);
// A tick label: "0.25", "1.5k", "20M", "1e-4".
std::string tick_label(double v);
// Text for XML: & < > " escaped.
std::string xml_escape(const std::string& s);

}  // namespace llmpi
