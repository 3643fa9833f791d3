// The report's sections from the checkpoint series: the data→checkpoint map, weight
// dynamics (norms per layer, ‖ΔW‖/‖W‖ per tensor between consecutive checkpoints, cosine
// similarity to the final checkpoint), the loss over checkpoints and memorization over time.
// Tables: checkpoints (one row per checkpoint, whole-model values), weights (per tensor),
// weights_by_layer (per tensor group), memorization (per sample and checkpoint) and
// memorization_by_group (the chart's means).
#include <algorithm>
#include <cmath>
#include <limits>
#include <cstdio>
#include <map>

#include "analysis/report.h"
#include "analysis/svg_chart.h"
#include "analysis/tensor_groups.h"
#include "io/journal.h"

namespace llmpi {

namespace {

const double kNaN = std::numeric_limits<double>::quiet_NaN();

std::string file_name(const std::string& path) {
  const size_t s = path.find_last_of('/');
  return s == std::string::npos ? path : path.substr(s + 1);
}

// Whole-model or group values from per-tensor sums; `in` selects the tensors.
struct Sums {
  double sq = 0, prev_sq = 0, delta_sq = 0, dot = 0, final_sq = 0;
  double norm() const { return std::sqrt(sq); }
  double delta_ratio() const { return std::sqrt(delta_sq) / std::sqrt(prev_sq); }
  // One square root of the product: sqrt(fl(x·x)) is x exactly in IEEE arithmetic, so the
  // final checkpoint's cosine with itself is 1 exactly (√x·√x need not be x).
  double cosine() const { return dot / std::sqrt(sq * final_sq); }
};

Sums sums(const WeightDynamics& w, size_t c, const std::vector<bool>& in) {
  Sums s;
  const size_t C = w.steps.size();
  for (size_t t = 0; t < w.tensors.size(); ++t) {
    if (!in[t]) continue;
    s.sq += w.at(w.sq_norm, c, t);
    s.prev_sq += c > 0 ? w.at(w.sq_norm, c - 1, t) : kNaN;
    s.delta_sq += w.at(w.sq_delta, c, t);
    s.dot += w.at(w.dot_final, c, t);
    s.final_sq += w.at(w.sq_norm, C - 1, t);
  }
  return s;
}

LineChart ckpt_chart(const std::string& id, const std::string& title, const std::string& y,
                     const std::string& data) {
  LineChart c;
  c.id = id;
  c.title = title;
  c.x_label = "step of the checkpoint";
  c.y_label = y;
  c.data_file = data;
  return c;
}

void weights_section(const AnalysisInputs& in, Report& r, Table& ckpts_whole) {
  const WeightDynamics& w = in.weights;
  const size_t C = w.steps.size(), P = w.tensors.size();
  const TensorGroups g = group_tensors(w.tensors);
  const size_t G = g.names.size();
  Table tw{"weights", "one row per (checkpoint, parameter tensor)",
           {"step", "tensor", "numel", "norm", "delta_ratio", "cosine_to_final"}, {}};
  Table tg{"weights_by_layer", "one row per (checkpoint, tensor group); a group's tensors combined as one vector",
           {"step", "group", "norm", "delta_ratio", "cosine_to_final"}, {}};
  std::vector<ChartSeries> norms(G), cos(G);
  for (size_t k = 0; k < G; ++k) {
    norms[k].name = cos[k].name = g.names[k];
    norms[k].color = cos[k].color = g.is_layer[k] ? sequential_color(k, G) : palette_color(k + 3);
  }
  ChartSeries whole_cos{"whole model", {}, {}, "#111111", false, false, 1.0, 3.0};
  Heatmap heat;
  heat.id = "chart-delta-heatmap";
  heat.title = "Update between consecutive checkpoints, per tensor: ‖W_c − W_prev‖ / ‖W_prev‖";
  heat.x_label = "step of the checkpoint (compared with the one before)";
  heat.y_label = "parameter tensor";
  heat.value_label = "‖ΔW‖ / ‖W‖ (log scale)";
  heat.data_file = "data/weights.csv";
  std::vector<size_t> order(P);
  for (size_t t = 0; t < P; ++t) order[t] = t;
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return g.index[a] < g.index[b]; });
  for (size_t t : order) {
    heat.rows.push_back(w.tensors[t]);
    heat.row_groups.push_back(g.names[g.index[t]]);
  }
  for (size_t c = 1; c < C; ++c) heat.columns.push_back(double(w.steps[c]));
  heat.values.assign(P * (C > 1 ? C - 1 : 0), kNaN);

