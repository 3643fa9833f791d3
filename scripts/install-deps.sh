#!/usr/bin/env bash
# Installs llmpi's build and run dependencies from Debian 12 packages (as root), skipping
# what is already there. Safe to run again. See docs/dependencies.md for what each is for.
set -euo pipefail

packages=(
  build-essential cmake ninja-build git pkg-config
  libopenmpi-dev openmpi-bin          # MPI ranks
  libhdf5-openmpi-dev                 # parallel HDF5 (checkpoints, model files, logbook)
  libtomlplusplus-dev                 # TOML configs
  libtrilinos-kokkos-dev              # Kokkos (host kernels)
  libopenblas-dev                     # CBLAS (host matrix products)
  libgtest-dev                        # GoogleTest
  nlohmann-json3-dev                  # JSON (JSONL data, safetensors headers, HF configs)
  libcli11-dev                        # command-line subcommands, help and validation
  fortunes fortunes-min               # the demo's English corpus
  wordnet-base                        # the fine-tuning demo's dictionary (WordNet glosses)
  python3 python3-h5py python3-numpy  # the h5py example and its test; the numpy reference
                                      # forward of exported HF models (tests/hf/)
  chromium                            # the analysis report's test (headless: --dump-dom, --screenshot)
  munge slurmctld slurmd slurm-client # a one-node Slurm cluster for the tests (scripts/slurm-local.sh)
)
# node and npm run the reference tokenizers of tests/js (installed there by `npm ci`, see
# scripts/test.sh). Any Node.js >= 18 will do; Debian's packages only if none is installed.
command -v node >/dev/null && command -v npm >/dev/null || packages+=(nodejs npm)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#packages[@]} packages present"
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "install-deps: missing packages: ${missing[*]}" >&2
  echo "install-deps: run as root (or: sudo apt-get install ${missing[*]})" >&2
  exit 1
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
# Daemons (munged, slurmctld, slurmd) must not start on installation: the tests start their
# own and stop them by PID. Where no policy-rc.d forbids it already, one does for the install.
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
  chmod 755 /usr/sbin/policy-rc.d
  trap 'rm -f /usr/sbin/policy-rc.d' EXIT
fi
apt-get update -q
apt-get install -y -q --no-install-recommends "${missing[@]}"
