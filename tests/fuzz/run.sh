#!/usr/bin/env bash
# Builds a fuzz target with clang (libFuzzer + AddressSanitizer) and runs it. Not part of the
# normal build: needs clang and libclang-rt-dev (Debian: clang).
#   tests/fuzz/run.sh [SECONDS=60] [deep]      the checkpoint reader; deep: re-stamp the
#                                               integrity header per input
#   tests/fuzz/run.sh [SECONDS=60] safetensors  the safetensors reader (ASan + UBSan)
# The seed corpus is one small valid checkpoint written by make_seed.cpp. The reader's sources
# (io/hdf5, io/tensor_slab, io/tensor_file, io/file_meta, io/checkpoint*, core/layout) are
# compiled in directly, instrumented.
# Output: build/fuzz/fuzz_<mode>.log (final stats: executions, coverage); crashes as crash-*.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
secs="${1:-60}"
mode="${2:-shallow}"
work="${LLMPI_FUZZ_WORK:-$root/build/fuzz}"
mkdir -p "$work/gen/core" "$work/corpus_$mode"

cat > "$work/gen/core/version.h" <<'H'
#pragma once
namespace llmpi {
inline constexpr const char* kVersion = "fuzz";
inline constexpr const char* kGitRevision = "fuzz";
}  // namespace llmpi
H

export OMPI_CXX=clang++
if [ "$mode" = safetensors ]; then
  st_srcs=("$root/io/safetensors.cpp" "$root/src/core/float16.cpp" "$root/src/data/mapped_file.cpp")
  st_flags=(-std=c++20 -O1 -g -fno-omit-frame-pointer -I"$root" -I"$root/src" -I"$work/gen")
  clang++ "${st_flags[@]}" -fsanitize=fuzzer,address,undefined "$here/fuzz_safetensors.cpp" \
    "${st_srcs[@]}" -o "$work/fuzz_safetensors"
  clang++ "${st_flags[@]}" "$here/make_safetensors_seed.cpp" "${st_srcs[@]}" -o "$work/make_safetensors_seed"
  [ -n "$(ls -A "$work/corpus_$mode")" ] || "$work/make_safetensors_seed" "$work/corpus_$mode/seed.safetensors"
  export ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=1
  export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
  "$work/fuzz_safetensors" "$work/corpus_$mode" -max_total_time="$secs" -max_len=4096 \
    -timeout=10 -print_final_stats=1 -artifact_prefix="$work/" 2>&1 | tee "$work/fuzz_$mode.log" | tail -25
  exit "${PIPESTATUS[0]}"
fi
srcs=("$root/io/hdf5.cpp" "$root/io/tensor_slab.cpp" "$root/io/tensor_file.cpp"
      "$root/io/file_meta.cpp" "$root/io/checkpoint.cpp" "$root/io/checkpoint_integrity.cpp"
      "$root/src/core/layout.cpp")
flags=(-std=c++20 -O1 -g -fno-omit-frame-pointer -I"$root" -I"$root/src" -I"$work/gen"
       -I/usr/include/hdf5/openmpi)
libs=(-L/usr/lib/x86_64-linux-gnu/hdf5/openmpi -lhdf5)
mpicxx "${flags[@]}" -fsanitize=fuzzer,address "$here/fuzz_checkpoint_reader.cpp" "${srcs[@]}" \
  "${libs[@]}" -o "$work/fuzz_checkpoint_reader"
mpicxx "${flags[@]}" -fsanitize=address "$here/make_seed.cpp" "${srcs[@]}" "${libs[@]}" \
  -o "$work/make_seed"
# MPI and HDF5 keep process-lifetime allocations (no leak report); an absurd allocation
# request (from a corrupted size field inside libhdf5) returns NULL as the real malloc would,
# which HDF5 reports as an error, instead of ASan aborting.
export ASAN_OPTIONS=detect_leaks=0:allocator_may_return_null=1
[ -n "$(ls -A "$work/corpus_$mode")" ] || "$work/make_seed" "$work/corpus_$mode/seed.h5"

[ "$mode" = deep ] && export LLMPI_FUZZ_DEEP=1
"$work/fuzz_checkpoint_reader" "$work/corpus_$mode" -max_total_time="$secs" \
  -max_len=65536 -timeout=10 -print_final_stats=1 -artifact_prefix="$work/" 2>&1 | tee "$work/fuzz_$mode.log" | tail -25
