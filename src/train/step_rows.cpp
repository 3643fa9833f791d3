// StepRows: the pre-training or fine-tuning loader behind one interface (step_rows.h).
#include "train/step_rows.h"

#include "core/error.h"

namespace llmpi {

StepRows::StepRows(const Config& cfg, const TokenDataset& data)
    : T_(cfg.train.seq_len), packing_(cfg.train.packing),
      pairs_(cfg.train.objective == Objective::dpo) {
  if (cfg.train.objective == Objective::lm) {
    lm_.emplace(data, T_, cfg.train.seed);
    lm_val_.emplace(data, T_);
  } else {
    sft_.emplace(data, T_, cfg.train.seed, cfg.train.packing, pairs_);
  }
}

StepRows StepRows::for_eval(const Config& cfg, const TokenDataset& data) {
  Config c = cfg;
  if (data.has_loss_mask()) {
    c.train.objective = Objective::sft;
    c.train.packing = true;
  }
  return StepRows(c, data);
}

int64_t StepRows::n_rows() const { return lm_ ? lm_->n_samples() : sft_->n_rows(); }

void StepRows::fill(int64_t step, int64_t micro_batch, int64_t dp_rank,
                    const BatchLayout& layout, int32_t* ids, int32_t* targets,
                    int32_t* doc_start, std::vector<RowDocument>* docs) const {
  if (lm_) {
    lm_->fill(step, micro_batch, dp_rank, layout, ids, targets);
    return;
  }
  scratch_.resize(size_t(layout.batch_size * T_));
  sft_->fill(step, micro_batch, dp_rank, layout, ids, targets,
             has_documents() ? doc_start : scratch_.data(), docs);
}

void StepRows::fill_val(int64_t batch, int64_t B, int32_t* ids, int32_t* targets,
                        int32_t* doc_start, std::vector<RowDocument>* row_docs) const {
  LLMPI_CHECK(batch >= 0 && B > 0, "val batch ", batch, " of size ", B);
  if (lm_) {
    lm_val_->fill(batch, B, ids, targets);
    return;
  }
  scratch_.resize(size_t(B * T_));
  int32_t* docs = has_documents() ? doc_start : scratch_.data();
  for (int64_t b = 0; b < B; ++b)
    sft_->fill_row((batch * B + b) % sft_->n_rows(), ids + b * T_, targets + b * T_,
                   docs + b * T_, row_docs, b);
}

std::vector<int64_t> StepRows::step_samples(int64_t step, const BatchLayout& layout) const {
  if (lm_) return lm_->step_samples(step, layout);
  std::vector<int64_t> out(static_cast<size_t>(layout.global_samples()));
  for (int64_t j = 0; j < layout.global_samples(); ++j)
    out[static_cast<size_t>(j)] = sft_->order().sample_at(step * layout.global_samples() + j);
  return out;
}

std::string StepRows::describe() const {
  if (lm_) return std::to_string(lm_->n_samples()) + " samples of " + std::to_string(T_);
  return std::to_string(sft_->n_rows()) + " rows of " + std::to_string(T_) + " (" +
         std::to_string(sft_->n_units()) + (pairs_ ? " preference pairs" : " documents") +
         (packing_ ? ", packed)" : ")");
}

}  // namespace llmpi
