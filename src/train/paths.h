#pragma once
// Expands a data path that may be a glob ("data/*.bin") into the sorted list of files.
// A pattern that matches nothing is a UserError naming the config key it came from.
#include <string>
#include <vector>

namespace llmpi {

std::vector<std::string> expand_data_paths(const std::string& pattern, const std::string& key);

}  // namespace llmpi
