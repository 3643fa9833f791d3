// Forward pass of a tiny GPT-2 and a tiny Llama (logits and loss) against an independent
// fp64 reference written here with plain loops: its own LayerNorm/RMSNorm, explicit causal
// softmax attention (GQA: query head h reads kv head h / (Hq/Hkv)), RoPE rotate_half,
// tanh-GELU, SwiGLU, tied/untied head and cross-entropy with ignored targets. It reads the
// same parameter values by name. Run in f64 (tight) and f32 (the training dtype).
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <memory>

#include "model/param_layout.h"
#include "model/transformer.h"
#include "test_model_util.h"

using namespace llmpi;
using namespace llmpi::testing;

namespace {

using Vec = std::vector<double>;

struct Reference {
  const ModelConfig& c;
  std::map<std::string, Vec> w;  // parameter values by name, row-major

  const Vec& p(const std::string& name) const { return w.at(name); }

  // y[n, o] = Σ_i x[n, i] W[o, i] (+ b[o]); x: [N, I].
  Vec linear(const Vec& x, int64_t N, int64_t I, const Vec& W, int64_t O, const Vec* b) const {
    Vec y(static_cast<size_t>(N * O));
    for (int64_t n = 0; n < N; ++n)
      for (int64_t o = 0; o < O; ++o) {
        double s = b ? (*b)[o] : 0.0;
        for (int64_t i = 0; i < I; ++i) s += x[n * I + i] * W[o * I + i];
        y[n * O + o] = s;
      }
    return y;
  }
  Vec norm(const Vec& x, int64_t N, const std::string& prefix) const {
    const int64_t C = c.d_model;
    const Vec& g = p(prefix + ".weight");
    Vec y(x.size());
    for (int64_t n = 0; n < N; ++n) {
      const double* r = &x[n * C];
      double mean = 0, var = 0;
      if (c.arch == Arch::gpt2) {
        for (int64_t i = 0; i < C; ++i) mean += r[i] / C;
        for (int64_t i = 0; i < C; ++i) var += (r[i] - mean) * (r[i] - mean) / C;
      } else {
        for (int64_t i = 0; i < C; ++i) var += r[i] * r[i] / C;  // mean square
      }
      const double rstd = 1.0 / std::sqrt(var + c.norm_eps);
      for (int64_t i = 0; i < C; ++i) {
        y[n * C + i] = (r[i] - mean) * rstd * g[i];
        if (c.arch == Arch::gpt2) y[n * C + i] += p(prefix + ".bias")[i];
      }
    }
    return y;
  }
  // Rotates vector v (length D) of position t in place, pairs (i, i + D/2).
  void rotate_half(double* v, int64_t t) const {
    const int64_t D = c.head_dim();
    for (int64_t i = 0; i < D / 2; ++i) {
      const double ang = t * std::pow(c.rope_theta, -2.0 * i / D);
      const double a = v[i], b = v[i + D / 2];
      v[i] = a * std::cos(ang) - b * std::sin(ang);
      v[i + D / 2] = b * std::cos(ang) + a * std::sin(ang);
    }
  }
  Vec attention(const Vec& h, int64_t B, int64_t T, const std::string& pre) const {
    const int64_t C = c.d_model, D = c.head_dim(), Hq = c.n_head, Hkv = c.kv_heads(), N = B * T;
    const bool bias = c.arch == Arch::gpt2;
    Vec q = linear(h, N, C, p(pre + "q.weight"), Hq * D, bias ? &p(pre + "q.bias") : nullptr);
    Vec k = linear(h, N, C, p(pre + "k.weight"), Hkv * D, bias ? &p(pre + "k.bias") : nullptr);
    Vec v = linear(h, N, C, p(pre + "v.weight"), Hkv * D, bias ? &p(pre + "v.bias") : nullptr);
    if (c.arch == Arch::llama)
      for (int64_t n = 0; n < N; ++n) {
        for (int64_t hd = 0; hd < Hq; ++hd) rotate_half(&q[(n * Hq + hd) * D], n % T);
        for (int64_t hd = 0; hd < Hkv; ++hd) rotate_half(&k[(n * Hkv + hd) * D], n % T);
      }
    Vec att(static_cast<size_t>(N * Hq * D), 0.0);
    for (int64_t b = 0; b < B; ++b)
      for (int64_t hd = 0; hd < Hq; ++hd) {
        const int64_t kvh = hd / (Hq / Hkv);
        for (int64_t t = 0; t < T; ++t) {
          Vec s(static_cast<size_t>(t + 1));
          double mx = -1e300;
          for (int64_t u = 0; u <= t; ++u) {
            double dot = 0;
            for (int64_t d = 0; d < D; ++d)
              dot += q[((b * T + t) * Hq + hd) * D + d] * k[((b * T + u) * Hkv + kvh) * D + d];
            s[u] = dot / std::sqrt(static_cast<double>(D));
            mx = std::max(mx, s[u]);
          }
          double z = 0;
          for (int64_t u = 0; u <= t; ++u) z += (s[u] = std::exp(s[u] - mx));
          for (int64_t u = 0; u <= t; ++u)
            for (int64_t d = 0; d < D; ++d)
              att[((b * T + t) * Hq + hd) * D + d] +=
                  s[u] / z * v[((b * T + u) * Hkv + kvh) * D + d];
        }
      }
    return linear(att, N, Hq * D, p(pre + "out.weight"), C, bias ? &p(pre + "out.bias") : nullptr);
  }
  Vec mlp(const Vec& h, int64_t N, const std::string& pre) const {
    const int64_t C = c.d_model, F = c.d_ff;
    if (c.arch == Arch::gpt2) {
      Vec u = linear(h, N, C, p(pre + "up.weight"), F, &p(pre + "up.bias"));
      for (double& x : u)
        x = 0.5 * x * (1.0 + std::tanh(std::sqrt(2.0 / M_PI) * (x + 0.044715 * x * x * x)));
      return linear(u, N, F, p(pre + "down.weight"), C, &p(pre + "down.bias"));
    }
    const Vec g = linear(h, N, C, p(pre + "gate.weight"), F, nullptr);
    Vec u = linear(h, N, C, p(pre + "up.weight"), F, nullptr);
    for (size_t i = 0; i < u.size(); ++i) u[i] *= g[i] / (1.0 + std::exp(-g[i]));
    return linear(u, N, F, p(pre + "down.weight"), C, nullptr);
  }
  // Logits [N, V].
  Vec logits(const std::vector<int32_t>& ids, int64_t B, int64_t T) const {
    const int64_t C = c.d_model, N = B * T;
    Vec x(static_cast<size_t>(N * C));
    for (int64_t n = 0; n < N; ++n)
      for (int64_t i = 0; i < C; ++i) {
        x[n * C + i] = p("embed.tokens")[ids[n] * C + i];
        if (c.arch == Arch::gpt2) x[n * C + i] += p("embed.positions")[(n % T) * C + i];
      }
    for (int64_t l = 0; l < c.n_layer; ++l) {
      const std::string pre = "layers." + std::to_string(l) + ".";
      const Vec a = attention(norm(x, N, pre + "attn_norm"), B, T, pre + "attn.");
      for (size_t i = 0; i < x.size(); ++i) x[i] += a[i];
      const Vec m = mlp(norm(x, N, pre + "mlp_norm"), N, pre + "mlp.");
      for (size_t i = 0; i < x.size(); ++i) x[i] += m[i];
    }
    const Vec& head = c.tied_embeddings ? p("embed.tokens") : p("head.weight");
    return linear(norm(x, N, "final_norm"), N, C, head, c.vocab_size, nullptr);
  }
};

void check_against_reference(Arch arch, DType dtype, double tol) {
  const ModelConfig cfg = tiny_config(arch);
  auto be = make_host_backend();
  ParamStore store(*be, transformer_params(cfg, StageRange::full(cfg)), dtype);
  randomize_params(*be, store, 21, 0.4);
  Reference ref{cfg, {}};
  for (const ParamInfo& p : store.params()) ref.w[p.name] = to_host(*be, store.master(p.name));

  const int64_t B = 2, T = 7, N = B * T, V = cfg.vocab_size;
  const TokenBatch tb = random_batch(B, T, V, 4, {0, 9, 13});
  Buffer ids = upload_i32(*be, tb.ids), targets = upload_i32(*be, tb.targets);
  const Transformer model(cfg, StageRange::full(cfg), store);
  Activations a = model.alloc_activations(*be, B, T);
  model.forward(*be, a, ids);
  const LossSum loss = model.loss(*be, a, targets);

  const Vec want = ref.logits(tb.ids, B, T);
  const Vec got = to_host(*be, a.logits);
  double max_logit = 0;
  for (double x : want) max_logit = std::max(max_logit, std::abs(x));
  ASSERT_GT(max_logit, 0.5) << "logits too small to make the comparison meaningful";
  for (size_t i = 0; i < want.size(); ++i)
    ASSERT_NEAR(got[i], want[i], tol * (1 + std::abs(want[i]))) << "logit " << i;

  double want_sum = 0;
  int64_t want_count = 0;
  std::vector<float> last;
  for (int64_t n = 0; n < N; ++n) {
    if (tb.targets[n] < 0) continue;
    double mx = -1e300, z = 0;
    for (int64_t v = 0; v < V; ++v) mx = std::max(mx, want[n * V + v]);
    for (int64_t v = 0; v < V; ++v) z += std::exp(want[n * V + v] - mx);
    want_sum += mx + std::log(z) - want[n * V + tb.targets[n]];
    ++want_count;
  }
  EXPECT_EQ(loss.count, want_count);
  EXPECT_EQ(want_count, N - 3);
  EXPECT_NEAR(loss.sum, want_sum, tol * want_sum);

  // Per-token losses (eval) sum to the loss; logits of the last position (sampling).
  const std::vector<double> per_token = model.token_losses(*be, a, targets);
  double s = 0;
  for (int64_t n = 0; n < N; ++n) {
    if (tb.targets[n] < 0) EXPECT_EQ(per_token[n], 0.0);
    s += per_token[n];
  }
  EXPECT_NEAR(s, want_sum, tol * want_sum);
  const std::vector<float> lt = model.logits_at(*be, a, T - 1);
  ASSERT_EQ(static_cast<int64_t>(lt.size()), B * V);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t v = 0; v < V; ++v) {
      const double w = want[(b * T + T - 1) * V + v];
      EXPECT_NEAR(lt[b * V + v], w, 1e-5 * (1 + std::abs(w)));
    }
}

}  // namespace

TEST(ModelReference, Gpt2ForwardF64) { check_against_reference(Arch::gpt2, DType::f64, 1e-10); }
TEST(ModelReference, Gpt2ForwardF32) { check_against_reference(Arch::gpt2, DType::f32, 2e-5); }
TEST(ModelReference, LlamaForwardF64) { check_against_reference(Arch::llama, DType::f64, 1e-10); }
TEST(ModelReference, LlamaForwardF32) { check_against_reference(Arch::llama, DType::f32, 2e-5); }
