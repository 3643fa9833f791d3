#pragma once
// "Did you mean ...?" for a misspelt name: the closest candidate by edit distance
// (Damerau-Levenshtein with adjacent transpositions, so "n_haed" finds "n_head"), accepted
// only when close enough to be a plausible typo: distance <= max(1, len/3), or the word is a
// prefix of the candidate of at least 3 characters ("warmup" -> "warmup_steps").
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace llmpi {

// Edit distance with unit costs for insert, delete, substitute and adjacent transposition.
size_t edit_distance(std::string_view a, std::string_view b);

// The best plausible match for `word` among `candidates`, or nothing. Ties go to the earliest.
std::optional<std::string> did_you_mean(std::string_view word,
                                        std::span<const std::string> candidates);

}  // namespace llmpi
