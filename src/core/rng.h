#pragma once
// Counter-based random numbers: a value is a pure function of (key, counter), so any rank
// can draw the element of a global tensor it owns without drawing the others first.
// Parameter init uses key = hash(seed, parameter name) and counter = global element index,
// which makes the initial model identical under every parallel layout.
// The mixer is SplitMix64 applied twice (Steele et al. 2014), which passes BigCrush.
#include <cmath>
#include <cstdint>
#include <string_view>

namespace llmpi {

constexpr uint64_t splitmix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

// FNV-1a of a string: a stable 64-bit name hash (never std::hash, which may change).
constexpr uint64_t hash_name(std::string_view s) {
  uint64_t h = 0xCBF29CE484222325ull;
  for (char c : s) {
    h ^= static_cast<unsigned char>(c);
    h *= 0x100000001B3ull;
  }
  return h;
}

constexpr uint64_t rng_key(uint64_t seed, std::string_view stream) {
  return splitmix64(seed ^ splitmix64(hash_name(stream)));
}

// 64 random bits for (key, counter).
constexpr uint64_t rng_bits(uint64_t key, uint64_t counter) {
  return splitmix64(splitmix64(counter ^ key) + key);
}

// Uniform in (0, 1): 53 random bits, never exactly 0 or 1.
inline double rng_uniform(uint64_t key, uint64_t counter) {
  return (static_cast<double>(rng_bits(key, counter) >> 11) + 0.5) * 0x1.0p-53;
}

// Standard normal via Box-Muller on two independent uniforms of the same counter.
inline double rng_normal(uint64_t key, uint64_t counter) {
  const double u1 = rng_uniform(key, 2 * counter);
  const double u2 = rng_uniform(key, 2 * counter + 1);
  return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
}

}  // namespace llmpi
