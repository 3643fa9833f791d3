// SftLoader: units, next-fit packing into rows, and row assembly (sft_loader.h).
#include "data/sft_loader.h"

#include <algorithm>

#include "core/error.h"
#include "data/sft_targets.h"

namespace llmpi {

namespace {

std::vector<int64_t> check_documents(const TokenDataset& data) {
  if (!data.has_documents() || !data.has_loss_mask())
    user_error(data.describe(), ": not fine-tuning data (version 3 shards with documents and a ",
               "loss mask); write it with `llmpi prepare --format sft`");
  return data.document_offsets();
}

}  // namespace

SftLoader::SftLoader(const TokenDataset& data, int64_t seq_len, uint64_t seed, bool packing,
                     bool pairs)
    : data_(data), T_(seq_len), pairs_(pairs), doc_offsets_(check_documents(data)),
      order_(1, seed) {
  LLMPI_CHECK(seq_len > 0, "seq_len ", seq_len);
  const int64_t docs = static_cast<int64_t>(doc_offsets_.size()) - 1;
  const int64_t per_unit = pairs ? 2 : 1;
  if (docs % per_unit != 0)
    user_error(data.describe(), ": ", docs, " documents, not whole preference pairs");
  for (int64_t d = 0; d <= docs; d += per_unit) unit_docs_.push_back(d);
  row_begin_.push_back(0);
  int64_t used = 0;  // tokens of the current row
  for (int64_t u = 0; u < n_units(); ++u) {
    const int64_t first = doc_offsets_[unit_docs_[u]], len = doc_offsets_[unit_docs_[u + 1]] - first;
    if (len > T_)
      user_error(data.describe(), ": ", pairs ? "preference pair " : "document ", u,
                 " (tokens ", first, "..", first + len, ") has ", len,
                 " tokens, more than seq_len ", T_,
                 ": raise seq_len or prepare with --max-tokens ", pairs ? T_ / 2 : T_);
    if (u > 0 && (!packing || used + len > T_)) {
      row_begin_.push_back(u);
      used = 0;
    }
    used += len;
  }
  if (n_units() > 0) row_begin_.push_back(n_units());
  if (n_rows() == 0) user_error(data.describe(), ": no documents to train on");
  order_ = SampleOrder(n_rows(), seed);
}

void SftLoader::fill_row(int64_t row, int32_t* ids, int32_t* targets, int32_t* doc_start,
                         std::vector<RowDocument>* docs, int64_t out_row) const {
  LLMPI_CHECK(row >= 0 && row < n_rows(), "row ", row, " of ", n_rows());
  thread_local std::vector<uint8_t> mask;
  mask.assign(static_cast<size_t>(T_), 0);
  int64_t at = 0;
  for (int64_t u = row_begin_[row]; u < row_begin_[row + 1]; ++u)
    for (int64_t d = unit_docs_[u]; d < unit_docs_[u + 1]; ++d) {
      const int64_t first = doc_offsets_[d], len = doc_offsets_[d + 1] - first;
      data_.copy(first, len, ids + at);
      data_.copy_mask(first, len, mask.data() + at);
      std::fill(doc_start + at, doc_start + at + len, static_cast<int32_t>(at));
      if (docs) docs->push_back({out_row, at, len, u, d == unit_docs_[u]});
      at += len;
    }
  std::fill(ids + at, ids + T_, 0);  // padding: a document of its own, not in the loss
  std::fill(doc_start + at, doc_start + T_, static_cast<int32_t>(at));
  sft_targets({ids, static_cast<size_t>(T_)}, mask, {doc_start, static_cast<size_t>(T_)},
              {targets, static_cast<size_t>(T_)});
}

void SftLoader::fill(int64_t step, int64_t micro_batch, int64_t dp_rank,
                     const BatchLayout& layout, int32_t* ids, int32_t* targets,
                     int32_t* doc_start, std::vector<RowDocument>* docs) const {
  for (int64_t b = 0; b < layout.batch_size; ++b) {
    const int64_t row =
        order_.sample_at(batch_position(step, micro_batch, dp_rank, b, layout));
    fill_row(row, ids + b * T_, targets + b * T_, doc_start + b * T_, docs, b);
  }
}

}  // namespace llmpi
