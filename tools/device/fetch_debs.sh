#!/usr/bin/env bash
# Run HERE, before a device session: downloads the Debian packages llm_train builds against into
# .device/debs (git-ignored) so `run` can carry them to the GPU machine, which has CUDA, cuDNN
# and PyTorch but no package registry. About 40 MiB, under the 64 MiB a call may carry.
set -euo pipefail
cd "$(dirname "$0")/../.."
packages=(libyaml-cpp-dev libyaml-cpp0.7 libfmt-dev libfmt9 doctest-dev nlohmann-json3-dev
          libopenblas-dev libopenblas-openmp-dev libopenblas0-openmp libgfortran5 libquadmath0
          libopenmpi-dev libopenmpi3 openmpi-bin openmpi-common libhwloc15 libevent-core-2.1-7
          libevent-pthreads-2.1-7 libpmix2 libfabric1 libucx0 libibverbs1 libicu-dev libicu72
          zlib1g-dev libzstd-dev libzstd1)
mkdir -p .device/debs
cd .device/debs
rm -f ./*.deb
apt-get download "${packages[@]}" 2>&1 | grep -v -e '^Get:' -e 'unsandboxed' || true
echo "fetched $(ls ./*.deb | wc -l) packages, $(du -sh . | cut -f1) into .device/debs"
