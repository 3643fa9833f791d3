#pragma once
// StepRows: where the rows of a training step come from, by [train] objective.
//   lm   pre-training: samples of seq_len + 1 consecutive tokens (data/batch_loader.h); one
//        document per row (no document starts).
//   sft  fine-tuning: rows of whole documents from version 3 shards (data/sft_loader.h), packed
//        several to a row when [train] packing = true; targets only where the loss mask is
//        set (data/sft_targets.h); every row carries its document starts (core/documents.h),
//        so positions restart and attention stays inside each document.
//   dpo  as sft, over preference pairs: a unit is a pair's two adjacent documents (chosen,
//        rejected), always in one row (with packing: several pairs to a row); rows always
//        carry document starts (a pair is two documents) and report their documents
//        (RowDocument) so that the objective can sum log-probabilities per answer.
// Either way the rows of a step are a pure function of (seed, dataset, step): the same on any
// layout (batch_position), so runs reproduce and resume bit for bit.
// Validation rows (fill_val) are unshuffled: batch k holds rows (k·B + b) mod n_rows.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "config/config.h"
#include "data/batch_loader.h"
#include "data/sft_loader.h"
#include "data/token_dataset.h"

namespace llmpi {

class StepRows {
 public:
  // data must outlive this object. UserError for sft on data without documents and mask.
  StepRows(const Config& cfg, const TokenDataset& data);
  // The rows that evaluate a model of `cfg` on `data` (llmpi eval, llmpi analyze --eval):
  // data with a loss mask (fine-tuning shards) is read as packed sft rows, so the loss counts
  // the masked targets only; other data as cfg's objective reads it.
  static StepRows for_eval(const Config& cfg, const TokenDataset& data);

  // Rows carry document starts (sft with packing); otherwise fill leaves doc_start alone and
  // the engine gets none (one document per row: padding after it changes nothing before it).
  bool has_documents() const { return sft_.has_value() && (packing_ || pairs_); }
  // Units are preference pairs (objective = "dpo").
  bool pairs() const { return pairs_; }
  // The fine-tuning loader (sft and dpo), or null (lm).
  const SftLoader* sft() const { return sft_ ? &*sft_ : nullptr; }
  int64_t n_rows() const;
  // The B rows of (step, micro_batch, dp_rank) (0-based step): ids, targets and doc_start of
  // B·T entries each (doc_start written only when has_documents()).
  // docs (sft/dpo, optional) receives the rows' documents.
  void fill(int64_t step, int64_t micro_batch, int64_t dp_rank, const BatchLayout& layout,
            int32_t* ids, int32_t* targets, int32_t* doc_start,
            std::vector<RowDocument>* docs = nullptr) const;
  // Validation batch k of B rows.
  void fill_val(int64_t batch, int64_t B, int32_t* ids, int32_t* targets, int32_t* doc_start,
                std::vector<RowDocument>* docs = nullptr) const;
  // The global row indices of a step, in batch_position order (checkpoint data records).
  std::vector<int64_t> step_samples(int64_t step, const BatchLayout& layout) const;
  // "N samples of T" / "N rows of T (M documents, packed)" for the start-up line.
  std::string describe() const;

 private:
  int64_t T_;
  std::optional<BatchLoader> lm_;
  std::optional<ValLoader> lm_val_;
  std::optional<SftLoader> sft_;
  bool packing_ = true;
  bool pairs_ = false;
  mutable std::vector<int32_t> scratch_;  // document starts nobody reads (sft without packing)
};

}  // namespace llmpi
