#include "analysis/svg_chart.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>

namespace llmpi {

namespace {

constexpr double kW = 960, kH = 380;                         // viewBox
constexpr double kLeft = 84, kRight = 24, kTop = 44, kBottom = 62;  // plot margins
constexpr double kLegendRow = 20;
const double kNaN = std::numeric_limits<double>::quiet_NaN();

std::string fmt(double v) {
  char b[32];
  std::snprintf(b, sizeof b, "%.1f", v);
  return b;
}

struct Scale {
  double lo = 0, hi = 1, px0 = 0, px1 = 1;
  bool log = false;
  double operator()(double v) const {
    const double a = log ? std::log10(lo) : lo, b = log ? std::log10(hi) : hi;
    const double t = ((log ? std::log10(v) : v) - a) / (b - a);
    return px0 + t * (px1 - px0);
  }
};

bool usable(double v, bool log) { return std::isfinite(v) && (!log || v > 0); }

// [lo, hi] of the usable values, padded; a degenerate range is widened.
void data_range(const std::vector<double>& v, bool log, double& lo, double& hi) {
  lo = std::numeric_limits<double>::infinity();
  hi = -lo;
  for (double x : v)
    if (usable(x, log)) {
      lo = std::min(lo, x);
      hi = std::max(hi, x);
    }
  if (!(lo <= hi)) {
    lo = log ? 0.1 : 0.0;
    hi = 1.0;
  }
  if (lo == hi) {
    if (log) {
      lo /= 2;
      hi *= 2;
    } else {
      const double d = lo == 0 ? 1.0 : std::fabs(lo) * 0.1;
      lo -= d;
      hi += d;
    }
  }
}

std::vector<double> log_ticks(double lo, double hi) {
  std::vector<double> t;
  const int a = int(std::floor(std::log10(lo))), b = int(std::ceil(std::log10(hi)));
  const bool dense = b - a <= 2;
  for (int e = a; e <= b; ++e)
    for (double m : dense ? std::vector<double>{1, 2, 5} : std::vector<double>{1}) {
      const double v = m * std::pow(10.0, e);
      if (v >= lo * 0.999 && v <= hi * 1.001) t.push_back(v);
    }
  if (t.size() < 2) t = {lo, hi};
  return t;
}

// Per pixel column: first, min, max, last (in x order) of a long series.
void thin(const std::vector<double>& x, const std::vector<double>& y, const Scale& sx,
          std::vector<double>& ox, std::vector<double>& oy) {
  const size_t n = x.size();
  if (n <= size_t(4 * (sx.px1 - sx.px0))) {
    ox = x;
    oy = y;
    return;
  }
  size_t i = 0;
  while (i < n) {
    if (!std::isfinite(y[i])) {  // keep gaps
      ox.push_back(x[i]);
      oy.push_back(kNaN);
      ++i;
      continue;
    }
    const double col = std::floor(sx(x[i]));
    size_t j = i, lo = i, hi = i;
    while (j < n && std::isfinite(y[j]) && std::floor(sx(x[j])) == col) {
      if (y[j] < y[lo]) lo = j;
      if (y[j] > y[hi]) hi = j;
      ++j;
    }
    size_t keep[] = {i, std::min(lo, hi), std::max(lo, hi), j - 1};
    size_t last = SIZE_MAX;
    for (size_t k : keep)
      if (k != last) {
        ox.push_back(x[k]);
        oy.push_back(y[k]);
        last = k;
      }
    i = j;
  }
}

std::string axes(const Scale& sx, const Scale& sy, const std::string& x_label,
                 const std::string& y_label, bool integer_x) {
  std::string s;
  const double x0 = sx.px0, x1 = sx.px1, y0 = sy.px0, y1 = sy.px1;  // y0 bottom, y1 top
  const auto xt = nice_ticks(sx.lo, sx.hi, 8, integer_x);
  const auto yt = sy.log ? log_ticks(sy.lo, sy.hi) : nice_ticks(sy.lo, sy.hi, 6);
  s += "<g class=\"grid\">";
  for (double t : yt)
    s += "<line x1=\"" + fmt(x0) + "\" x2=\"" + fmt(x1) + "\" y1=\"" + fmt(sy(t)) + "\" y2=\"" +
         fmt(sy(t)) + "\"/>";
  s += "</g><g class=\"axis\">";
  s += "<line x1=\"" + fmt(x0) + "\" x2=\"" + fmt(x1) + "\" y1=\"" + fmt(y0) + "\" y2=\"" + fmt(y0) + "\"/>";
  s += "<line x1=\"" + fmt(x0) + "\" x2=\"" + fmt(x0) + "\" y1=\"" + fmt(y0) + "\" y2=\"" + fmt(y1) + "\"/>";
  for (double t : xt) {
    s += "<line x1=\"" + fmt(sx(t)) + "\" x2=\"" + fmt(sx(t)) + "\" y1=\"" + fmt(y0) + "\" y2=\"" + fmt(y0 + 5) + "\"/>";
    s += "<text x=\"" + fmt(sx(t)) + "\" y=\"" + fmt(y0 + 19) + "\" text-anchor=\"middle\">" + tick_label(t) + "</text>";
  }
  for (double t : yt)
    s += "<text x=\"" + fmt(x0 - 8) + "\" y=\"" + fmt(sy(t) + 4) + "\" text-anchor=\"end\">" + tick_label(t) + "</text>";
  s += "</g>";
  s += "<text class=\"label\" x=\"" + fmt((x0 + x1) / 2) + "\" y=\"" + fmt(y0 + 40) +
       "\" text-anchor=\"middle\">" + xml_escape(x_label) + "</text>";
  s += "<text class=\"label\" transform=\"translate(18," + fmt((y0 + y1) / 2) +
       ") rotate(-90)\" text-anchor=\"middle\">" + xml_escape(y_label) + "</text>";
  return s;
}

struct LegendItem {
  std::string swatch;  // SVG at (0,0), 16 px wide
  std::string text;
};

std::string legend(const std::vector<LegendItem>& items, double top, double& height) {
  std::string s = "<g class=\"legend\">";
  double x = kLeft, y = top;
  for (const LegendItem& it : items) {
    const double w = 24 + 6.6 * double(it.text.size()) + 18;
    if (x + w > kW - kRight && x > kLeft) {
      x = kLeft;
      y += kLegendRow;
    }
    s += "<g transform=\"translate(" + fmt(x) + "," + fmt(y) + ")\">" + it.swatch + "<text x=\"22\" y=\"4\">" +
         xml_escape(it.text) + "</text></g>";
    x += w;
  }
  height = items.empty() ? 0 : y - top + kLegendRow;
  return s + "</g>";
}

const char* marker_color(MarkerKind k) {
  switch (k) {
    case MarkerKind::spike: return "#d62728";
    case MarkerKind::skip: return "#ff7f0e";
    case MarkerKind::rollback: return "#9467bd";
    case MarkerKind::restart: return "#555555";
  }
  return "#000";
}
const char* marker_name(MarkerKind k) {
  switch (k) {
    case MarkerKind::spike: return "loss spike";
    case MarkerKind::skip: return "skipped update";
    case MarkerKind::rollback: return "rollback";
    case MarkerKind::restart: return "restart (new segment)";
  }
  return "";
}

std::string marker_glyph(MarkerKind k, double x, double y) {
  const std::string c = marker_color(k);
  if (k == MarkerKind::spike)
    return "<path d=\"M" + fmt(x) + " " + fmt(y - 7) + " l6 10 h-12 z\" fill=\"" + c + "\" stroke=\"#fff\" stroke-width=\"0.8\"/>";
  if (k == MarkerKind::skip)
    return "<path d=\"M" + fmt(x - 5) + " " + fmt(y - 5) + " l10 10 M" + fmt(x + 5) + " " + fmt(y - 5) +
           " l-10 10\" stroke=\"" + c + "\" stroke-width=\"2.4\"/>";
  const std::string dash = k == MarkerKind::rollback ? " stroke-dasharray=\"6 4\"" : "";
  return "<line x1=\"" + fmt(x) + "\" x2=\"" + fmt(x) + "\" y1=\"" + fmt(y - 10) + "\" y2=\"" + fmt(y + 10) +
         "\" stroke=\"" + c + "\" stroke-width=\"2\"" + dash + "/>";
}

std::string svg_open(const std::string& id, double height, const std::string& title) {
  return "<svg id=\"" + xml_escape(id) + "\" class=\"chart\" xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 " +
         fmt(kW) + " " + fmt(height) + "\" role=\"img\" aria-label=\"" + xml_escape(title) + "\">";
}

std::string header(const std::string& title, const std::string& data_file) {
  std::string s = "<text class=\"title\" x=\"" + fmt(kLeft) + "\" y=\"24\">" + xml_escape(title) + "</text>";
  if (!data_file.empty())
    s += "<text class=\"source\" x=\"" + fmt(kW - kRight) + "\" y=\"24\" text-anchor=\"end\">data: " +
         xml_escape(data_file) + "</text>";
  return s;
}

}  // namespace

std::string palette_color(size_t i) {
  static const char* kPalette[] = {"#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2",
                                   "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#7f7f7f"};
  return kPalette[i % 10];
}

std::string sequential_color(size_t i, size_t n) {
  // A blue → green → yellow ramp (viridis-like anchors), dark for layer 0.
  static const double kStops[][3] = {{68, 1, 84}, {59, 82, 139}, {33, 145, 140}, {94, 201, 98}, {220, 200, 30}};
  const double t = n <= 1 ? 0.0 : double(i) / double(n - 1);
  const double p = t * 4.0;
  const int k = std::min(3, int(p));
  const double f = p - k;
  char b[16];
  std::snprintf(b, sizeof b, "#%02x%02x%02x", int(kStops[k][0] + f * (kStops[k + 1][0] - kStops[k][0])),
                int(kStops[k][1] + f * (kStops[k + 1][1] - kStops[k][1])),
                int(kStops[k][2] + f * (kStops[k + 1][2] - kStops[k][2])));
  return b;
}

std::vector<double> nice_ticks(double lo, double hi, int target, bool integer) {
  if (!(hi > lo)) return {lo};
  // The 1, 2, 2.5, 5 × 10^k step whose tick count is closest to the target (ties: fewer).
  const double span = hi - lo;
  const int e = int(std::floor(std::log10(span / std::max(1, target))));
  double step = 0, best = std::numeric_limits<double>::infinity();
  for (int k = e - 1; k <= e + 1; ++k)
    for (double m : {1.0, 2.0, 2.5, 5.0}) {
      const double st = m * std::pow(10.0, k);
      if (integer && (st < 1.0 || std::fmod(st, 1.0) != 0.0)) continue;
      const double miss = std::fabs(span / st - target);
      if (miss < best - 1e-9 || (std::fabs(miss - best) <= 1e-9 && st > step)) {
        best = miss;
        step = st;
      }
    }
  if (step == 0) step = 1.0;  // integer axis over a span below one
  std::vector<double> t;
  for (double v = std::ceil(lo / step - 1e-9) * step; v <= hi + step * 1e-9; v += step)
    t.push_back(std::fabs(v) < step * 1e-9 ? 0.0 : v);
  return t;
}

std::string tick_label(double v) {
  char b[32];
  const double a = std::fabs(v);
  if (a == 0) return "0";
  if (a >= 1e9) std::snprintf(b, sizeof b, "%gG", v / 1e9);
  else if (a >= 1e6) std::snprintf(b, sizeof b, "%gM", v / 1e6);
  else if (a >= 1e4) std::snprintf(b, sizeof b, "%gk", v / 1e3);
  else if (a < 1e-3) std::snprintf(b, sizeof b, "%.3g", v);
  else std::snprintf(b, sizeof b, "%.4g", v);
  std::string s = b;
  if (const size_t e = s.find("e-0"); e != std::string::npos) s.erase(e + 2, 1);  // 2.5e-05 → 2.5e-5
  return s;
}

std::string xml_escape(const std::string& s) {
  std::string o;
  for (char c : s) {
    switch (c) {
      case '&': o += "&amp;"; break;
      case '<': o += "&lt;"; break;
      case '>': o += "&gt;"; break;
      case '"': o += "&quot;"; break;
      default: o += c;
    }
  }
  return o;
}

std::string render_svg(const LineChart& c) {
  // Ranges: x over every series and marker; y over the series (stacked: the cumulative sum).
  std::vector<double> xs, ys;
  std::vector<std::vector<double>> cum;  // stacked tops
  for (const ChartSeries& s : c.series) xs.insert(xs.end(), s.x.begin(), s.x.end());
  for (const ChartMarker& m : c.markers) xs.push_back(m.x);
  if (c.stacked && !c.series.empty()) {
    std::vector<double> acc(c.series[0].y.size(), 0.0);
    for (const ChartSeries& s : c.series) {
      for (size_t i = 0; i < acc.size() && i < s.y.size(); ++i)
        acc[i] += std::isfinite(s.y[i]) ? s.y[i] : 0.0;
      cum.push_back(acc);
      ys.insert(ys.end(), acc.begin(), acc.end());
    }
    ys.push_back(0.0);
  } else {
    for (const ChartSeries& s : c.series) ys.insert(ys.end(), s.y.begin(), s.y.end());
    for (const ChartMarker& m : c.markers)
      if (m.kind == MarkerKind::spike || m.kind == MarkerKind::skip) ys.push_back(m.y);
  }
  Scale sx, sy;
  data_range(xs, false, sx.lo, sx.hi);
  data_range(ys, c.log_y, sy.lo, sy.hi);
  sy.log = c.log_y;
  if (!sy.log) {  // a little headroom, and the range snapped to ticks
    const auto t = nice_ticks(sy.lo, sy.hi, 6);
    const double step = t.size() > 1 ? t[1] - t[0] : 0.0;
    if (step > 0) {
      sy.lo = std::min(sy.lo, std::floor(sy.lo / step) * step);
      sy.hi = std::max(sy.hi, std::ceil(sy.hi / step) * step);
    }
  } else {
    sy.lo = std::pow(10.0, std::floor(std::log10(sy.lo) * 4) / 4);
    sy.hi = std::pow(10.0, std::ceil(std::log10(sy.hi) * 4) / 4);
  }
  sx.px0 = kLeft;
  sx.px1 = kW - kRight;
  const double plot_bottom = kH - kBottom;
  sy.px0 = plot_bottom;
  sy.px1 = kTop;

  // Legend first: its height sets the SVG's.
  std::vector<LegendItem> items;
  for (size_t i = 0; i < c.series.size(); ++i) {
    const ChartSeries& s = c.series[i];
    const std::string col = s.color.empty() ? palette_color(i) : s.color;
    std::string sw = s.points || c.stacked
                         ? "<rect x=\"2\" y=\"-5\" width=\"12\" height=\"10\" fill=\"" + col + "\"/>"
                         : "<line x1=\"0\" x2=\"16\" y1=\"0\" y2=\"0\" stroke=\"" + col +
                               "\" stroke-width=\"2.5\"" + (s.dashed ? " stroke-dasharray=\"5 3\"" : "") + "/>";
    items.push_back({sw, s.name});
  }
  for (MarkerKind k : {MarkerKind::spike, MarkerKind::skip, MarkerKind::rollback, MarkerKind::restart})
    if (std::any_of(c.markers.begin(), c.markers.end(), [&](const ChartMarker& m) { return m.kind == k; }))
      items.push_back({marker_glyph(k, 8, 0), marker_name(k)});
  double legend_h = 0;
  const std::string leg = legend(items, kH - 6, legend_h);
  const double height = kH + legend_h;

  std::string s = svg_open(c.id, height, c.title) + header(c.title, c.data_file);
  s += axes(sx, sy, c.x_label, c.y_label, c.integer_x);
  s += "<defs><clipPath id=\"clip-" + xml_escape(c.id) + "\"><rect x=\"" + fmt(kLeft) + "\" y=\"" + fmt(kTop - 12) +
       "\" width=\"" + fmt(kW - kLeft - kRight) + "\" height=\"" + fmt(plot_bottom - kTop + 12) + "\"/></clipPath></defs>";
  s += "<g clip-path=\"url(#clip-" + xml_escape(c.id) + ")\">";
  // Vertical markers under the data.
  for (const ChartMarker& m : c.markers) {
    if (m.kind != MarkerKind::rollback && m.kind != MarkerKind::restart) continue;
    const double x = sx(m.x);
    s += "<line class=\"vmark\" x1=\"" + fmt(x) + "\" x2=\"" + fmt(x) + "\" y1=\"" + fmt(kTop) + "\" y2=\"" +
         fmt(plot_bottom) + "\" stroke=\"" + marker_color(m.kind) + "\" stroke-width=\"1.5\"" +
         (m.kind == MarkerKind::rollback ? " stroke-dasharray=\"6 4\"" : "") + "><title>" +
         xml_escape(m.label) + "</title></line>";
    if (!m.label.empty())
      s += "<text class=\"vlabel\" x=\"" + fmt(x + 4) + "\" y=\"" + fmt(kTop + 10) + "\" fill=\"" +
           marker_color(m.kind) + "\">" + xml_escape(m.label) + "</text>";
  }
  for (size_t i = 0; i < c.series.size(); ++i) {
    const ChartSeries& ser = c.series[i];
    const std::string col = ser.color.empty() ? palette_color(i) : ser.color;
    const std::string op = ser.opacity < 1 ? " opacity=\"" + fmt(ser.opacity) + "\"" : "";
    if (c.stacked) {
      const std::vector<double>& top = cum[i];
      const std::vector<double> zero(top.size(), 0.0);
      const std::vector<double>& bottom = i == 0 ? zero : cum[i - 1];
      std::string d;
      for (size_t k = 0; k < top.size() && k < ser.x.size(); ++k)
        d += (k ? " L" : "M") + fmt(sx(ser.x[k])) + " " + fmt(sy(top[k]));
      for (size_t k = std::min(top.size(), ser.x.size()); k-- > 0;)
        d += " L" + fmt(sx(ser.x[k])) + " " + fmt(sy(bottom[k]));
      s += "<path class=\"series\" d=\"" + d + " Z\" fill=\"" + col + "\" fill-opacity=\"0.85\" stroke=\"none\"><title>" +
           xml_escape(ser.name) + "</title></path>";
      continue;
    }
    std::vector<double> x, y;
    thin(ser.x, ser.y, sx, x, y);
    if (ser.points) {
      s += "<g class=\"series\" fill=\"" + col + "\"" + op + "><title>" + xml_escape(ser.name) + "</title>";
      for (size_t k = 0; k < x.size(); ++k)
        if (usable(y[k], sy.log)) s += "<circle cx=\"" + fmt(sx(x[k])) + "\" cy=\"" + fmt(sy(y[k])) + "\" r=\"3.5\"/>";
      s += "</g>";
      continue;
    }
    std::string d;
    bool pen = false;
    for (size_t k = 0; k < x.size(); ++k) {
      if (!usable(y[k], sy.log)) {
        pen = false;
        continue;
      }
      d += (pen ? " L" : " M") + fmt(sx(x[k])) + " " + fmt(sy(y[k]));
      pen = true;
    }
    s += "<path class=\"series\" d=\"" + d + "\" fill=\"none\" stroke=\"" + col + "\" stroke-width=\"" + fmt(ser.width) + "\"" + op +
         (ser.dashed ? " stroke-dasharray=\"6 4\"" : "") + "><title>" + xml_escape(ser.name) + "</title></path>";
  }
  for (const ChartMarker& m : c.markers) {
    if (m.kind != MarkerKind::spike && m.kind != MarkerKind::skip) continue;
    if (!usable(m.y, sy.log)) continue;
    s += "<g class=\"marker\">" + marker_glyph(m.kind, sx(m.x), sy(std::clamp(m.y, sy.lo, sy.hi))) + "<title>" +
         xml_escape(m.label) + "</title></g>";
  }
  s += "</g>" + leg + "</svg>";
  return s;
}

std::string render_svg(const Heatmap& h) {
  const size_t R = h.rows.size(), C = h.columns.size();
  double lo = std::numeric_limits<double>::infinity(), hi = -lo;
  for (double v : h.values)
    if (usable(v, h.log_scale)) {
      lo = std::min(lo, v);
      hi = std::max(hi, v);
    }
  if (!(lo <= hi)) lo = hi = 1.0;
  if (lo == hi) hi = lo * (h.log_scale ? 10.0 : 1.0) + (h.log_scale ? 0.0 : 1.0);
  const double left = 230, right = 110, top = kTop, bottom = 62;
  const double row_h = std::clamp(360.0 / double(std::max<size_t>(R, 1)), 3.0, 16.0);
  const double plot_h = row_h * double(R);
  const double height = top + plot_h + bottom;
  const double col_w = (kW - left - right) / double(std::max<size_t>(C, 1));
  auto t_of = [&](double v) {
    return h.log_scale ? (std::log10(v) - std::log10(lo)) / (std::log10(hi) - std::log10(lo)) : (v - lo) / (hi - lo);
  };
  std::string s = svg_open(h.id, height, h.title) + header(h.title, h.data_file);
  s += "<g class=\"cells\">";
  for (size_t r = 0; r < R; ++r)
    for (size_t c = 0; c < C; ++c) {
      const double v = h.values[r * C + c];
      if (!usable(v, h.log_scale)) continue;
      const size_t shade = size_t(std::lround(std::clamp(t_of(v), 0.0, 1.0) * 99));
      s += "<rect x=\"" + fmt(left + col_w * double(c)) + "\" y=\"" + fmt(top + row_h * double(r)) + "\" width=\"" +
           fmt(col_w + 0.5) + "\" height=\"" + fmt(row_h + 0.5) + "\" fill=\"" + sequential_color(shade, 100) +
           "\"><title>" + xml_escape(h.rows[r]) + " @ " + tick_label(h.columns[c]) + ": " + tick_label(v) +
           "</title></rect>";
    }
  s += "</g><g class=\"axis\">";
  const bool by_group = row_h < 11.0 && h.row_groups.size() == R;
  if (!by_group) {
    const size_t every = size_t(std::ceil(11.0 / row_h));  // labels at least ~11 px apart
    for (size_t r = 0; r < R; r += every)
      s += "<text x=\"" + fmt(left - 6) + "\" y=\"" + fmt(top + row_h * (double(r) + 0.5) + 4) +
           "\" text-anchor=\"end\">" + xml_escape(h.rows[r]) + "</text>";
  } else {
    double last_label = -1e9;
    for (size_t r = 0; r < R; ++r) {
      if (r > 0 && h.row_groups[r] == h.row_groups[r - 1]) continue;
      const double y = top + row_h * double(r);
      if (r > 0)
        s += "<line x1=\"" + fmt(left - 4) + "\" x2=\"" + fmt(kW - right) + "\" y1=\"" + fmt(y) + "\" y2=\"" +
             fmt(y) + "\" stroke=\"#ffffff\" stroke-width=\"1.5\"/>";
      if (y + 10 - last_label < 12) continue;  // no overlapping labels
      last_label = y + 10;
      s += "<text x=\"" + fmt(left - 6) + "\" y=\"" + fmt(y + 10) + "\" text-anchor=\"end\">" +
           xml_escape(h.row_groups[r]) + "</text>";
    }
  }
  const size_t col_every = size_t(std::ceil(C / 10.0));
  for (size_t c = 0; c < C; c += std::max<size_t>(col_every, 1))
    s += "<text x=\"" + fmt(left + col_w * (double(c) + 0.5)) + "\" y=\"" + fmt(top + plot_h + 18) +
         "\" text-anchor=\"middle\">" + tick_label(h.columns[c]) + "</text>";
  s += "</g>";
  s += "<text class=\"label\" x=\"" + fmt(left + (kW - left - right) / 2) + "\" y=\"" + fmt(top + plot_h + 42) +
       "\" text-anchor=\"middle\">" + xml_escape(h.x_label) + "</text>";
  s += "<text class=\"label\" transform=\"translate(16," + fmt(top + plot_h / 2) + ") rotate(-90)\" text-anchor=\"middle\">" +
       xml_escape(h.y_label) + "</text>";
  // Color bar with its scale.
  const double bx = kW - right + 24, bh = std::max(plot_h, 80.0);
  for (int k = 0; k < 50; ++k)
    s += "<rect x=\"" + fmt(bx) + "\" y=\"" + fmt(top + bh * (1 - (k + 1) / 50.0)) + "\" width=\"14\" height=\"" +
         fmt(bh / 50.0 + 0.5) + "\" fill=\"" + sequential_color(size_t(k * 99 / 49), 100) + "\"/>";
  s += "<g class=\"axis\"><text x=\"" + fmt(bx + 18) + "\" y=\"" + fmt(top + 8) + "\">" + tick_label(hi) +
       "</text><text x=\"" + fmt(bx + 18) + "\" y=\"" + fmt(top + bh) + "\">" + tick_label(lo) + "</text></g>";
  s += "<text class=\"label\" transform=\"translate(" + fmt(kW - 8) + "," + fmt(top + bh / 2) +
       ") rotate(-90)\" text-anchor=\"middle\">" + xml_escape(h.value_label) + "</text>";
  return s + "</svg>";
}

}  // namespace llmpi
