#!/usr/bin/env bash
# Builds the `cuda` preset on this (GPU-less) machine and assembles bundle/ for the GPU
# machine: the test binaries (the op and model tests and the multi-GPU tests cuda_mpi_*), the
# llmpi binary, the training benchmark llmpi_gpu_bench, the performance model's tools
# (llmpi_op_profile, llmpi_collective_bench, llmpi_perfmodel), scripts/gpu-run.sh, and in
# bundle/payload.tar.xz (with the executables) the
# shared libraries it may lack: every library the binaries load (ldd's closure) except MPI,
# CUDA, cuDNN, NCCL and the C/C++ runtime, which the GPU machine has (in newer versions).
# Open MPI's C++ bindings (libmpi_cxx, referenced by llmpi_core's MPI code) are carried: the
# GPU machine's Open MPI may not ship them.
# That is parallel HDF5 with its compression and curl dependencies (the GPU machine has only
# serial HDF5 1.10), Kokkos from Trilinos, TOML++ if shared, OpenBLAS and its Fortran runtime.
# The executables find bundle/lib through their DT_RPATH ($ORIGIN/lib, set at link time by
# cmake/CudaBackend.cmake) and through LD_LIBRARY_PATH set by gpu-run.sh.
# Usage: scripts/gpu-bundle.sh [--no-build]    (JOBS=2 by default; the machine is shared)
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${BUILD_DIR:-$root/build/cuda}   # BUILD_DIR=build/cuda-dev bundles an sm_90-only build
bundle=$root/bundle
jobs=${JOBS:-2}
max_mib=60

if [[ "${1:-}" != "--no-build" ]]; then
  (cd "$root" && cmake --preset cuda >/dev/null)
  # The multi-GPU tests: tests/cuda_mpi/<name>.<ranks>.cpp → target cuda_mpi_<name>_<ranks>.
  multi_gpu=()
  for src in "$root"/tests/cuda_mpi/*.*.cpp; do
    base=$(basename "$src" .cpp)
    multi_gpu+=("cuda_mpi_${base%.*}_${base##*.}")
  done
  cmake --build "$build" -j"$jobs" --target llmpi llmpi_cuda_tests llmpi_gpu_bench llmpi_op_profile \
    llmpi_collective_bench llmpi_perfmodel "${multi_gpu[@]}"
fi

bins=("$build/llmpi" "$build/llmpi_cuda_tests" "$build/llmpi_gpu_bench" "$build/bench/llmpi_op_profile"
      "$build/bench/llmpi_collective_bench" "$build/bench/llmpi_perfmodel")
for b in "$build"/cuda_mpi_*; do [[ -x "$b" && -f "$b" ]] && bins+=("$b"); done
for b in "${bins[@]}"; do
  [[ -x "$b" ]] || { echo "gpu-bundle: missing $b (build it first)" >&2; exit 1; }
done

rm -rf "$bundle"
mkdir -p "$bundle/lib"
cp "${bins[@]}" "$bundle/"
cp "$root/scripts/gpu-run.sh" "$bundle/"
# The commit the binaries were built from ("-dirty" with local changes): the GPU machine's copy
# of the tree may have no git history, so the benchmark reads it from here.
(cd "$root" && git describe --always --dirty --abbrev=12 2>/dev/null || echo unknown) > "$bundle/COMMIT"

# Libraries to carry: what ldd resolves for the binaries (ldd lists the whole closure),
# less what the GPU machine provides itself (MPI and its runtime, the CUDA stack, glibc,
# the C++ runtime).
never='^(libmpi\.so|libopen-|libhwloc|libevent|libudev|libcuda|libcudnn|libnccl|libcublas|libcudart|libc\.|libm\.|libstdc\+\+|libgcc_s|ld-linux|libpthread|libdl\.|librt\.|libresolv|libz\.)'
for b in "${bins[@]}"; do
  ldd "$b" | awk '$2 == "=>" && $3 ~ /^\// {print $1, $3}'
done | sort -u | while read -r soname path; do
  if [[ "$soname" =~ $never ]]; then continue; fi
  cp -L "$path" "$bundle/lib/$soname"
  strip --strip-unneeded "$bundle/lib/$soname" 2>/dev/null || true
done

missing=$(for b in "${bins[@]}"; do ldd "$b" | grep 'not found' || true; done)
if [[ -n "$missing" ]]; then echo "gpu-bundle: unresolved libraries here:"$'\n'"$missing" >&2; exit 1; fi

for b in "${bins[@]}"; do strip --strip-debug "$bundle/$(basename "$b")" 2>/dev/null || true; done
# OpenBLAS alone is ~36 MiB (every CPU kernel); xz shrinks the libraries to a fraction.
# The executables (each links the whole core and the sm_90 + sm_80 kernels) shrink about
# 4× too. gpu-run.sh unpacks payload.tar.xz (executables and lib/) on its first run.
names=()
for b in "${bins[@]}"; do names+=("$(basename "$b")"); done
tar -C "$bundle" -cJf "$bundle/payload.tar.xz" lib "${names[@]}"
rm -rf "$bundle/lib"
for n in "${names[@]}"; do rm -f "$bundle/$n"; done
size_mib=$(du -sm "$bundle" | cut -f1)
echo "gpu-bundle: $bundle ($size_mib MiB):"
ls -l "$bundle" | sed 's/^/  /'
if (( size_mib > max_mib )); then
  echo "gpu-bundle: bundle is $size_mib MiB, over the $max_mib MiB budget" >&2
  exit 1
fi