  for (size_t c = 0; c < C; ++c) {
    for (size_t t = 0; t < P; ++t) {
      std::vector<bool> one(P, false);
      one[t] = true;
      const Sums s = sums(w, c, one);
      tw.add({w.steps[c], w.tensors[t], w.numel[t], s.norm(), s.delta_ratio(), s.cosine()});
    }
    for (size_t k = 0; k < G; ++k) {
      std::vector<bool> sel(P);
      for (size_t t = 0; t < P; ++t) sel[t] = g.index[t] == k;
      const Sums s = sums(w, c, sel);
      tg.add({w.steps[c], g.names[k], s.norm(), s.delta_ratio(), s.cosine()});
      norms[k].x.push_back(double(w.steps[c]));
      norms[k].y.push_back(s.norm());
      cos[k].x.push_back(double(w.steps[c]));
      cos[k].y.push_back(s.cosine());
    }
    const Sums all = sums(w, c, std::vector<bool>(P, true));
    whole_cos.x.push_back(double(w.steps[c]));
    whole_cos.y.push_back(all.cosine());
    ckpts_whole.add({w.steps[c], all.norm(), all.delta_ratio(), all.cosine()});
    if (c > 0)
      for (size_t row = 0; row < P; ++row) {
        std::vector<bool> one(P, false);
        one[order[row]] = true;
        heat.values[row * (C - 1) + (c - 1)] = sums(w, c, one).delta_ratio();
      }
  }
  ReportSection sec{"weights", "Weights across checkpoints",
                    "Read from the checkpoint files (global tensors, whatever layout saved them), one tensor at a "
                    "time. Layers are combined as one vector per layer.",
                    {}};
  LineChart n = ckpt_chart("chart-weight-norms", "Weight norm per layer", "L2 norm", "data/weights_by_layer.csv");
  n.series = norms;
  sec.blocks.push_back(render_svg(n));
  if (C > 1) sec.blocks.push_back(render_svg(heat));
  LineChart k = ckpt_chart("chart-cosine", "Cosine similarity to the final checkpoint", "cosine similarity",
                           "data/weights_by_layer.csv");
  k.series = cos;
  k.series.push_back(whole_cos);  // last: drawn over the layers it sums
  sec.blocks.push_back(render_svg(k));
  r.sections.push_back(std::move(sec));
  r.tables.push_back(std::move(tw));
  r.tables.push_back(std::move(tg));
}

void probes_section(const AnalysisInputs& in, Report& r) {
  const ProbeResults& p = in.probes;
  const size_t C = p.steps.size(), S = p.samples.size();
  if (std::any_of(p.eval_loss.begin(), p.eval_loss.end(), [](double v) { return std::isfinite(v); })) {
    ReportSection sec{"eval", "Loss over checkpoints",
                      "Every checkpoint evaluated on the same " + std::to_string(p.eval_tokens) + " tokens of " +
                          p.eval_description + ", as in LLM360's loss-over-checkpoints curves.",
                      {}};
    LineChart c = ckpt_chart("chart-eval-loss", "Validation loss of each checkpoint", "loss (nats/token)",
                             "data/checkpoints.csv");
    ChartSeries s{"loss on the --eval shard", {}, {}, "#e15759", false, false, 1.0};
    for (size_t i = 0; i < C; ++i) {
      s.x.push_back(double(p.steps[i]));
      s.y.push_back(p.eval_loss[i]);
    }
    ChartSeries dots = s;
    dots.name = "checkpoints";
    dots.points = true;
    c.series = {s, dots};
    sec.blocks.push_back(render_svg(c));
    r.sections.push_back(std::move(sec));
  }
  if (S == 0 || std::none_of(p.memorization.begin(), p.memorization.end(), [](double v) { return std::isfinite(v); }))
    return;
  Table tm{"memorization", "one row per (probed training sample, checkpoint): the fraction of its continuation "
                           "reproduced greedily",
           {"sample", "seen_by_step", "checkpoint_step", "score"}, {}};
  for (size_t s = 0; s < S; ++s)
    for (size_t c = 0; c < C; ++c)
      tm.add({p.samples[s], p.sample_step[s], p.steps[c], p.memorization[c * S + s]});
  // Groups: the checkpoint intervals the samples came from, merged into at most 8 bands.
  std::vector<int64_t> ids(p.sample_checkpoint);
  std::sort(ids.begin(), ids.end());
  ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
  const size_t bands = std::min<size_t>(8, ids.size());
  std::map<int64_t, size_t> band_of;
  for (size_t i = 0; i < ids.size(); ++i) band_of[ids[i]] = i * bands / ids.size();
  Table tg{"memorization_by_group", "mean memorization score per (checkpoint, group of samples seen in the same "
                                    "checkpoint interval)",
           {"checkpoint_step", "group", "seen_from_step", "seen_to_step", "samples", "mean_score"}, {}};
  LineChart ch = ckpt_chart("chart-memorization", "Memorization over time",
                            "fraction of a " + std::to_string(p.continuation) + "-token continuation reproduced",
                            "data/memorization_by_group.csv");
  for (size_t b = 0; b < bands; ++b) {
    int64_t lo = INT64_MAX, hi = 0;
    for (size_t s = 0; s < S; ++s)
      if (band_of[p.sample_checkpoint[s]] == b) {
        lo = std::min(lo, p.sample_step[s]);
        hi = std::max(hi, p.sample_step[s]);
      }
    ChartSeries line;
    line.name = lo == hi ? "seen by step " + std::to_string(lo) : "seen by steps " + std::to_string(lo) + "–" + std::to_string(hi);
    line.color = sequential_color(b, bands);
    for (size_t c = 0; c < C; ++c) {
      double sum = 0;
      int64_t n = 0;
      for (size_t s = 0; s < S; ++s)
        if (band_of[p.sample_checkpoint[s]] == b && std::isfinite(p.memorization[c * S + s])) {
          sum += p.memorization[c * S + s];
          ++n;
        }
      const double mean = n ? sum / double(n) : kNaN;
      line.x.push_back(double(p.steps[c]));
      line.y.push_back(mean);
      tg.add({p.steps[c], int64_t(b), lo, hi, n, mean});
    }
    ch.series.push_back(line);
  }
  ReportSection sec{"memorization", "Memorization over time",
                    "LLM360's memorization score: for training samples picked from the data→checkpoint map, the "
                    "fraction of a " + std::to_string(p.continuation) + "-token continuation each checkpoint "
                    "reproduces greedily from the sample's first " + std::to_string(p.prompt) +
                    " tokens; one line per group of samples seen in the same part of training.",
                    {render_svg(ch)}};
  r.sections.push_back(std::move(sec));
  r.tables.push_back(std::move(tm));
  r.tables.push_back(std::move(tg));
}

}  // namespace

