#pragma once
// SftLoader: training rows for fine-tuning from version 3 shards (documents + loss mask).
// A unit is one document (SFT) or a preference pair's two adjacent documents (DPO: chosen,
// then rejected), kept whole. Rows of T tokens:
//   packing on:  units in dataset order, next fit — a unit that does not fit in what is left
//                of the current row starts the next one;
//   packing off: one unit per row.
// The rest of a row is padding (token 0, not in the loss, a document of its own). A unit
// longer than T is a UserError naming it (prepare with --max-tokens). Rows are the samples:
// their order is SampleOrder over the rows (seed), and a step's rows are taken as BatchLoader
// takes samples (batch_position), so the data of a step is independent of the layout.
// Each row gives ids [T], targets [T] (data/sft_targets.h: the mask shifted with the labels,
// nothing across documents) and doc_start [T] (core/documents.h), and for DPO the documents
// it holds (RowDocument).
#include <cstdint>
#include <vector>

#include "data/batch_loader.h"
#include "data/sample_order.h"
#include "data/token_dataset.h"

namespace llmpi {

// A document placed in a row: tokens [begin, begin + length) of the row.
struct RowDocument {
  int64_t row = 0;            // row of the micro-batch (0..B-1)
  int64_t begin = 0, length = 0;
  int64_t unit = 0;           // global unit (document or pair) index
  bool chosen = true;         // pairs: the chosen (true) or rejected (false) answer
};

class SftLoader {
 public:
  // pairs: units are preference pairs (an even number of documents).
  SftLoader(const TokenDataset& data, int64_t seq_len, uint64_t seed, bool packing,
            bool pairs);

  int64_t seq_len() const { return T_; }
  const TokenDataset& dataset() const { return data_; }
  int64_t n_rows() const { return static_cast<int64_t>(row_begin_.size()) - 1; }
  int64_t n_units() const { return static_cast<int64_t>(unit_docs_.size()) - 1; }
  const SampleOrder& order() const { return order_; }

  // Row `row` (0..n_rows-1) into ids, targets, doc_start (each T entries); docs (optional)
  // receives its documents with RowDocument::row = out_row.
  void fill_row(int64_t row, int32_t* ids, int32_t* targets, int32_t* doc_start,
                std::vector<RowDocument>* docs = nullptr, int64_t out_row = 0) const;
  // The B rows of (step, micro_batch, dp_rank) under layout, like BatchLoader::fill.
  void fill(int64_t step, int64_t micro_batch, int64_t dp_rank, const BatchLayout& layout,
            int32_t* ids, int32_t* targets, int32_t* doc_start,
            std::vector<RowDocument>* docs = nullptr) const;

 private:
  const TokenDataset& data_;
  int64_t T_;
  bool pairs_;
  std::vector<int64_t> doc_offsets_;  // the dataset's document starts, then its size
  std::vector<int64_t> unit_docs_;    // unit u = documents [unit_docs_[u], unit_docs_[u + 1])
  std::vector<int64_t> row_begin_;    // row r = units [row_begin_[r], row_begin_[r + 1])
  SampleOrder order_;
};

}  // namespace llmpi
