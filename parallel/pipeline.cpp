// Pipeline schedule execution: slots of in-flight micro-batches, the passes of
// pipeline_order, and the point-to-point traffic between chunks (see pipeline.h).
#include "parallel/pipeline.h"

#include <algorithm>
#include <memory>

#include "core/error.h"

namespace llmpi {

// One micro-batch in flight on one chunk. Index i of ChunkState::slots pairs with
// (*PipelineChunk::acts)[i].
struct PipelineSchedule::Slot {
  int64_t micro = -1;    // the micro-batch it holds; -1 when free
  Buffer ids, targets;   // i32 [B·T]; chunks with the embedding or the head
  Buffer dout;           // d(loss)/d(output), received from the next chunk (not the last)
  Buffer din;            // d(loss)/d(input), sent to the previous chunk (not the first)
  Request recv_in;       // the input activation (not the first chunk)
  Request send_out;      // the output activation (not the last chunk)
  Request recv_dout;     // into dout
  Request send_din;      // from din

  void complete() {
    recv_in.wait();
    send_out.wait();
    recv_dout.wait();
    send_din.wait();
  }
};

struct PipelineSchedule::ChunkState {
  std::vector<std::unique_ptr<Slot>> slots;
};

namespace {

constexpr int kActivationTag = 0, kGradientTag = 1;
int tag_for(int64_t receiving_chunk, int kind) { return static_cast<int>(2 * receiving_chunk + kind); }

// Micro-batch m's document starts on a chunk's activations (skipped while neither has any).
void set_micro_documents(Backend& be, const Transformer& model, Activations& a,
                         std::span<const int32_t> doc_start, int64_t m) {
  const int64_t N = a.B * a.T;
  if (doc_start.empty() && a.doc_start.tensor().empty()) return;
  model.set_documents(be, a, doc_start.empty() ? doc_start : doc_start.subspan(size_t(m * N), size_t(N)));
}

}  // namespace

PipelineSchedule::PipelineSchedule(Collectives& pp, const ParallelSection& par, int pp_rank,
                                   int64_t B, int64_t T)
    : pp_(pp),
      pp_size_(par.pp),
      pp_rank_(pp_rank),
      virtual_stages_(par.virtual_stages),
      micro_batches_(par.micro_batches),
      B_(B),
      T_(T) {
  LLMPI_CHECK(pp.size() == par.pp && pp.rank() == pp_rank, "pp group of size ", pp.size(),
              " rank ", pp.rank(), " for pp = ", par.pp, " rank ", pp_rank);
  LLMPI_CHECK(B > 0 && T > 0, "micro-batch ", B, " × ", T);
  order_ = pipeline_order(pp_size_, pp_rank_, micro_batches_, virtual_stages_);
  state_.resize(static_cast<size_t>(virtual_stages_));
}

PipelineSchedule::~PipelineSchedule() = default;  // slots complete their requests (RAII)

size_t PipelineSchedule::take_slot(Backend& be, PipelineChunk& c, ChunkState& s,
                                   int64_t micro) {
  ++in_flight_;
  max_in_flight_ = std::max(max_in_flight_, in_flight_);
  for (size_t i = 0; i < s.slots.size(); ++i)
    if (s.slots[i]->micro < 0) {
      s.slots[i]->complete();  // its previous micro-batch's sends (safe: see the header)
      s.slots[i]->micro = micro;
      return i;
    }
  // A new slot: its activations, token buffers and gradient buffers.
  LLMPI_CHECK(c.acts->size() >= s.slots.size(), "activation pool shrank");
  if (c.acts->size() == s.slots.size()) c.acts->push_back(c.model->alloc_activations(be, B_, T_));
  const Activations& a = (*c.acts)[s.slots.size()];
  const StageRange& r = c.model->range();
  auto slot = std::make_unique<Slot>();
  if (r.embedding || r.head) {
    slot->ids = be.alloc(Shape{B_ * T_}, DType::i32);
    slot->targets = be.alloc(Shape{B_ * T_}, DType::i32);
  }
  if (!r.head) slot->dout = be.alloc(a.output().shape, a.output().dtype);
  if (!r.embedding) slot->din = be.alloc(a.input.tensor().shape, a.input.tensor().dtype);
  slot->micro = micro;
  s.slots.push_back(std::move(slot));
  return s.slots.size() - 1;
}

void PipelineSchedule::post_input(Backend& be, std::span<PipelineChunk> chunks,
                                  const PipelineStep& step) {
  const int64_t g = global(step.chunk);
  if (g == 0) return;  // the embedding chunk makes its own input
  ChunkState& s = state_[static_cast<size_t>(step.chunk)];
  PipelineChunk& c = chunks[static_cast<size_t>(step.chunk)];
  const size_t i = take_slot(be, c, s, step.micro);
  const int src = static_cast<int>((pp_rank_ - 1 + pp_size_) % pp_size_);
  s.slots[i]->recv_in = pp_.irecv((*c.acts)[i].input.tensor(), src, tag_for(g, kActivationTag));
}

LossSum PipelineSchedule::run(Backend& be, std::span<PipelineChunk> chunks,
                              const PipelineLoad& load, const LossScale& loss_scale,
                              std::span<const int32_t> doc_start) {
  LLMPI_CHECK(static_cast<int64_t>(chunks.size()) == virtual_stages_, chunks.size(),
              " chunks for virtual_stages = ", virtual_stages_);
  for (const PipelineChunk& c : chunks)
    LLMPI_CHECK(c.model && c.store && c.acts && c.ws, "incomplete PipelineChunk");
  const int64_t last_chunk = pp_size_ * virtual_stages_ - 1;
  const int prev = static_cast<int>((pp_rank_ - 1 + pp_size_) % pp_size_);
  const int next = static_cast<int>((pp_rank_ + 1) % pp_size_);
  in_flight_ = max_in_flight_ = 0;
  LossSum loss;

  // The slot holding (micro, chunk), and its activations.
  auto find = [&](const PipelineStep& step) -> std::pair<Slot*, Activations*> {
    ChunkState& s = state_[static_cast<size_t>(step.chunk)];
    for (size_t i = 0; i < s.slots.size(); ++i)
      if (s.slots[i]->micro == step.micro)
        return {s.slots[i].get(), &(*chunks[static_cast<size_t>(step.chunk)].acts)[i]};
    return {nullptr, nullptr};
  };
  // Posts the input receive of the first forward after position `from` that needs one.
  auto prefetch_after = [&](size_t from) {
    for (size_t k = from + 1; k < order_.size(); ++k)
      if (order_[k].op == PipeOp::forward) {
        post_input(be, chunks, order_[k]);
        return;
      }
  };

  // The first forward's input is posted before the loop; every forward posts the next.
  for (size_t k = 0; k < order_.size(); ++k)
    if (order_[k].op == PipeOp::forward) {
      post_input(be, chunks, order_[k]);
      break;
    }

  for (size_t k = 0; k < order_.size(); ++k) {
    const PipelineStep& step = order_[k];
    PipelineChunk& c = chunks[static_cast<size_t>(step.chunk)];
    const Transformer& model = *c.model;
    const int64_t g = global(step.chunk);
    const StageRange& r = model.range();
    LLMPI_CHECK(r.embedding == (g == 0) && r.head == (g == last_chunk), "local chunk ",
                step.chunk, " (global ", g, ") has the wrong stage range");

    if (step.op == PipeOp::forward) {
      if (g == 0) take_slot(be, c, state_[static_cast<size_t>(step.chunk)], step.micro);
      auto [slot, a] = find(step);
      LLMPI_CHECK(slot, "no slot for micro-batch ", step.micro, " on chunk ", step.chunk);
      if (r.embedding || r.head) load(step.micro, slot->ids, slot->targets);
      slot->recv_in.wait();
      set_micro_documents(be, model, *a, doc_start, step.micro);
      model.forward(be, *a, r.embedding ? slot->ids.tensor() : Tensor{});
      if (r.head) {
        const LossSum l = model.loss(be, *a, slot->targets);
        loss.sum += l.sum;
        loss.count += l.count;
      } else {
        be.synchronize();  // the output is complete before the network reads it
        slot->send_out = pp_.isend(a->output(), next, tag_for(g + 1, kActivationTag));
        slot->recv_dout = pp_.irecv(slot->dout, next, tag_for(g, kGradientTag));
      }
      prefetch_after(k);
    } else {
      auto [slot, a] = find(step);
      LLMPI_CHECK(slot, "backward of micro-batch ", step.micro, " on chunk ", step.chunk,
                  " before its forward");
      const Tensor ids = r.embedding ? slot->ids.tensor() : Tensor{};
      if (r.head) {
        model.backward_loss(be, *a, *c.ws, ids, slot->targets,
                            loss_scale.of_micro(step.micro, a->B * a->T));
      } else {
        slot->recv_dout.wait();
        model.backward(be, *a, *c.ws, ids, slot->dout);
      }
      if (!r.embedding) {
        // The workspace is reused by the next backward: send from the slot's own buffer.
        be.copy(slot->din, model.input_grad(*c.ws, *a));
        be.synchronize();
        slot->send_din = pp_.isend(slot->din, prev, tag_for(g - 1, kGradientTag));
      }
      slot->micro = -1;  // free; its sends complete before reuse or at the end of the step
      --in_flight_;
    }
  }
  for (ChunkState& s : state_)
    for (auto& slot : s.slots) {
      LLMPI_CHECK(slot->micro < 0, "micro-batch ", slot->micro, " still in flight after the step");
      slot->complete();
    }
  LLMPI_CHECK(in_flight_ == 0, in_flight_, " micro-batches in flight after the step");
  return loss;
}

LossSum PipelineSchedule::forward_only(Backend& be, std::span<PipelineChunk> chunks,
                                       const PipelineLoad& load, int64_t micro_batches,
                                       std::span<const int32_t> doc_start,
                                       std::vector<double>* token_losses) {
  LLMPI_CHECK(!token_losses || micro_batches == 1, "per-token losses of ", micro_batches,
              " micro-batches");
  LLMPI_CHECK(static_cast<int64_t>(chunks.size()) == virtual_stages_, chunks.size(),
              " chunks for virtual_stages = ", virtual_stages_);
  const int64_t last_chunk = pp_size_ * virtual_stages_ - 1;
  const int prev = static_cast<int>((pp_rank_ - 1 + pp_size_) % pp_size_);
  const int next = static_cast<int>((pp_rank_ + 1) % pp_size_);
  const int64_t run_max = max_in_flight_;  // a statistic of run(), not of this
  LossSum loss;
  // Every rank runs (micro, global chunk) in increasing lexicographic order, which is
  // consistent with the data flow, so blocking receives cannot deadlock.
  for (int64_t m = 0; m < micro_batches; ++m)
    for (int64_t j = 0; j < virtual_stages_; ++j) {
      PipelineChunk& c = chunks[static_cast<size_t>(j)];
      ChunkState& s = state_[static_cast<size_t>(j)];
      const int64_t g = global(j);
      const StageRange& r = c.model->range();
      in_flight_ = 0;
      const size_t i = take_slot(be, c, s, m);  // completes the slot's previous send
      Slot& slot = *s.slots[i];
      Activations& a = (*c.acts)[i];
      if (r.embedding || r.head) load(m, slot.ids, slot.targets);
      if (g > 0) pp_.recv(a.input, prev, tag_for(g, kActivationTag));
      set_micro_documents(be, *c.model, a, doc_start, m);
      c.model->forward(be, a, r.embedding ? slot.ids.tensor() : Tensor{});
      if (r.head) {
        const LossSum l = c.model->loss(be, a, slot.targets, token_losses);
        loss.sum += l.sum;
        loss.count += l.count;
      }
      if (g < last_chunk) {
        be.synchronize();
        slot.send_out = pp_.isend(a.output(), next, tag_for(g + 1, kActivationTag));
      }
      slot.micro = -1;
    }
  for (ChunkState& s : state_)
    for (auto& slot : s.slots) slot->complete();
  in_flight_ = 0;
  max_in_flight_ = run_max;
  return loss;
}

void sync_tied_embedding(Backend& be, Collectives& embedding, std::span<PipelineChunk> chunks) {
  if (embedding.size() == 1) return;
  const ParamStore* holder = nullptr;
  for (const PipelineChunk& c : chunks) {
    const StageRange& r = c.model->range();
    if ((r.embedding || r.head) && c.store->contains("embed.tokens")) {
      LLMPI_CHECK(!holder, "two local chunks hold embed.tokens");
      holder = c.store;
    }
  }
  LLMPI_CHECK(holder, "a rank of the embedding group without embed.tokens");
  be.synchronize();  // gradients complete before the collective reads them
  embedding.all_reduce(holder->grad("embed.tokens"));
}

void sync_tied_embedding(Backend& be, Topology& topo, const ModelConfig& cfg,
                         std::span<PipelineChunk> chunks) {
  if (!cfg.tied_embeddings || topo.layout().pp == 1 || !topo.in_embedding_group()) return;
  sync_tied_embedding(be, topo.embedding(), chunks);
}

}  // namespace llmpi
