#!/usr/bin/env bash
# Run ON THE GPU MACHINE (the device tool), from the repository root, with .device carried:
#   run(command="tools/device/gpu_session.sh test bench", carry=[".device"])
# Unpacks the carried Debian packages into a private prefix, builds for sm_90a with 16 jobs, then
# for each phase named: `test` runs every gpu-labelled ctest (150 s each: test_gpu_attention took
# 73 s before its v4 cases; cuDNN's own log kept), `quick` the attention table at seq 4096
# (head_dim 128, causal; every implementation beside torch SDPA) and llm_bench kernel at the
# llama3-1b shapes, `v4` the attention kernel variants (v4 alone, then flash as chosen on the
# device and v3) checked against eager, then timed (a variant that fails prints FAIL and no time)
# at seq 1024 to 8192, head_dim 64 and 128, causal or not, fwd and fwd_bwd, with the chooser's
# lines naming what flash picked, `sanitize` compute-sanitizer's memcheck on the op tests, `bench`
# the full tables and step comparison. Logs and JSON land in $OUT (at most 8 files come back);
# the last lines printed are the summary the reply carries.
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
# Only what the GPU phases run unless the CPU suites are asked for: the build is device time.
targets=(--target llm_train llm_bench test_gpu_ops test_gpu_attention test_gpu_nccl test_gpu_train
         test_gpu_allocator)
[[ " $* " == *" cpu "* ]] && targets=()
cmake -S . -B $build -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES=90a \
  -DCMAKE_PREFIX_PATH="$prefix/usr" -DMPI_C_COMPILER="$prefix/usr/bin/mpicc.openmpi" \
  -DNCCL_ROOT="$nccl_root" -DCUDNN_ROOT="$cudnn_root" >"$OUT/build.log" 2>&1 &&
  cmake --build $build -j16 "${targets[@]}" >>"$OUT/build.log" 2>&1
build_rc=$?
note "build: exit $build_rc (log: build.log)"
[ $build_rc -eq 0 ] || { tail -30 "$OUT/build.log"; exit 1; }

for phase in "$@"; do
  case $phase in
    test)
      (cd $build && CUDNN_LOGLEVEL_DBG=2 CUDNN_LOGDEST_DBG=/tmp/cudnn.log \
         ctest -L gpu --output-on-failure --timeout 150) >"$OUT/gpu_tests.log" 2>&1
      note "gpu tests: exit $? — $(grep -E 'tests passed|tests failed' "$OUT/gpu_tests.log")"
      grep -E '^ *[0-9]+/[0-9]+ Test' "$OUT/gpu_tests.log" | sed 's/^ */   /'
      { echo "== last 150 lines of cuDNN's log"; tail -150 /tmp/cudnn.log 2>/dev/null; } >>"$OUT/gpu_tests.log"
      ;;
    cpu)
      (cd $build && ctest -LE gpu -j16 --timeout 300) >"$OUT/cpu_tests.log" 2>&1
      note "cpu tests: exit $? — $(grep -E 'tests passed|tests failed' "$OUT/cpu_tests.log")"
      ;;
    quick)
      timeout 150 ./llm_bench attention --impl flash,flash_v2,flash_v3,flash_v4,flash_simt,cudnn,eager \
        --seq 4096 --head-dim 128 --causal 1 --pass fwd,fwd_bwd --json "$OUT/bench_attention.json" \
        >"$OUT/bench.log" 2>&1
      note "attention seq 4096: exit $?"
      grep -E '^(flash|cudnn|eager)' "$OUT/bench.log" | sed 's/^/   /'
      if python3 -c "import torch" 2>/dev/null; then
        timeout 60 tools/bench_torch_sdpa.py --seq 4096 --head-dim 128 --causal 1 \
          --json "$OUT/bench_torch_sdpa.json" >>"$OUT/bench.log" 2>&1
        note "torch sdpa: exit $?"
        python3 tools/bench_compare.py "$OUT/bench_attention.json" "$OUT/bench_torch_sdpa.json" \
          >>"$OUT/bench.log" 2>&1 && tail -6 "$OUT/bench.log" | sed 's/^/   /'
      fi
      timeout 90 ./llm_bench kernel --preset llama3-1b --tokens 4096 \
        --json "$OUT/bench_kernel.json" >>"$OUT/bench.log" 2>&1
      note "kernel bench: exit $?"
      ;;
    v4)
      # v4 alone first: a kernel that has never run may fault (ending its process) or hang.
      for impls in flash_v4 flash,flash_v3; do
        timeout 200 ./llm_bench attention --impl $impls --seq 1024,4096,8192 --head-dim 64,128 \
          --causal 0,1 --pass fwd,fwd_bwd --json "$OUT/bench_${impls%%,*}.json" \
          >>"$OUT/bench_v4.log" 2>&1
        note "attention $impls: exit $? (bench_v4.log)"
      done
      note "FAIL rows: $(grep -c FAIL "$OUT/bench_v4.log")"
      grep -E '^flash.* 4096 ' "$OUT/bench_v4.log" | sed 's/^/   /'
      grep '^flash attention ' "$OUT/bench_v4.log" | sed 's/^/   /'
      ;;
    sanitize)
      for t in test_gpu_ops test_gpu_attention; do
        timeout 60 compute-sanitizer --tool memcheck --error-exitcode 9 $build/$t \
          >>"$OUT/sanitizer.log" 2>&1
        note "memcheck $t: exit $? ($(grep -c 'Invalid\|ERROR SUMMARY' "$OUT/sanitizer.log") report lines)"
      done
      ;;
    bench)
      make -s bench-attention BUILD_DIR=$build >"$OUT/bench_attention.log" 2>&1
      note "bench-attention: exit $? (bench_attention.log)"
      cp bench_attention.json bench_torch_sdpa.json "$OUT/" 2>/dev/null
      make -s bench-gpu BUILD_DIR=$build >"$OUT/bench_gpu.log" 2>&1
      note "bench-gpu: exit $? (bench_gpu.log)"
      ;;
    *) note "unknown phase '$phase' (test, cpu, quick, v4, sanitize, bench)" ;;
  esac
done
echo
printf '%s\n' "${summary[@]}"
