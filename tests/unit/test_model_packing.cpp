// Packing without cross-document attention, at the model level: a batch whose rows hold
// several documents (Transformer::set_documents) gives the same loss sum, counted targets and
// parameter gradients as the same documents run one by one, unpacked, for both
// architectures (gpt2: learned positions restart; llama: RoPE positions restart) and every
// recomputation mode. f64 on the host backend, so "the same" is to ~1e-12.
// Targets: each document predicts its own next tokens; the last token of a document has no
// target (-1) in both runs, so nothing is learned across a boundary.
#include <gtest/gtest.h>

#include <cmath>
#include <memory>

#include "core/documents.h"
#include "model/param_layout.h"
#include "model/transformer.h"
#include "test_model_util.h"

using namespace llmpi;
using namespace llmpi::testing;

namespace {

constexpr int64_t kT = 12;
// Two rows of kT tokens, each packed with documents of these lengths (a one-token document
// included: it has no target at all).
const std::vector<std::vector<int64_t>> kRows = {{3, 5, 4}, {7, 1, 4}};

struct Doc {
  std::vector<int32_t> ids, targets;
};

std::vector<Doc> make_docs(int64_t V) {
  std::vector<Doc> docs;
  const uint64_t key = rng_key(41, "docs");
  uint64_t counter = 0;
  for (const auto& row : kRows)
    for (int64_t len : row) {
      Doc d;
      for (int64_t i = 0; i < len; ++i)
        d.ids.push_back(static_cast<int32_t>(rng_bits(key, counter++) % uint64_t(V)));
      for (int64_t i = 0; i < len; ++i)
        d.targets.push_back(i + 1 < len ? d.ids[static_cast<size_t>(i + 1)] : -1);
      docs.push_back(std::move(d));
    }
  return docs;
}

struct RunResult {
  LossSum loss;
  std::vector<double> grads;
};

// Loss sum (scale 1) and the gradients it gives.
RunResult run_batch(Backend& be, const Transformer& model, ParamStore& store, int64_t B, int64_t T,
              const std::vector<int32_t>& ids, const std::vector<int32_t>& targets,
              const std::vector<int32_t>& doc_start) {
  Activations a = model.alloc_activations(be, B, T);
  Workspace ws = model.alloc_workspace(be, B, T);
  model.set_documents(be, a, doc_start);
  Buffer id = upload_i32(be, ids), tg = upload_i32(be, targets);
  store.zero_grads(be);
  model.forward(be, a, id);
  RunResult r;
  r.loss = model.loss(be, a, tg);
  model.backward_loss(be, a, ws, id, tg, 1.0);
  r.grads = to_host(be, store.grads());
  return r;
}

double max_rel_diff(const std::vector<double>& a, const std::vector<double>& b) {
  double d = 0, scale = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    d = std::max(d, std::fabs(a[i] - b[i]));
    scale = std::max(scale, std::fabs(b[i]));
  }
  return d / scale;
}

TEST(ModelPacking, PackedBatchEqualsDocumentsRunAlone) {
  for (Arch arch : {Arch::gpt2, Arch::llama})
    for (Recompute rc : {Recompute::none, Recompute::selective, Recompute::full}) {
      SCOPED_TRACE(std::string(arch_name(arch)) + " recompute " + recompute_name(rc));
      ModelConfig cfg = tiny_config(arch);
      cfg.max_seq_len = kT;
      cfg.recompute = rc;
      auto be = make_host_backend();
      ParamStore store(*be, transformer_params(cfg, StageRange::full(cfg)), DType::f64);
      randomize_params(*be, store, 9);
      const Transformer model(cfg, StageRange::full(cfg), store);
      const std::vector<Doc> docs = make_docs(cfg.vocab_size);

      std::vector<int32_t> ids, targets, doc_start;
      for (const Doc& d : docs) {
        ids.insert(ids.end(), d.ids.begin(), d.ids.end());
        targets.insert(targets.end(), d.targets.begin(), d.targets.end());
      }
      for (const auto& row : kRows) {
        const std::vector<int32_t> r = doc_start_from_lengths(row, kT);
        doc_start.insert(doc_start.end(), r.begin(), r.end());
      }
      const RunResult packed = run_batch(*be, model, store, 2, kT, ids, targets, doc_start);

      RunResult alone;
      alone.grads.assign(packed.grads.size(), 0.0);
      for (const Doc& d : docs) {
        const int64_t len = static_cast<int64_t>(d.ids.size());
        const RunResult r = run_batch(*be, model, store, 1, len, d.ids, d.targets, {});
        alone.loss.sum += r.loss.sum;
        alone.loss.count += r.loss.count;
        for (size_t i = 0; i < r.grads.size(); ++i) alone.grads[i] += r.grads[i];
      }
      EXPECT_EQ(packed.loss.count, 12 + 12 - 6);  // every token but each document's last
      EXPECT_EQ(packed.loss.count, alone.loss.count);
      EXPECT_NEAR(packed.loss.sum, alone.loss.sum, 1e-11 * std::fabs(alone.loss.sum));
      EXPECT_LE(max_rel_diff(packed.grads, alone.grads), 1e-11);

      // The same tokens without document boundaries compute something else (the test can
      // fail), and set_documents({}) returns to one document per row.
      const RunResult joined = run_batch(*be, model, store, 2, kT, ids, targets, {});
      EXPECT_GT(std::fabs(joined.loss.sum - alone.loss.sum), 1e-3);
      Activations a = model.alloc_activations(*be, 2, kT);
      model.set_documents(*be, a, doc_start);
      model.set_documents(*be, a, {});
      Buffer id = upload_i32(*be, ids), tg = upload_i32(*be, targets);
      model.forward(*be, a, id);
      EXPECT_EQ(model.loss(*be, a, tg).sum, joined.loss.sum);
    }
}

TEST(ModelPacking, RejectsBrokenDocumentStarts) {
  ModelConfig cfg = tiny_config(Arch::llama);
  auto be = make_host_backend();
  ParamStore store(*be, transformer_params(cfg, StageRange::full(cfg)), DType::f64);
  const Transformer model(cfg, StageRange::full(cfg), store);
  Activations a = model.alloc_activations(*be, 1, 4);
  EXPECT_THROW(model.set_documents(*be, a, std::vector<int32_t>{0, 0, 1, 1}), InternalError);
  EXPECT_THROW(model.set_documents(*be, a, std::vector<int32_t>{0, 0, 2}), InternalError);
  EXPECT_NO_THROW(model.set_documents(*be, a, std::vector<int32_t>{0, 0, 2, 2}));
}

}  // namespace
