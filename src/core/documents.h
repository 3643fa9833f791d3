#pragma once
// Packed documents: several documents back to back in one row of T tokens (SFT packing).
// The representation used from the data loader down to the kernels is doc_start, i32 per
// token: doc_start[b·T + t] = the position in row b of the first token of t's document.
// Invariants (one row): doc_start[0] = 0 and doc_start[t] ∈ {doc_start[t − 1], t}, so
// documents are contiguous, doc_start is nondecreasing and doc_start[t] <= t. A token's
// position in its document is t − doc_start[t]; query t attends keys [doc_start[t], t].
// An empty doc_start stands for one document per row (all zeros). backend.h states the ops'
// side of this contract.
#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace llmpi {

// "" when doc_start ([rows·T]) holds the invariants above, else what is wrong where
// ("row 1, t = 5: doc_start 3, expected 2 or 5").
std::string doc_start_problem(std::span<const int32_t> doc_start, int64_t T);

// Throws InternalError (naming `what`) unless doc_start_problem is empty.
void check_doc_start(std::span<const int32_t> doc_start, int64_t T, const char* what);

// doc_start of one row of T tokens holding documents of the given lengths in order (their
// sum must be T; lengths >= 1).
std::vector<int32_t> doc_start_from_lengths(std::span<const int64_t> lengths, int64_t T);

}  // namespace llmpi
