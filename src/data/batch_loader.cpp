// BatchLoader / ValLoader: position arithmetic (batch_loader.h) and sample reads.
#include "data/batch_loader.h"

#include <algorithm>
#include <vector>

#include "core/error.h"

namespace llmpi {

namespace {

void check_layout(const BatchLayout& l) {
  LLMPI_CHECK(l.batch_size > 0 && l.micro_batches > 0 && l.dp_size > 0, "batch layout B=",
              l.batch_size, " M=", l.micro_batches, " dp=", l.dp_size);
}

}  // namespace

int64_t count_samples(const TokenDataset& data, int64_t seq_len) {
  LLMPI_CHECK(seq_len > 0, "seq_len = ", seq_len);
  if (data.size() < seq_len + 1)
    user_error("dataset too small: ", data.describe(),
               data.shards().size() > 1 ? detail::concat(", ", data.size(), " tokens in all") : "",
               "; one sample of seq_len ", seq_len, " needs ", seq_len + 1, " tokens");
  return (data.size() - 1) / seq_len;
}

void read_sample(const TokenDataset& data, int64_t seq_len, int64_t index, int32_t* inputs,
                 int32_t* targets) {
  thread_local std::vector<int32_t> buf;
  buf.resize(static_cast<size_t>(seq_len + 1));
  data.copy(index * seq_len, seq_len + 1, buf.data());
  std::copy(buf.begin(), buf.end() - 1, inputs);
  std::copy(buf.begin() + 1, buf.end(), targets);
}

BatchLoader::BatchLoader(const TokenDataset& data, int64_t seq_len, uint64_t seed)
    : data_(data), seq_len_(seq_len), order_(count_samples(data, seq_len), seed) {}

int64_t batch_position(int64_t step, int64_t micro_batch, int64_t dp_rank, int64_t row,
                       const BatchLayout& l) {
  check_layout(l);
  LLMPI_CHECK(step >= 0 && micro_batch >= 0 && micro_batch < l.micro_batches && dp_rank >= 0 &&
                  dp_rank < l.dp_size && row >= 0 && row < l.batch_size,
              "step ", step, " micro ", micro_batch, " rank ", dp_rank, " row ", row);
  return step * l.global_samples() + (micro_batch * l.dp_size + dp_rank) * l.batch_size + row;
}

int64_t BatchLoader::sample_index(int64_t step, int64_t micro_batch, int64_t dp_rank,
                                  int64_t row, const BatchLayout& l) const {
  return order_.sample_at(batch_position(step, micro_batch, dp_rank, row, l));
}

void BatchLoader::fill(int64_t step, int64_t micro_batch, int64_t dp_rank,
                       const BatchLayout& layout, int32_t* inputs, int32_t* targets) const {
  for (int64_t b = 0; b < layout.batch_size; ++b)
    read_sample(data_, seq_len_, sample_index(step, micro_batch, dp_rank, b, layout),
                inputs + b * seq_len_, targets + b * seq_len_);
}

std::vector<int64_t> BatchLoader::step_samples(int64_t step, const BatchLayout& layout) const {
  check_layout(layout);
  std::vector<int64_t> out(static_cast<size_t>(layout.global_samples()));
  for (int64_t j = 0; j < layout.global_samples(); ++j)
    out[static_cast<size_t>(j)] = order_.sample_at(step * layout.global_samples() + j);
  return out;
}

ValLoader::ValLoader(const TokenDataset& data, int64_t seq_len)
    : data_(data), seq_len_(seq_len), n_samples_(count_samples(data, seq_len)) {}

void ValLoader::fill(int64_t batch, int64_t batch_size, int32_t* inputs,
                     int32_t* targets) const {
  LLMPI_CHECK(batch >= 0 && batch_size > 0, "val batch ", batch, " of size ", batch_size);
  for (int64_t b = 0; b < batch_size; ++b)
    read_sample(data_, seq_len_, (batch * batch_size + b) % n_samples_,
                inputs + b * seq_len_, targets + b * seq_len_);
}

}  // namespace llmpi
