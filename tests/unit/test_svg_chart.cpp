// The report's SVG charts: human tick positions and labels, every part a reader needs (title,
// axis labels with units, legend, data file, markers), long series thinned without losing a
// spike, log axes skipping non-positive values, heatmaps with their color scale.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <regex>

#include "analysis/svg_chart.h"

using namespace llmpi;

namespace {
int count(const std::string& s, const std::string& what) {
  int n = 0;
  for (size_t p = s.find(what); p != std::string::npos; p = s.find(what, p + 1)) ++n;
  return n;
}
}  // namespace

TEST(SvgChart, NiceTicksAndLabels) {
  EXPECT_EQ(nice_ticks(0, 1, 5), (std::vector<double>{0, 0.2, 0.4, 0.6000000000000001, 0.8, 1}));
  EXPECT_EQ(nice_ticks(3.2, 4.9, 6), (std::vector<double>{3.25, 3.5, 3.75, 4, 4.25, 4.5, 4.75}));
  EXPECT_EQ(nice_ticks(6, 24, 8, /*integer=*/true), (std::vector<double>{6, 8, 10, 12, 14, 16, 18, 20, 22, 24}));
  EXPECT_EQ(nice_ticks(1, 3, 8, /*integer=*/true), (std::vector<double>{1, 2, 3}));
  EXPECT_EQ(nice_ticks(0, 20000, 4), (std::vector<double>{0, 5000, 10000, 15000, 20000}));
  EXPECT_EQ(tick_label(20000), "20k");
  EXPECT_EQ(tick_label(2.5e6), "2.5M");
  EXPECT_EQ(tick_label(0.25), "0.25");
  EXPECT_EQ(tick_label(2.5e-5), "2.5e-5");
  EXPECT_EQ(tick_label(0), "0");
  EXPECT_EQ(xml_escape("a<b & \"c\">"), "a&lt;b &amp; &quot;c&quot;&gt;");
}

TEST(SvgChart, LineChartHasEverythingAReaderNeeds) {
  LineChart c;
  c.id = "chart-loss";
  c.title = "Loss";
  c.x_label = "step";
  c.y_label = "loss (nats/token)";
  c.data_file = "data/steps.csv";
  ChartSeries train{"training loss", {}, {}, "", false, false, 1.0};
  for (int i = 1; i <= 100000; ++i) {
    train.x.push_back(i);
    train.y.push_back(i == 60000 ? 50.0 : 3.0 + 1.0 / i);
  }
  c.series.push_back(train);
  c.series.push_back({"validation loss", {10, 20}, {3.5, std::nan("")}, "", true, false, 1.0});
  c.markers = {{MarkerKind::spike, 60000, 50.0, "spike at step 60000"},
               {MarkerKind::skip, 70000, 3.0, "skipped"},
               {MarkerKind::rollback, 61000, 0, "rollback at step 61000 → 59000"},
               {MarkerKind::restart, 80000, 0, "segment 2"}};
  const std::string svg = render_svg(c);
  EXPECT_EQ(svg.rfind("<svg id=\"chart-loss\"", 0), 0u);
  EXPECT_EQ(count(svg, "<svg"), 1);
  EXPECT_EQ(count(svg, "</svg>"), 1);
  for (const char* must : {">Loss<", ">step<", ">loss (nats/token)<", "data: data/steps.csv", ">training loss<",
                           ">validation loss<", ">loss spike<", ">skipped update<", ">rollback<",
                           ">restart (new segment)<", ">segment 2<", "spike at step 60000"})
    EXPECT_NE(svg.find(must), std::string::npos) << must;
  // Thinned: far fewer than 100k vertices, and the spike's pixel row is still reached.
  const size_t path = svg.find("class=\"series\" d=\"");
  ASSERT_NE(path, std::string::npos);
  const std::string d = svg.substr(path, svg.find('"', path + 19) - path);
  const int vertices = count(d, "L") + count(d, "M");
  EXPECT_LT(vertices, 4 * 900);
  EXPECT_GT(vertices, 800);
  double min_y = 1e9;
  std::regex pt("[ML](-?[0-9.]+) (-?[0-9.]+)");
  for (auto it = std::sregex_iterator(d.begin(), d.end(), pt); it != std::sregex_iterator(); ++it)
    min_y = std::min(min_y, std::stod((*it)[2]));
  EXPECT_LT(min_y, 60.0);  // the top of the plot (y = 50 is the maximum)
  // One dot for the finite validation value; the NaN leaves no dot.
  EXPECT_EQ(count(svg, "<circle"), 1);
}

TEST(SvgChart, LogAxisSkipsNonPositiveValuesAndStackedAreasClose) {
  LineChart c;
  c.id = "g";
  c.log_y = true;
  c.series.push_back({"norm", {1, 2, 3, 4}, {0.5, 0.0, -1.0, 20.0}, "", false, false, 1.0});
  const std::string svg = render_svg(c);
  EXPECT_NE(svg.find(">1<"), std::string::npos);   // decade ticks
  EXPECT_NE(svg.find(">10<"), std::string::npos);
  EXPECT_EQ(svg.find("nan"), std::string::npos);
  EXPECT_EQ(svg.find("inf"), std::string::npos);
  LineChart s;
  s.id = "t";
  s.stacked = true;
  s.series.push_back({"forward", {1, 2}, {1, 1}, "", false, false, 1.0});
  s.series.push_back({"backward", {1, 2}, {2, 2}, "", false, false, 1.0});
  const std::string st = render_svg(s);
  EXPECT_EQ(count(st, " Z\""), 2);
  EXPECT_NE(st.find(">3<"), std::string::npos);  // the stack's top is on the axis
}

TEST(SvgChart, HeatmapHasCellsLabelsAndAColorScale) {
  Heatmap h;
  h.id = "heat";
  h.title = "Update";
  h.rows = {"embed.tokens", "layers.0.attn.q.weight"};
  h.columns = {20, 30, 40};
  h.values = {1e-2, 1e-3, std::nan(""), 5e-2, 2e-3, 1e-4};
  h.value_label = "ratio";
  const std::string svg = render_svg(h);
  EXPECT_EQ(count(svg, "<title>embed.tokens @"), 2);  // the NaN cell is not drawn
  EXPECT_EQ(count(svg, "<title>layers.0.attn.q.weight @"), 3);
  EXPECT_NE(svg.find(">0.05<"), std::string::npos);  // color bar ends
  EXPECT_NE(svg.find(">0.0001<"), std::string::npos);
  EXPECT_NE(svg.find(">ratio<"), std::string::npos);
}
