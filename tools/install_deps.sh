#!/usr/bin/env bash
# Installs the Debian packages llm_train needs, only those missing; a quick no-op when all are
# there. The CUDA toolkit is not a Debian package here: it is expected under /usr/local/cuda.
set -euo pipefail
packages=(cmake g++ make libyaml-cpp-dev libfmt-dev doctest-dev libopenmpi-dev openmpi-bin
          libopenblas-dev libopenblas-openmp-dev nlohmann-json3-dev libicu-dev zlib1g-dev libzstd-dev
          fortunes python3-matplotlib)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "installing: ${missing[*]}"
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
log=$(mktemp)
if ! { $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
       $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"; } >"$log" 2>&1; then
  tail -n 20 "$log"
  echo "make deps: installing ${missing[*]} failed (full log: $log)" >&2
  exit 2
fi
rm -f "$log"
