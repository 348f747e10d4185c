#!/usr/bin/env bash
# Run ON THE GPU MACHINE (the device tool), from the repository root, with .device carried:
#   run(command="tools/device/gpu_session.sh test bench", carry=[".device"])
# Unpacks the carried Debian packages into a private prefix, builds for sm_90a with 16 jobs, then
# for each phase named: `test` runs every gpu-labelled ctest (and the CPU ones), `bench` runs
# llm_bench step and attention with torch's numbers beside them. Logs and JSON land in $OUT;
# the last lines printed are the short summary the tool's reply carries.
set -uo pipefail
OUT=${OUT:-/tmp/llm-out}
mkdir -p "$OUT"
prefix=/tmp/llm-deps
summary=()
note() { summary+=("$*"); echo "== $*"; }

if [ ! -d "$prefix/usr" ]; then
  ls .device/debs/*.deb >/dev/null 2>&1 || { echo "no .device/debs: run tools/device/fetch_debs.sh here and carry .device"; exit 2; }
  for deb in .device/debs/*.deb; do dpkg -x "$deb" "$prefix"; done
fi
arch_lib=$prefix/usr/lib/x86_64-linux-gnu
export OPAL_PREFIX=$prefix/usr  # OpenMPI unpacked away from /usr
export LD_LIBRARY_PATH=$arch_lib:$arch_lib/openblas-openmp:$arch_lib/openmpi/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
# NCCL and cuDNN: the toolkit's when it has them, else PyTorch's nvidia-* wheels.
wheel_dir() { python3 -c "import nvidia.$1 as m; print(list(m.__path__)[0])" 2>/dev/null; }
nccl_root=/usr/local/cuda
[ -e /usr/local/cuda/include/nccl.h ] || nccl_root=$(wheel_dir nccl)
cudnn_root=/usr/local/cuda
[ -e /usr/local/cuda/include/cudnn.h ] || cudnn_root=$(wheel_dir cudnn)
export LD_LIBRARY_PATH=$nccl_root/lib:$cudnn_root/lib:$LD_LIBRARY_PATH

{
  nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv
  nvcc --version | tail -2
  echo "commit $(git rev-parse HEAD 2>/dev/null || echo unknown) $(git status --short 2>/dev/null | wc -l) changed files"
  date -u
} | tee "$OUT/device.txt"

build=build-gpu
cmake -S . -B $build -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES=90a \
  -DCMAKE_PREFIX_PATH="$prefix/usr" -DMPI_C_COMPILER="$prefix/usr/bin/mpicc.openmpi" \
  -DNCCL_ROOT="$nccl_root" -DCUDNN_ROOT="$cudnn_root" >"$OUT/build.log" 2>&1 &&
  cmake --build $build -j16 >>"$OUT/build.log" 2>&1
build_rc=$?
note "build: exit $build_rc (log: build.log)"
[ $build_rc -eq 0 ] || { tail -30 "$OUT/build.log"; exit 1; }

for phase in "$@"; do
  case $phase in
    test)
      (cd $build && ctest -L gpu --output-on-failure --timeout 300) >"$OUT/gpu_tests.log" 2>&1
      note "gpu tests: exit $? — $(grep -E 'tests passed|tests failed' "$OUT/gpu_tests.log")"
      grep -E '^ *[0-9]+/[0-9]+ Test' "$OUT/gpu_tests.log" | sed 's/^ */   /'
      (cd $build && ctest -LE gpu -j16 --timeout 300) >"$OUT/cpu_tests.log" 2>&1
      note "cpu tests: exit $? — $(grep -E 'tests passed|tests failed' "$OUT/cpu_tests.log")"
      ;;
    bench)
      make -s bench-attention BUILD_DIR=$build >"$OUT/bench_attention.log" 2>&1
      note "bench-attention: exit $? (bench_attention.log)"
      cp bench_attention.json bench_torch_sdpa.json "$OUT/" 2>/dev/null
      make -s bench-gpu BUILD_DIR=$build >"$OUT/bench_gpu.log" 2>&1
      note "bench-gpu: exit $? (bench_gpu.log)"
      ;;
    *) note "unknown phase '$phase' (test, bench)" ;;
  esac
done
echo
printf '%s\n' "${summary[@]}"