void add_checkpoint_sections(const AnalysisInputs& in, Report& r) {
  const CheckpointSeries& s = in.series;
  int64_t bytes = 0;
  for (const SeriesCheckpoint& c : s.checkpoints) bytes += c.bytes;
  char line[160];
  std::snprintf(line, sizeof line, "%zu analyzed (%.1f MB), %zu rejected", s.checkpoints.size(),
                double(bytes) / 1e6, s.rejected.size());
  r.summary.push_back({"checkpoints", line});
  for (const SeriesProblem& p : s.rejected) r.notes.push_back(p.path + " left out: " + p.reason);
  for (const SeriesProblem& p : in.weights.problems) r.notes.push_back(p.path + ": " + p.reason);
  for (const std::string& n : in.probes.notes) r.notes.push_back(n);
  if (s.checkpoints.empty()) return;

  // Whole-model weight values per checkpoint, joined into the checkpoints table below.
  Table whole{"", "", {"step", "norm", "delta_ratio", "cosine_to_final"}, {}};
  const bool weights = !in.weights.tensors.empty() && in.weights.steps.size() == s.checkpoints.size();
  if (weights) weights_section(in, r, whole);

  Table t{"checkpoints", "one row per checkpoint: what it is, which data it saw (the data→checkpoint map), "
                         "whole-model weight values and its loss on --eval",
          {"step", "file", "segment", "tokens_seen", "bytes", "layout", "data_first_step", "data_last_step",
           "data_steps", "skipped_steps", "samples", "unique_samples", "min_sample", "max_sample", "norm", "delta_ratio", "cosine_to_final",
           "eval_loss"},
          {}};
  std::vector<std::vector<std::string>> rows;
  for (size_t i = 0; i < s.checkpoints.size(); ++i) {
    const SeriesCheckpoint& c = s.checkpoints[i];
    const bool w = i < whole.rows.size();
    const double ev = i < in.probes.eval_loss.size() ? in.probes.eval_loss[i] : kNaN;
    t.add({c.step, file_name(c.path), c.segment, c.tokens_seen, c.bytes, layout_text(c.layout), c.data_first_step,
           c.data_last_step, c.data_steps, c.skipped_steps, c.samples, c.unique_samples, c.min_sample, c.max_sample,
           w ? whole.rows[i][1] : Cell(kNaN), w ? whole.rows[i][2] : Cell(kNaN), w ? whole.rows[i][3] : Cell(kNaN), ev});
    rows.push_back({std::to_string(c.step), layout_text(c.layout), std::to_string(c.bytes / 1000) + " kB",
                    (c.data_steps ? std::to_string(c.data_first_step) + "–" + std::to_string(c.data_last_step) : "none") +
                        (c.skipped_steps ? " (" + std::to_string(c.skipped_steps) + " skipped)" : ""),
                    std::to_string(c.samples), std::to_string(c.unique_samples),
                    c.samples ? std::to_string(c.min_sample) + "–" + std::to_string(c.max_sample) : ""});
  }
  ReportSection map{"data", "Checkpoints and the data they saw",
                    "Each checkpoint records the global sample indices of every step since the previous save "
                    "(LLM360's data→checkpoint map); samples of steps whose data a rollback skipped are not "
                    "counted. A gap between one row's last step and the next row's first means a checkpoint "
                    "in between was deleted by retention.",
                    {html_table({"step", "saved on", "size", "steps recorded", "samples", "unique", "sample indices"},
                                rows, "numbers")}};
  r.sections.insert(r.sections.end() - (weights ? 1 : 0), std::move(map));  // before the weights
  r.tables.push_back(std::move(t));
  probes_section(in, r);
}

}  // namespace llmpi
