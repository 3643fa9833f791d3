// The report's sections from the logbook: per-step curves (loss, learning rate, gradient
// norm, throughput, time split, memory) with spikes, skipped updates, rollbacks and restarts
// marked; per-layer statistics; the lineage and the journal. Tables: steps (every logbook
// field, unchanged), events, layer_stats.
// Redone steps: a step trained again after a restart or rollback has a row per segment; the
// curves follow the latest one (the history that produced the final model) and draw the
// superseded rows faintly.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <map>

#include "analysis/logbook_tables.h"
#include "analysis/report.h"
#include "analysis/svg_chart.h"
#include "analysis/tensor_groups.h"
#include "io/logbook_markdown.h"

namespace llmpi {

namespace {

const double kNaN = std::numeric_limits<double>::quiet_NaN();

// Index of the latest row of each step (highest segment, then last written).
std::vector<size_t> effective_rows(const std::vector<StepMetrics>& steps) {
  std::map<int64_t, size_t> latest;
  for (size_t i = 0; i < steps.size(); ++i) {
    auto it = latest.find(steps[i].step);
    if (it == latest.end() || steps[i].segment >= steps[it->second].segment) latest[steps[i].step] = i;
  }
  std::vector<size_t> out;
  for (const auto& [s, i] : latest) out.push_back(i);
  return out;
}

ChartSeries series_of(const std::string& name, const std::vector<StepMetrics>& steps,
                      const std::vector<size_t>& rows, double StepMetrics::*member) {
  ChartSeries s;
  s.name = name;
  for (size_t i : rows) {
    s.x.push_back(double(steps[i].step));
    s.y.push_back(steps[i].*member);
  }
  return s;
}

struct Marks {
  std::vector<ChartMarker> vertical;  // rollbacks and restarts
};

Marks vertical_marks(const std::vector<StepMetrics>& steps, const std::vector<Event>& events) {
  Marks m;
  std::map<int64_t, bool> rollback_segment;
  for (const Event& e : events)
    if (e.type == "rollback") {
      const int64_t to = e.details.value("to_step", int64_t(-1));
      m.vertical.push_back({MarkerKind::rollback, double(e.step), 0.0,
                            "rollback at step " + std::to_string(e.step) + " → " + std::to_string(to)});
    } else if (e.type == "resume" && e.details.value("reason", std::string()) == "rollback") {
      rollback_segment[e.segment] = true;
    }
  for (const SegmentSummary& g : summarize_segments(steps, events))
    if (g.segment > 0 && g.rows > 0 && !rollback_segment[g.segment])
      m.vertical.push_back({MarkerKind::restart, double(g.first_step - 1), 0.0, "segment " + std::to_string(g.segment)});
  return m;
}

// Spike and skip markers at the plotted value of `member` (non-finite: the top of the data).
std::vector<ChartMarker> point_marks(const std::vector<StepMetrics>& steps, double StepMetrics::*member) {
  double top = -std::numeric_limits<double>::infinity();
  for (const StepMetrics& s : steps)
    if (std::isfinite(s.*member)) top = std::max(top, s.*member);
  std::vector<ChartMarker> out;
  for (const StepMetrics& s : steps) {
    const double y = std::isfinite(s.*member) ? s.*member : top;
    const std::string at = "step " + std::to_string(s.step) + " (segment " + std::to_string(s.segment) + ")";
    if (s.spike) out.push_back({MarkerKind::spike, double(s.step), y, "spike at " + at});
    if (s.skipped) out.push_back({MarkerKind::skip, double(s.step), y, "update skipped at " + at});
  }
  return out;
}

LineChart step_chart(const std::string& id, const std::string& title, const std::string& y_label) {
  LineChart c;
  c.id = id;
  c.title = title;
  c.x_label = "step";
  c.y_label = y_label;
  c.data_file = "data/steps.csv";
  return c;
}

bool any_finite(const std::vector<StepMetrics>& steps, double StepMetrics::*member) {
  return std::any_of(steps.begin(), steps.end(), [&](const StepMetrics& s) { return std::isfinite(s.*member); });
}

// The median MFU of the steps that trained, or "n/a" and why (docs/logbook-format.md, `mfu`).
std::string mfu_summary(const std::vector<StepMetrics>& steps) {
  std::vector<double> v;
  for (const StepMetrics& s : steps)
    if (std::isfinite(s.mfu) && s.tokens_per_s > 0) v.push_back(s.mfu);
  if (v.empty())
    return steps.empty() ? "n/a: no step rows"
                         : "n/a: the peak FLOP/s of the run's device is not known (the host backend, or a "
                           "GPU outside llmpi's table)";
  std::nth_element(v.begin(), v.begin() + std::ptrdiff_t(v.size() / 2), v.end());
  char buf[96];
  std::snprintf(buf, sizeof buf, "%.1f %% (median of %zu steps)", 100.0 * v[v.size() / 2], v.size());
  return buf;
}

ReportSection curves_section(const LogbookContents& lb, double grad_clip) {
  const auto& steps = lb.steps;
  const std::vector<size_t> eff = effective_rows(steps);
  std::vector<size_t> superseded;
  {
    std::vector<bool> keep(steps.size(), false);
    for (size_t i : eff) keep[i] = true;
    for (size_t i = 0; i < steps.size(); ++i)
      if (!keep[i]) superseded.push_back(i);
  }
  const Marks marks = vertical_marks(steps, lb.events);
  ReportSection sec{"training", "Training curves",
                    "Per-step metrics from logbook.h5. Steps trained again after a restart or a rollback "
                    "are drawn from their latest segment; the superseded first attempts are drawn faintly. "
                    "Markers: loss spikes, skipped updates, rollbacks and restarts (new segments).",
                    {}};
  auto with_marks = [&](LineChart c, double StepMetrics::*member, bool points) {
    c.markers = marks.vertical;
    if (points) {
      const auto p = point_marks(steps, member);
      c.markers.insert(c.markers.end(), p.begin(), p.end());
    }
    return c;
  };
  {
    LineChart c = step_chart("chart-loss", "Loss", "loss (nats/token)");
    c.series.push_back(series_of("training loss", steps, eff, &StepMetrics::loss));
    if (!superseded.empty()) {
      ChartSeries s = series_of("superseded (redone later)", steps, superseded, &StepMetrics::loss);
      s.color = "#9a9a9a";
      s.points = true;
      s.opacity = 0.6;
      c.series.push_back(s);
    }
    if (any_finite(steps, &StepMetrics::val_loss)) {
      ChartSeries v = series_of("validation loss", steps, eff, &StepMetrics::val_loss);
      v.points = true;
      v.color = "#e15759";
      c.series.push_back(v);
    }
    sec.blocks.push_back(render_svg(with_marks(c, &StepMetrics::loss, true)));
  }
  {
    LineChart c = step_chart("chart-lr", "Learning rate", "learning rate");
    c.series.push_back(series_of("learning rate", steps, eff, &StepMetrics::lr));
    sec.blocks.push_back(render_svg(with_marks(c, &StepMetrics::lr, false)));
  }
  {
    LineChart c = step_chart("chart-grad-norm", "Gradient norm before clipping", "global L2 norm (log scale)");
    c.log_y = true;
    c.series.push_back(series_of("gradient norm", steps, eff, &StepMetrics::grad_norm));
    if (grad_clip > 0 && !eff.empty()) {
      ChartSeries clip{"clip threshold (train.grad_clip)", {double(steps[eff.front()].step), double(steps[eff.back()].step)},
                       {grad_clip, grad_clip}, "#7f7f7f", false, true, 1.0};
      c.series.push_back(clip);
    }
    sec.blocks.push_back(render_svg(with_marks(c, &StepMetrics::grad_norm, true)));
  }
  {
    LineChart c = step_chart("chart-throughput", "Throughput", "tokens per second (all ranks)");
    c.series.push_back(series_of("tokens/s", steps, eff, &StepMetrics::tokens_per_s));
    sec.blocks.push_back(render_svg(with_marks(c, &StepMetrics::tokens_per_s, false)));
  }
  if (any_finite(steps, &StepMetrics::mfu)) {
    LineChart c = step_chart("chart-mfu", "Model FLOPs utilization", "MFU (fraction of peak)");
    c.series.push_back(series_of("MFU", steps, eff, &StepMetrics::mfu));
    sec.blocks.push_back(render_svg(with_marks(c, &StepMetrics::mfu, false)));
  }
  {
    LineChart c = step_chart("chart-time-split", "Where the time of a step goes", "seconds per step");
    c.stacked = true;
    const std::pair<const char*, double StepMetrics::*> parts[] = {
        {"data", &StepMetrics::time_data_s},           {"forward", &StepMetrics::time_forward_s},
        {"backward", &StepMetrics::time_backward_s},   {"optimizer", &StepMetrics::time_optimizer_s},
        {"communication (exposed)", &StepMetrics::time_comm_s},
        {"checkpoint stall", &StepMetrics::time_checkpoint_s}};
    ChartSeries other{"other", {}, {}, "#bab0ac", false, false, 1.0};
    for (size_t k = 0; k < std::size(parts); ++k) {
      ChartSeries s = series_of(parts[k].first, steps, eff, parts[k].second);
      s.color = palette_color(k);
      c.series.push_back(s);
    }
    for (size_t i : eff) {
      double sum = 0;
      for (const auto& p : parts) sum += std::isfinite(steps[i].*p.second) ? steps[i].*p.second : 0.0;
      other.x.push_back(double(steps[i].step));
      other.y.push_back(std::max(0.0, steps[i].time_step_s - sum));
    }
    c.series.push_back(other);
    sec.blocks.push_back(render_svg(c));
  }
  if (any_finite(steps, &StepMetrics::peak_memory_bytes)) {
    LineChart c = step_chart("chart-memory", "Peak device memory", "bytes (maximum over ranks)");
    c.series.push_back(series_of("peak memory", steps, eff, &StepMetrics::peak_memory_bytes));
    sec.blocks.push_back(render_svg(c));
  }
  return sec;
}

// Per-layer statistics, aggregated per tensor group (tensor_groups.h).
ReportSection layers_section(const LogbookContents& lb) {
  ReportSection sec{"layers", "Per-layer statistics (logbook)",
                    "Recorded every logbook.layer_stats_every steps on the sharded state. Per layer: the norm of "
                    "its gradient, and the size of its update relative to its weights, ‖ΔW‖/‖W‖ (tensors of a "
                    "layer combined as one vector); per block: the RMS of its output activations.",
                    {}};
  const TensorGroups g = group_tensors(lb.schema.params);
  const size_t G = g.names.size();
  std::vector<ChartSeries> grad(G), upd(G), act(size_t(lb.schema.blocks));
  for (size_t k = 0; k < G; ++k) {
    grad[k].name = upd[k].name = g.names[k];
    grad[k].color = upd[k].color = g.is_layer[k] ? sequential_color(k, G) : palette_color(k + 3);
  }
  for (size_t b = 0; b < act.size(); ++b) {
    act[b].name = "block " + std::to_string(b);
    act[b].color = sequential_color(b, act.size());
  }
  for (const LayerStats& r : lb.layers) {
    std::vector<double> g2(G, 0.0), w2(G, 0.0), u2(G, 0.0);
    for (size_t t = 0; t < lb.schema.params.size(); ++t) {
      const size_t k = g.index[t];
      g2[k] += r.grad_norm[t] * r.grad_norm[t];
      w2[k] += r.param_norm[t] * r.param_norm[t];
      u2[k] += std::pow(r.update_ratio[t] * r.param_norm[t], 2);
    }
    for (size_t k = 0; k < G; ++k) {
      grad[k].x.push_back(double(r.step));
      grad[k].y.push_back(std::sqrt(g2[k]));
      upd[k].x.push_back(double(r.step));
      upd[k].y.push_back(w2[k] > 0 ? std::sqrt(u2[k] / w2[k]) : kNaN);
    }
    for (size_t b = 0; b < act.size() && b < r.activation_rms.size(); ++b) {
      act[b].x.push_back(double(r.step));
      act[b].y.push_back(r.activation_rms[b]);
    }
  }
  auto chart = [&](const char* id, const char* title, const char* y, std::vector<ChartSeries> s, bool log) {
    LineChart c = step_chart(id, title, y);
    c.data_file = "data/layer_stats.csv";
    c.log_y = log;
    c.series = std::move(s);
    return render_svg(c);
  };
  sec.blocks.push_back(chart("chart-layer-grad", "Gradient norm per layer", "L2 norm (log scale)", grad, true));
  sec.blocks.push_back(chart("chart-layer-update", "Update size per layer", "‖ΔW‖ / ‖W‖ per step (log scale)", upd, true));
  sec.blocks.push_back(chart("chart-activation-rms", "Activation RMS per block", "RMS of the block output", act, false));
  return sec;
}

}  // namespace

void add_training_sections(const AnalysisInputs& in, Report& r) {
  if (!in.logbook) return;
  const LogbookContents& lb = *in.logbook;
  r.tables.push_back(steps_table(lb.steps));
  r.tables.push_back(events_table(lb.events));
  const auto segs = summarize_segments(lb.steps, lb.events);
  int64_t skipped = 0, spikes = 0, rollbacks = 0;
  for (const StepMetrics& s : lb.steps) {
    skipped += s.skipped;
    spikes += s.spike;
  }
  for (const Event& e : lb.events) rollbacks += e.type == "rollback";
  r.summary.push_back({"logbook", std::to_string(lb.steps.size()) + " step rows in " + std::to_string(segs.size()) +
                                      " segment(s), " + std::to_string(lb.events.size()) + " events"});
  r.summary.push_back({"spikes / skipped updates / rollbacks",
                       std::to_string(spikes) + " / " + std::to_string(skipped) + " / " + std::to_string(rollbacks)});
  r.summary.push_back({"MFU", mfu_summary(lb.steps)});
  if (!lb.steps.empty()) r.sections.push_back(curves_section(lb, in.grad_clip));
  if (!lb.layers.empty()) {
    r.sections.push_back(layers_section(lb));
    r.tables.push_back(layer_stats_table(lb));
  }
  ReportSection story{"lineage", "Lineage and journal",
                      "How the run unfolded: one line per segment (a launch, a resume, or a restart after a "
                      "rollback), then every journal event.",
                      {}};
  std::vector<std::vector<std::string>> lines;
  for (const std::string& l : lineage_lines(lb.events, segs)) lines.push_back({l});
  story.blocks.push_back(html_table({"segment"}, lines, "lineage"));
  std::vector<std::vector<std::string>> rows;
  for (const Event& e : lb.events)
    rows.push_back({utc_time_text(e.time_unix), std::to_string(e.segment), e.step >= 0 ? std::to_string(e.step) : "",
                    e.type, render_sentence(e)});
  story.blocks.push_back(html_table({"time (UTC)", "segment", "step", "event", "what happened"}, rows, "journal"));
  r.sections.push_back(std::move(story));
}

}  // namespace llmpi
