// The α-β collective model (see comm_model.h).
#include "bench/perfmodel/comm_model.h"

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>

#include "bench/perfmodel/tool_io.h"
#include "core/error.h"

namespace llmpi::perf {
namespace {

constexpr const char* kNames[] = {"all_reduce", "reduce_scatter", "all_gather", "broadcast", "p2p"};

double log2_steps(int p) { return p <= 1 ? 0.0 : std::ceil(std::log2(double(p))); }

}  // namespace

const char* coll_name(Coll c) { return kNames[size_t(c)]; }

Coll coll_from(const std::string& s) {
  for (Coll c : kColls)
    if (s == coll_name(c)) return c;
  user_error("unknown collective '", s, "' (expected all_reduce, reduce_scatter, all_gather, broadcast or p2p)");
}

AlphaBeta fit_alpha_beta(std::span<const CommPoint> pts) {
  LLMPI_CHECK(!pts.empty(), "α-β fit of no points");
  AlphaBeta r;
  if (pts.size() == 1) {
    r.alpha = pts[0].seconds;
    return r;
  }
  // Weighted normal equations for t = α + β·S with w = 1/t².
  double sw = 0, sx = 0, sxx = 0, sy = 0, sxy = 0;
  for (const CommPoint& p : pts) {
    LLMPI_CHECK(p.seconds > 0, "α-β fit: a time of ", p.seconds, " s");
    const double w = 1.0 / (p.seconds * p.seconds);
    sw += w, sx += w * p.bytes, sxx += w * p.bytes * p.bytes;
    sy += w * p.seconds, sxy += w * p.bytes * p.seconds;
  }
  const double det = sw * sxx - sx * sx;
  if (std::abs(det) < 1e-300) {
    r.alpha = sy / sw;
  } else {
    r.alpha = (sxx * sy - sx * sxy) / det;
    r.beta = (sw * sxy - sx * sy) / det;
  }
  // Both are physical (a latency, an inverse bandwidth): on noisy points the unconstrained
  // optimum may cross zero; then the best fit with that parameter at 0.
  if (r.alpha < 0) r.alpha = 0, r.beta = sxy / sxx;
  if (r.beta < 0) r.beta = 0, r.alpha = sy / sw;
  for (const CommPoint& p : pts)
    r.max_rel = std::max(r.max_rel, std::abs(r.alpha + r.beta * p.bytes - p.seconds) / p.seconds);
  return r;
}

double CommTable::seconds(Coll c, double bytes, int group_size) const {
  if (group_size <= 1) return 0.0;
  LLMPI_CHECK(group_size == group, "measured collectives of ", group, " ranks, asked for ",
              group_size, " (", source, ")");
  auto it = points.find(c);
  LLMPI_CHECK(it != points.end() && !it->second.empty(), coll_name(c), " was not measured (", source, ")");
  const std::vector<CommPoint>& v = it->second;
  if (bytes <= v.front().bytes || v.size() == 1) return v.front().seconds;
  size_t i = 1;
  while (i + 1 < v.size() && v[i].bytes < bytes) ++i;
  const CommPoint& a = v[i - 1];
  const CommPoint& b = v[i];
  const double slope = (b.seconds - a.seconds) / (b.bytes - a.bytes);
  return std::max(a.seconds + slope * (bytes - a.bytes), 0.0);
}

std::string to_json(const CommTable& t) {
  nlohmann::ordered_json j;
  j["source"] = t.source;
  j["group"] = t.group;
  nlohmann::ordered_json kinds = nlohmann::ordered_json::object();
  for (const auto& [c, pts] : t.points) {
    nlohmann::ordered_json a = nlohmann::ordered_json::array();
    for (const CommPoint& p : pts) a.push_back({p.bytes, p.seconds});
    const AlphaBeta f = fit_alpha_beta(pts);
    kinds[coll_name(c)] = {{"points", a}, {"alpha_s", f.alpha}, {"beta_s_per_byte", f.beta},
                           {"fit_max_rel_error", f.max_rel}};
  }
  j["collectives"] = kinds;
  return j.dump(1) + "\n";
}

CommTable comm_from_json(const std::string& text, const std::string& name) {
  try {
    const nlohmann::json j = nlohmann::json::parse(text);
    CommTable t;
    if (!j.contains("source") || !j.contains("group") || !j.contains("collectives"))
      user_error(name, ": expected keys 'source', 'group' and 'collectives'");
    t.source = j.at("source").get<std::string>();
    t.group = j.at("group").get<int>();
    if (t.group < 2) user_error(name, ": 'group' must be >= 2, got ", t.group);
    for (const auto& [k, v] : j.at("collectives").items()) {
      const Coll c = coll_from(k);
      if (!v.contains("points")) user_error(name, ": collectives.", k, " has no 'points'");
      std::vector<CommPoint> pts;
      for (const auto& p : v.at("points")) {
        if (!p.is_array() || p.size() != 2) user_error(name, ": collectives.", k, ".points: expected [bytes, seconds] pairs");
        const CommPoint q{p[0].get<double>(), p[1].get<double>()};
        if (q.bytes < 0 || !(q.seconds > 0)) user_error(name, ": collectives.", k, ": a point with bytes ", q.bytes, ", seconds ", q.seconds);
        pts.push_back(q);
      }
      if (pts.empty()) user_error(name, ": collectives.", k, ": no points");
      std::sort(pts.begin(), pts.end(), [](const CommPoint& a, const CommPoint& b) { return a.bytes < b.bytes; });
      t.points[c] = std::move(pts);
    }
    return t;
  } catch (const nlohmann::json::exception& e) {
    user_error(name, ": not a collective table: ", e.what());
  }
}

CommTable load_comm(const std::string& path) {
  return comm_from_json(read_text(path, "collective table"), path);
}

double link_seconds(Coll c, double S, int p, const Link& l) {
  if (p <= 1 && c != Coll::p2p) return 0.0;
  LLMPI_CHECK(l.bytes_per_s > 0, "a link without bandwidth");
  const double frac = double(p - 1) / double(p), steps = log2_steps(p);
  switch (c) {
    case Coll::all_reduce: return 2 * steps * l.alpha + 2 * frac * S / l.bytes_per_s;
    case Coll::reduce_scatter:
    case Coll::all_gather: return steps * l.alpha + frac * S / l.bytes_per_s;
    case Coll::broadcast: return steps * l.alpha + S / l.bytes_per_s;
    case Coll::p2p: return l.alpha + S / l.bytes_per_s;
  }
  return 0.0;
}

double cluster_seconds(Coll c, double S, const GroupSpan& g, const Cluster& k) {
  if (g.size <= 1 && c != Coll::p2p) return 0.0;
  const bool inter = c == Coll::p2p ? g.stride >= k.per_node : g.crosses_nodes(k.per_node);
  return link_seconds(c, S, std::max(g.size, 2), inter ? k.inter : k.intra);
}

double CommCost::seconds(Coll c, double bytes, const GroupSpan& g) const {
  if (table_) return g.size <= 1 ? 0.0 : table_->seconds(c, bytes, g.size);
  return cluster_seconds(c, bytes, g, *cluster_);
}

std::string CommCost::describe() const {
  if (table_) return "measured: " + table_->source;
  char b[200];
  std::snprintf(b, sizeof b, "cluster: %d GPUs per node, intra α %.1f µs %.0f GB/s, inter α %.1f µs %.0f GB/s",
                cluster_->per_node, cluster_->intra.alpha * 1e6, cluster_->intra.bytes_per_s / 1e9,
                cluster_->inter.alpha * 1e6, cluster_->inter.bytes_per_s / 1e9);
  return b;
}

}  // namespace llmpi::perf
