// OpProfile (see op_profile.h): classification of one step's op records, work measures,
// and the JSON form.
#include "bench/perfmodel/op_profile.h"

#include <algorithm>
#include <map>
#include <nlohmann/json.hpp>
#include <tuple>

#include "bench/perfmodel/tool_io.h"
#include "core/error.h"

namespace llmpi::perf {
namespace {

constexpr const char* kPhases[] = {"step",     "embed_fwd", "block_fwd", "head_fwd",
                                   "head_bwd", "block_bwd", "embed_bwd"};
constexpr const char* kClasses[] = {"matmul", "attention", "feature", "row",
                                    "loss",   "embedding", "params"};
constexpr const char* kRoles[] = {"none", "qkv", "attn_out", "mlp_up",
                                  "mlp_down", "head", "act", "rope"};

template <size_t N>
int index_of(const char* const (&names)[N], const std::string& s, const char* what) {
  for (size_t i = 0; i < N; ++i)
    if (s == names[i]) return int(i);
  std::string all;
  for (size_t i = 0; i < N; ++i) all += std::string(i ? ", " : "") + names[i];
  user_error("unknown ", what, " '", s, "' (expected one of: ", all, ")");
}

bool starts_with(const std::string& s, const char* p) { return s.rfind(p, 0) == 0; }

std::string shape_str(int64_t r, int64_t c) { return std::to_string(r) + "x" + std::to_string(c); }

int64_t pre_dim(const ModelConfig& m) { return m.arch == Arch::llama ? 2 * m.d_ff : m.d_ff; }

}  // namespace

const char* phase_name(Phase p) { return kPhases[size_t(p)]; }
const char* class_name(OpClass c) { return kClasses[size_t(c)]; }
const char* role_name(Role r) { return kRoles[size_t(r)]; }
Phase phase_from(const std::string& s) { return Phase(index_of(kPhases, s, "phase")); }
OpClass class_from(const std::string& s) { return OpClass(index_of(kClasses, s, "op class")); }
Role role_from(const std::string& s) { return Role(index_of(kRoles, s, "op role")); }

double work(OpClass c, Role r, const WorkShape& s) {
  const ModelConfig& m = s.model;
  const double N = double(s.B) * double(s.T), tp = double(s.tp);
  const double C = double(m.d_model), D = double(m.head_dim());
  switch (c) {
    case OpClass::matmul: {
      double w = 0;
      switch (r) {
        case Role::qkv: w = C * double(m.qkv_dim()); break;
        case Role::attn_out: w = C * double(m.n_head) * D; break;
        case Role::mlp_up: w = C * double(pre_dim(m)); break;
        case Role::mlp_down: w = C * double(m.d_ff); break;
        case Role::head: w = C * double(m.vocab_size); break;
        default: LLMPI_CHECK(false, "matmul without a weight role: ", role_name(r));
      }
      return 2.0 * N * w / tp;
    }
    case OpClass::attention:
      return double(s.B) * double(m.n_head) * double(s.T) * double(s.T) * D / tp;
    case OpClass::feature:
      return N * double(r == Role::rope ? m.qkv_dim() : m.d_ff) / tp;
    case OpClass::row:
      return N * C / (s.sp ? tp : 1.0);
    case OpClass::loss:
      return N * double(m.vocab_size) / tp;
    case OpClass::embedding:
      return N * C;
    case OpClass::params:
      return 1.0;
  }
  return 0.0;
}

double OpProfile::total_ms() const {
  double t = 0;
  for (const ProfileRow& r : rows) t += r.ms;
  return t;
}

double OpProfile::phase_ms(Phase p) const {
  double t = 0;
  for (const ProfileRow& r : rows)
    if (r.phase == p) t += r.ms;
  return t;
}

Role role_of(const std::string& op, const std::string& shape, const ModelConfig& m) {
  if (starts_with(op, "linear")) {
    const int64_t C = m.d_model;
    if (shape == shape_str(m.vocab_size, C)) return Role::head;
    if (shape == shape_str(m.qkv_dim(), C)) return Role::qkv;
    if (shape == shape_str(C, m.n_head * m.head_dim())) return Role::attn_out;
    if (shape == shape_str(pre_dim(m), C)) return Role::mlp_up;
    if (shape == shape_str(C, m.d_ff)) return Role::mlp_down;
    LLMPI_CHECK(false, op, " with weight ", shape, " is none of the model's linears");
  }
  if (starts_with(op, "rope")) return Role::rope;
  if (starts_with(op, "gelu") || starts_with(op, "swiglu")) return Role::act;
  return Role::none;
}

OpClass class_of(const std::string& op, Phase phase) {
  if (starts_with(op, "linear")) return OpClass::matmul;
  if (starts_with(op, "attention")) return OpClass::attention;
  if (starts_with(op, "rope") || starts_with(op, "gelu") || starts_with(op, "swiglu"))
    return OpClass::feature;
  if (starts_with(op, "embedding")) return OpClass::embedding;
  if (op == "row_logsumexp" || op == "pick_targets" || op == "cross_entropy_backward")
    return OpClass::loss;
  if (phase == Phase::step && (op == "adamw_update" || op == "sum_squares" || op == "fill"))
    return OpClass::params;
  return OpClass::row;
}

// A normalization, plain or with the residual add fused in (LLMPI_FUSED, docs/kernels.md).
static bool is_norm(const std::string& op) {
  return starts_with(op, "norm") || op == "add_norm_forward";
}

std::vector<ProfileRow> classify(std::span<const OpRecord> records, const ModelConfig& m) {
  std::vector<Phase> phase(records.size(), Phase::step);
  Phase state = Phase::step;
  bool seen_embed = false, seen_head_fwd = false, seen_head_bwd = false;
  bool want_final_norm_bwd = false;
  for (size_t i = 0; i < records.size(); ++i) {
    const OpRecord& r = records[i];
    const bool embed = starts_with(r.op, "embedding");
    const bool head = starts_with(r.op, "linear") && role_of(r.op, r.shape, m) == Role::head;
    if (embed && r.op == "embedding_forward") {
      state = Phase::embed_fwd;
      seen_embed = true;
    } else if (embed) {
      state = Phase::embed_bwd;
    } else if (state == Phase::embed_fwd) {
      state = Phase::block_fwd;
    } else if (state == Phase::embed_bwd) {
      state = Phase::step;
    }
    if (head && r.op == "linear_forward") {
      state = Phase::head_fwd;
      seen_head_fwd = true;
      for (size_t j = i; j-- > 0;)  // the final norm: the last norm op before the head
        if (is_norm(records[j].op)) {
          phase[j] = Phase::head_fwd;
          break;
        }
    } else if (r.op == "cross_entropy_backward" || (head && r.op == "linear_backward")) {
      state = Phase::head_bwd;
      seen_head_bwd = true;
      want_final_norm_bwd = head;
    } else if (want_final_norm_bwd && is_norm(r.op)) {
      phase[i] = Phase::head_bwd;  // the final norm's backward closes the head
      state = Phase::block_bwd;
      want_final_norm_bwd = false;
      continue;
    }
    phase[i] = state;
  }
  LLMPI_CHECK(seen_embed && seen_head_fwd && seen_head_bwd,
              "profile records are not one whole training step (embedding ", seen_embed,
              ", head forward ", seen_head_fwd, ", head backward ", seen_head_bwd, ")");
  std::map<std::tuple<int, std::string, std::string>, ProfileRow> by;
  std::vector<std::tuple<int, std::string, std::string>> order;
  for (size_t i = 0; i < records.size(); ++i) {
    const OpRecord& r = records[i];
    const auto key = std::make_tuple(int(phase[i]), r.op, r.shape);
    auto [it, fresh] = by.try_emplace(key);
    ProfileRow& row = it->second;
    if (fresh) {
      order.push_back(key);
      row.phase = phase[i];
      row.op = r.op;
      row.shape = r.shape;
      row.cls = class_of(r.op, phase[i]);
      row.role = role_of(r.op, r.shape, m);
    }
    ++row.calls;
    row.ms += r.ms;
    row.flops += r.flops;
    row.bytes += r.bytes;
  }
  std::vector<ProfileRow> rows;
  for (const auto& k : order) rows.push_back(by.at(k));
  return rows;
}

std::vector<ProfileRow> median_rows(const std::vector<std::vector<ProfileRow>>& steps) {
  LLMPI_CHECK(!steps.empty(), "median of no steps");
  std::vector<ProfileRow> out = steps.front();
  for (size_t i = 0; i < out.size(); ++i) {
    std::vector<double> ms, fl, by;
    for (const auto& s : steps) {
      LLMPI_CHECK(s.size() == out.size() && s[i].op == out[i].op && s[i].phase == out[i].phase &&
                      s[i].shape == out[i].shape,
                  "profiled steps ran different ops (row ", i, ")");
      ms.push_back(s[i].ms);
      fl.push_back(s[i].flops);
      by.push_back(s[i].bytes);
    }
    auto med = [](std::vector<double> v) {
      std::sort(v.begin(), v.end());
      const size_t n = v.size();
      return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
    };
    out[i].ms = med(ms);
    out[i].flops = med(fl);
    out[i].bytes = med(by);
  }
  return out;
}

std::string to_json(const OpProfile& p) {
  nlohmann::ordered_json j;
  j["source"] = p.source;
  j["device"] = p.device;
  const ModelConfig& m = p.model;
  j["model"] = {{"arch", arch_name(m.arch)}, {"vocab_size", m.vocab_size}, {"n_layer", m.n_layer},
                {"n_head", m.n_head},        {"n_kv_head", m.kv_heads()},  {"d_model", m.d_model},
                {"d_ff", m.d_ff},            {"tied_embeddings", m.tied_embeddings}};
  j["batch_size"] = p.B;
  j["seq_len"] = p.T;
  j["params"] = p.params;
  j["step_ms"] = p.step_ms;
  j["copy_gbs"] = p.copy_gbs;
  j["fresh_gbs"] = p.fresh_gbs;
  nlohmann::ordered_json rows = nlohmann::ordered_json::array();
  for (const ProfileRow& r : p.rows)
    rows.push_back({{"phase", phase_name(r.phase)}, {"op", r.op}, {"shape", r.shape},
                    {"class", class_name(r.cls)}, {"role", role_name(r.role)}, {"calls", r.calls},
                    {"ms", r.ms}, {"flops", r.flops}, {"bytes", r.bytes}});
  j["rows"] = rows;
  return j.dump(1) + "\n";
}

OpProfile profile_from_json(const std::string& text, const std::string& name) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    user_error(name, ": not JSON: ", e.what());
  }
  auto need = [&](const nlohmann::json& o, const char* key, const std::string& where) -> const nlohmann::json& {
    if (!o.is_object() || !o.contains(key)) user_error(name, ": missing key '", where, key, "'");
    return o.at(key);
  };
  try {
    OpProfile p;
    p.source = need(j, "source", "").get<std::string>();
    p.device = need(j, "device", "").get<std::string>();
    const nlohmann::json& m = need(j, "model", "");
    const std::string arch = need(m, "arch", "model.").get<std::string>();
    if (arch != "gpt2" && arch != "llama") user_error(name, ": model.arch '", arch, "': expected gpt2 or llama");
    p.model.arch = arch == "llama" ? Arch::llama : Arch::gpt2;
    p.model.vocab_size = need(m, "vocab_size", "model.").get<int64_t>();
    p.model.n_layer = need(m, "n_layer", "model.").get<int64_t>();
    p.model.n_head = need(m, "n_head", "model.").get<int64_t>();
    p.model.n_kv_head = need(m, "n_kv_head", "model.").get<int64_t>();
    p.model.d_model = need(m, "d_model", "model.").get<int64_t>();
    p.model.d_ff = need(m, "d_ff", "model.").get<int64_t>();
    p.model.tied_embeddings = need(m, "tied_embeddings", "model.").get<bool>();
    if (p.model.n_layer < 1 || p.model.n_head < 1 || p.model.d_model % p.model.n_head != 0)
      user_error(name, ": model shape is inconsistent (n_layer ", p.model.n_layer, ", n_head ",
                 p.model.n_head, ", d_model ", p.model.d_model, ")");
    p.B = need(j, "batch_size", "").get<int64_t>();
    p.T = need(j, "seq_len", "").get<int64_t>();
    p.params = need(j, "params", "").get<int64_t>();
    p.step_ms = need(j, "step_ms", "").get<double>();
    p.copy_gbs = need(j, "copy_gbs", "").get<double>();
    p.fresh_gbs = need(j, "fresh_gbs", "").get<double>();
    for (const nlohmann::json& r : need(j, "rows", "")) {
      ProfileRow row;
      row.phase = phase_from(need(r, "phase", "rows[].").get<std::string>());
      row.op = need(r, "op", "rows[].").get<std::string>();
      row.shape = need(r, "shape", "rows[].").get<std::string>();
      row.cls = class_from(need(r, "class", "rows[].").get<std::string>());
      row.role = role_from(need(r, "role", "rows[].").get<std::string>());
      row.calls = need(r, "calls", "rows[].").get<int64_t>();
      row.ms = need(r, "ms", "rows[].").get<double>();
      row.flops = need(r, "flops", "rows[].").get<double>();
      row.bytes = need(r, "bytes", "rows[].").get<double>();
      if (row.ms < 0 || row.calls < 0) user_error(name, ": negative time or calls in row '", row.op, "'");
      p.rows.push_back(std::move(row));
    }
    return p;
  } catch (const nlohmann::json::exception& e) {
    user_error(name, ": wrong type: ", e.what());
  }
}

OpProfile load_profile(const std::string& path) {
  return profile_from_json(read_text(path, "op profile"), path);
}

}  // namespace llmpi::perf
