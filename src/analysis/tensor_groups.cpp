#include "analysis/tensor_groups.h"

#include <algorithm>
#include <map>
#include <tuple>

namespace llmpi {

namespace {

// (rank, layer, name): embed first, then layers in numeric order, then the rest by name.
std::tuple<int, long, std::string> group_key(const std::string& tensor) {
  const std::string first = tensor.substr(0, tensor.find('.'));
  if (first == "layers") {
    const size_t a = tensor.find('.') + 1, b = tensor.find('.', a);
    const std::string num = tensor.substr(a, b == std::string::npos ? std::string::npos : b - a);
    if (!num.empty() && std::all_of(num.begin(), num.end(), ::isdigit) && num.size() < 10)
      return {1, std::stol(num), "layer " + num};
  }
  return {first == "embed" ? 0 : 2, 0, first};
}

}  // namespace

TensorGroups group_tensors(const std::vector<std::string>& tensors) {
  std::map<std::tuple<int, long, std::string>, size_t> order;
  for (const std::string& t : tensors) order[group_key(t)];
  TensorGroups g;
  for (auto& [key, idx] : order) {
    idx = g.names.size();
    g.names.push_back(std::get<2>(key));
    g.is_layer.push_back(std::get<0>(key) == 1);
  }
  for (const std::string& t : tensors) g.index.push_back(order[group_key(t)]);
  return g;
}

}  // namespace llmpi
