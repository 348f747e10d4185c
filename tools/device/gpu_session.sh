#!/usr/bin/env bash
# Run ON THE GPU MACHINE (the device tool), from the repository root, with .device carried
# (tools/device/fetch_debs.sh makes it here first). A session's 15 device minutes hold one machine
# start and one call of at most 10 minutes: name the phases in the order they matter, with a
# deadline that ends the timing phases inside the call's limit, e.g.
#   run(command="LLM_COMMIT=<sha> LLM_DEADLINE_S=560 tools/device/gpu_session.sh test sanitize v7 step kernels table",
#       timeout_s=600, carry=[".device"])
# At most 8 files come back from $OUT: those phases write device.txt, build.log, gpu_tests.log (cuDNN's
# log at its end), sanitizer.log, step.log (v6's rows too), kernels.log, bench_kernel_llama3-1b.json
# and table.log (v7's rows too).
# Unpacks the carried Debian packages into a private prefix, builds for sm_90a with 16 jobs, then
# runs each phase named. Correctness, side by side: `test` every gpu-labelled suite (180 s each,
# test_gpu_train 240 s; LLM_CUDA_SYNC=1; cuDNN's own log kept), `sanitize` compute-sanitizer's
# memcheck on the op suites and the attention suites' small cases, `rerun` a second call's suites
# (LLM_RERUN_ATTENTION=1, LLM_RERUN_TRAIN, LLM_RERUN_MEMCHECK name what to rerun). Timing, after
# those finish: `quick` the attention row at seq 4096 (head_dim 128, causal) beside torch SDPA,
# the numbered variants and llm_bench kernel at the llama3-1b shapes, `v4` the variants (v4 alone
# first) checked against eager then timed at seq 1024 to 8192, head_dim 64 and 128, causal or not,
# `v6` v6 beside v4, v5 and cuDNN at the GQA training shapes (its memcheck is `sanitize`'s), `v7`
# v7's persistent forward beside v5 and cuDNN at seq 4096 and 8192 and at the training shapes,
# `profile` Nsight Compute's speed of light for v6's forward and backward kernels and v7's forward,
# `sweep` v5 over v4's sweep, `step` the llama3-1b step (seq 2048, bf16, flash, with and without
# recompute, and with attention v4 forced) beside HF + PyTorch in bf16 and in mixed precision,
# `kernels` llm_bench kernel at the llama3-1b shapes (tools/kernel_table.py reads kernels.log) and
# the step at the llama3-8b layer shape,
# `table` issue #13's table (every implementation at seq 1024-16384, head_dim 64 and 128, causal
# or not, fwd and fwd+bwd; one process each, the rows the targets read first, each row printed as
# it is timed, so a deadline keeps the rows before it; tools/attention_table.py makes the results
# file of table.log on the CPU afterwards), `bench` the full tables
# and step comparison; `cpu` the CPU suites with CUDA hidden. (The torch fixtures are made on the
# build machine since 2026-12-07: torch from PyPI runs on its CPU.) Logs and
# JSON land in $OUT (at most 8 files come back); the last lines printed are the summary.
# LLM_DEADLINE_S (default 520): the timing phases shorten their limits to end by then, so that
# one call's reply comes back with whatever ran before the device tool's own limit.
set -uo pipefail
OUT=${OUT:-/tmp/llm-out}
mkdir -p "$OUT"
prefix=/tmp/llm-deps
summary=()
deadline=$((SECONDS + ${LLM_DEADLINE_S:-520}))
limit() {  # a timing command's limit: $1 seconds, or what is left before the deadline
  local left=$((deadline - SECONDS - 5))
  if [ $left -lt $1 ]; then echo $((left > 1 ? left : 1)); else echo $1; fi
}
note() { summary+=("$*"); echo "== $*"; }

if [ ! -d "$prefix/usr" ]; then
  ls .device/debs/*.deb >/dev/null 2>&1 || { echo "no .device/debs: run tools/device/fetch_debs.sh here and carry .device"; exit 2; }
  for deb in .device/debs/*.deb; do dpkg -x "$deb" "$prefix"; done
fi
arch_lib=$prefix/usr/lib/x86_64-linux-gnu
export OPAL_PREFIX=$prefix/usr  # OpenMPI unpacked away from /usr
export LD_LIBRARY_PATH=$arch_lib:$arch_lib/openblas-openmp:$arch_lib/openmpi/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
# NCCL and cuDNN: the toolkit's when it has them, else PyTorch's nvidia-* wheels. cuDNN compiles
# its SDPA engines at run time with NVRTC: the toolkit's lib64 and the wheels' cu13/lib hold it.
wheel_dir() { python3 -c "import nvidia.$1 as m; print(list(m.__path__)[0])" 2>/dev/null; }
lib_dir() { if [ "$1" = /usr/local/cuda ]; then echo /usr/local/cuda/lib64; else echo "$1/lib"; fi; }
nccl_root=/usr/local/cuda
[ -e /usr/local/cuda/include/nccl.h ] || nccl_root=$(wheel_dir nccl)
cudnn_root=/usr/local/cuda
[ -e /usr/local/cuda/include/cudnn.h ] || cudnn_root=$(wheel_dir cudnn)
cu13_lib=$(wheel_dir cu13)/lib
export LD_LIBRARY_PATH=$(lib_dir "$nccl_root"):$(lib_dir "$cudnn_root"):/usr/local/cuda/lib64:$cu13_lib:$LD_LIBRARY_PATH
runtime_version() {  # the version a shared library reports when loaded from LD_LIBRARY_PATH
  python3 -c "import ctypes; l = ctypes.CDLL('$1'); v = ctypes.c_int(); print(l.$2() if '$2' == 'cudnnGetVersion' else (l.$2(ctypes.byref(v)), v.value)[1])" 2>&1 | tail -1
}

{
  nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv
  nvcc --version | tail -2
  echo "cuDNN at run time: $(runtime_version libcudnn.so.9 cudnnGetVersion) ($cudnn_root)"
  echo "NCCL at run time: $(runtime_version libnccl.so.2 ncclGetVersion) ($nccl_root)"
  echo "commit ${LLM_COMMIT:-$(git rev-parse HEAD 2>/dev/null || echo unknown)}"
  date -u
} | tee "$OUT/device.txt"

build=build-gpu
# Only what the GPU phases run unless the CPU suites are asked for: the build is device time.
targets=(--target llm_train llm_bench test_gpu_ops test_gpu_loss test_gpu_optimizers test_gpu_low_precision test_gpu_attention
         test_gpu_attention_variants test_gpu_nccl
         test_gpu_train test_gpu_allocator)
[[ " $* " == *" cpu "* ]] && targets=()
cmake -S . -B $build -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES=90a \
  -DCMAKE_PREFIX_PATH="$prefix/usr" -DMPI_C_COMPILER="$prefix/usr/bin/mpicc.openmpi" \
  -DNCCL_ROOT="$nccl_root" -DCUDNN_ROOT="$cudnn_root" >"$OUT/build.log" 2>&1 &&
  cmake --build $build -j16 "${targets[@]}" >>"$OUT/build.log" 2>&1
build_rc=$?
note "build: exit $build_rc (log: build.log)"
[ $build_rc -eq 0 ] || { tail -30 "$OUT/build.log"; exit 1; }

# Correctness phases (test, sanitize) run side by side: no verdict rests on a timing, and device
# minutes are short. Each prints its summary lines, kept until the timing phases, which need the
# GPU to themselves, start.
test_phase() {
  # LLM_CUDA_SYNC=1: a kernel that faults is named by its own op (cuda/cuda_check.h).
  export LLM_CUDA_SYNC=1 CUDNN_LOGLEVEL_DBG=2 CUDNN_LOGDEST_DBG=/tmp/cudnn.log
  # test_gpu_train trains ~40 short runs, test_gpu_attention builds cuDNN's graphs (76 s of its
  # 90 alone; past ctest's 180 s beside memcheck on 2026-12-04): each on its own, with a longer
  # limit and each case's time.
  (cd $build && timeout 240 ./test_gpu_train --duration=true) >/tmp/gpu_train.log 2>&1 &
  train_pid=$!
  (cd $build && timeout 300 ./test_gpu_attention --duration=true) >/tmp/gpu_attention.log 2>&1 &
  attention_pid=$!
  (cd $build && ctest -L gpu -E 'test_gpu_(train|attention)$' -j4 --output-on-failure --timeout 180) \
    >"$OUT/gpu_tests.log" 2>&1
  echo "gpu tests: exit $? — $(grep -E 'tests passed|tests failed' "$OUT/gpu_tests.log")"
  grep -E '^ *[0-9]+/[0-9]+ Test' "$OUT/gpu_tests.log" | sed 's/^ */   /'
  if grep -q 'test_gpu_nccl .*Failed' "$OUT/gpu_tests.log"; then  # NCCL's cuMem path in a VM
    NCCL_CUMEM_ENABLE=0 NCCL_DEBUG=WARN timeout 60 $build/test_gpu_nccl >>"$OUT/gpu_tests.log" 2>&1
    echo "test_gpu_nccl with NCCL_CUMEM_ENABLE=0: exit $?"
  fi
  local suite pid
  for suite in train attention; do
    pid=$train_pid
    [ $suite = attention ] && pid=$attention_pid
    wait $pid
    echo "test_gpu_$suite: exit $? — $(grep -E '^\[doctest\] (test cases|Status)' /tmp/gpu_$suite.log | tr -s ' ' | paste -sd' ')"
    grep -E 'test case|ERROR|TIMEOUT|Terminated' /tmp/gpu_$suite.log | head -20 | sed 's/^/   /'
    { echo "===== test_gpu_$suite"; cat /tmp/gpu_$suite.log; } >>"$OUT/gpu_tests.log"
  done
  { echo "===== cuDNN's log (CUDNN_LOGLEVEL_DBG=2)"; tail -c 4000000 /tmp/cudnn.log; } >>"$OUT/gpu_tests.log" 2>/dev/null
}

sanitize_phase() {
  # Every suite in its own process, side by side, each ending by the deadline less the timing
  # phases' share (LLM_TIMING_S, default 240): memcheck slows the CPU references' suites tenfold.
  local checks_end=$((${LLM_DEADLINE_S:-520} - ${LLM_TIMING_S:-240}))
  local pids=() t
  for t in test_gpu_ops test_gpu_loss test_gpu_optimizers test_gpu_low_precision \
           "test_gpu_attention_variants --test-case-exclude=*own?choice*,*two?heads*" \
           "test_gpu_attention --test-case=*bias*,*sees?no?key*"; do
    timeout $((checks_end - SECONDS > 10 ? checks_end - SECONDS : 10)) \
      compute-sanitizer --tool memcheck --error-exitcode 9 $build/$t >"/tmp/memcheck_${t%% *}.log" 2>&1 &
    pids+=($!)
  done
  for t in "${pids[@]}"; do wait $t; echo "exit $?"; done >/tmp/memcheck_exits.txt
  cat /tmp/memcheck_test_gpu_*.log >"$OUT/sanitizer.log"
  for log in /tmp/memcheck_test_gpu_*.log; do
    echo "memcheck $(basename "$log" .log | sed 's/memcheck_//'): $(grep -E 'ERROR SUMMARY' "$log" | paste -sd' ') $(grep -E '^\[doctest\] Status' "$log" | tr -s ' ')"
  done
  echo "memcheck exits: $(paste -sd' ' /tmp/memcheck_exits.txt)"
}

timing_started=0
start_timing() {  # before the first timing phase: the correctness phases finish first
  [ $timing_started = 1 ] && return
  timing_started=1
  wait
  # A limit's `timeout` ends compute-sanitizer but not the suite it runs: none may share the GPU
  # (or the CPUs that compute the references) with the timings.
  pkill -f "$build/test_gpu_" 2>/dev/null
  unset OMP_NUM_THREADS
  for f in /tmp/summary_test.txt /tmp/summary_sanitize.txt; do
    [ -e $f ] || continue
    cat $f
    while read -r line; do summary+=("$line"); done < <(grep -v '^   ' $f)
  done
}

rm -f /tmp/summary_*.txt
# The correctness phases run about ten processes side by side on 16 cores: a few OpenMP threads
# each for the CPU references; the timing phases get the machine's default again.
export OMP_NUM_THREADS=3
for phase in "$@"; do
  case $phase in
    test) test_phase >/tmp/summary_test.txt 2>&1 & ;;
    sanitize) sanitize_phase >/tmp/summary_sanitize.txt 2>&1 & ;;
    rerun)
      # A bring-up's second call, line-buffered so that a limit keeps what ran, side by side: the
      # op suites; the attention suites with each case's time when LLM_RERUN_ATTENTION=1; the
      # training cases named in LLM_RERUN_TRAIN and memcheck on the attention cases named in
      # LLM_RERUN_MEMCHECK (doctest patterns), each only when named.
      : >/tmp/r_attention.log; : >/tmp/r_train.log; : >"$OUT/sanitizer.log"
      if [ "${LLM_RERUN_ATTENTION:-0}" = 1 ]; then
        (cd $build && timeout 180 stdbuf -oL ./test_gpu_attention --duration=true;
          timeout 120 stdbuf -oL ./test_gpu_attention_variants --duration=true) >/tmp/r_attention.log 2>&1 &
      fi
      if [ -n "${LLM_RERUN_TRAIN:-}" ]; then
        (cd $build && timeout 180 stdbuf -oL ./test_gpu_train --duration=true "-tc=$LLM_RERUN_TRAIN") \
          >/tmp/r_train.log 2>&1 &
      fi
      (cd $build && for t in test_gpu_ops test_gpu_loss test_gpu_optimizers test_gpu_low_precision; do
         timeout 60 ./$t || echo "$t: exit $?"; done) >/tmp/r_ops.log 2>&1 &
      if [ -n "${LLM_RERUN_MEMCHECK:-}" ]; then
        timeout 180 stdbuf -oL compute-sanitizer --tool memcheck $build/test_gpu_attention --duration=true \
          "-tc=$LLM_RERUN_MEMCHECK" >"$OUT/sanitizer.log" 2>&1 &
      fi
      wait
      for t in attention train ops; do
        [ -s /tmp/r_$t.log ] || continue
        note "test_gpu_$t: $(grep -E '^\[doctest\] (test cases|Status)' /tmp/r_$t.log | tr -s ' ' | paste -sd' ')"
        { echo "===== test_gpu_$t"; cat /tmp/r_$t.log; } >>"$OUT/gpu_tests.log"
      done
      [ -s "$OUT/sanitizer.log" ] && note "memcheck: $(grep -E 'ERROR SUMMARY|test cases' "$OUT/sanitizer.log" | paste -sd' ')"
      grep -hE '^[0-9.]+ s:|ERROR|values:|worst_step|CRASHED' /tmp/r_attention.log /tmp/r_train.log /tmp/r_ops.log \
        | cut -c1-160 | head -40
      ;;
    kernels)
      # Issue #14: every op of a llama3-1b step against its roofline, then the step at the
      # llama3-8b layer shape (8 layers: weights, gradients and AdamW's f32 state fit one card).
      start_timing
      # --offset 0,1: each 4-wide kernel beside its element-wise form (rows "@+1"); the fused
      # loss at its default chunk (512 rows) and at 1024 and 2048.
      # LLM_GEMM_CANDIDATES: each GEMM shape's first call says how far cuBLASLt's first choice is
      # from the fastest of its first 8 (issue #14: GEMMs within 5% of cuBLASLt's best).
      LLM_GEMM_CANDIDATES=8 timeout $(limit 180) stdbuf -oL ./llm_bench kernel --preset llama3-1b --tokens 4096 \
        --offset 0,1 --loss-chunks 0,1024,2048 \
        --json "$OUT/bench_kernel_llama3-1b.json" >>"$OUT/kernels.log" 2>&1
      note "llm_bench kernel llama3-1b: exit $? (kernels.log)"
      # Batch 4: at batch 1 AdamW's 28 bytes a parameter (f32 master and moments, DESIGN.md) take
      # about half the ideal compute time of the step's tokens; four sequences a step amortise it
      # as the published MFU figures' batches do.
      timeout $(limit 90) stdbuf -oL ./llm_bench step --device cuda --preset llama3-8b --layers 8 --seq 2048 \
        --batch 4 --bf16 1 --attention flash >>"$OUT/kernels.log" 2>&1
      note "llm_bench step llama3-8b, 8 layers, seq 2048, batch 4, bf16: exit $?"
      timeout $(limit 90) stdbuf -oL ./llm_bench step --device cuda --preset llama3-8b --layers 8 --seq 2048 \
        --batch 4 --bf16 1 --attention flash --loss-chunk-rows 2048 >>"$OUT/kernels.log" 2>&1
      note "llm_bench step llama3-8b, 8 layers, batch 4, loss chunks of 2048 rows: exit $?"
      grep -E '^(step|tokens/s|llm_bench)' "$OUT/kernels.log" | sed 's/^/   /'
      ;;
    cpu)
      # CUDA hidden: CI covers these suites; here they only check the device's build runs them.
      (cd $build && CUDA_VISIBLE_DEVICES= ctest -LE gpu -j16 --timeout 300) >"$OUT/cpu_tests.log" 2>&1
      note "cpu tests: exit $? — $(grep -E 'tests passed|tests failed' "$OUT/cpu_tests.log")"
      ;;
    quick)
      start_timing
      # The implementations a user picks by config first, then the numbered kernel variants in a
      # process of their own: one that faults ends only its own table.
      timeout 120 ./llm_bench attention --impl flash,flash_simt,cudnn,eager \
        --seq 4096 --head-dim 128 --causal 1 --pass fwd,fwd_bwd --json "$OUT/bench_attention.json" \
        >"$OUT/bench.log" 2>&1
      note "attention seq 4096: exit $?"
      grep -E '^(flash|cudnn|eager)' "$OUT/bench.log" | sed 's/^/   /'
      timeout 60 tools/bench_torch_sdpa.py --seq 4096 --head-dim 128 --causal 1 \
        --json "$OUT/bench_torch_sdpa.json" >>"$OUT/bench.log" 2>&1
      note "torch sdpa: exit $?"
      python3 tools/bench_compare.py "$OUT/bench_attention.json" "$OUT/bench_torch_sdpa.json" \
        >>"$OUT/bench.log" 2>&1 && tail -6 "$OUT/bench.log" | sed 's/^/   /'
      timeout 90 ./llm_bench attention --impl flash_v2,flash_v3,flash_v4 --seq 4096 --head-dim 128 \
        --causal 1 --pass fwd,fwd_bwd >>"$OUT/bench.log" 2>&1
      note "attention variants seq 4096: exit $?"
      grep -E '^flash_v' "$OUT/bench.log" | sed 's/^/   /'
      timeout 90 stdbuf -oL ./llm_bench kernel --preset llama3-1b --tokens 4096 >>"$OUT/bench.log" 2>&1
      note "kernel bench: exit $?"
      ;;
    v4)
      start_timing
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
    v6)
      # v6 (v5's forward, v4's backward with the GQA groups split over blocks) at the training
      # shapes, 32 query heads on 8 kv heads, seq 2048, causal: head_dim 64 (llama3-1b) and 128
      # (llama3-8b); v6 alone first (its first run: a fault ends only its process), then v4, v5
      # and cuDNN. Every row is checked against eager first and prints FAIL if it differs.
      start_timing
      # Line-buffered: a kernel that hangs still leaves the rows before it. Into step.log (the
      # training shapes' file), after a marker line, so that the FAIL count is v6 phase's own.
      echo "===== v6 phase" >>"$OUT/step.log"
      v6_rows() { sed -n '/^===== v6 phase/,$p' "$OUT/step.log"; }
      for impls in flash_v6 flash_v4,flash_v5,cudnn; do
        timeout $(limit 90) stdbuf -oL ./llm_bench attention --impl $impls --seq 2048 --head-dim 64,128 \
          --heads 32 --kv-heads 8 --causal 1 --pass fwd,fwd_bwd >>"$OUT/step.log" 2>&1
        note "attention $impls, 32 heads on 8, seq 2048: exit $?, FAIL rows $(v6_rows | grep -c FAIL)"
      done
      v6_rows | grep -E '^(flash|cudnn)' | sed 's/^/   /'
      ;;
    v7)
      # v7 (v5's forward made persistent; its backward is v6's with the ping-pong) at issue #13's shape (seq 4096 and
      # 8192, head_dim 128, 16 heads, causal or not) and the training shapes (32 heads on 8, seq
      # 2048, causal): v7 alone first (its first run: a fault or a hang ends only its process),
      # then v5 and cuDNN beside it. Into table.log after a marker line; every row is checked
      # against eager first and prints FAIL if it differs.
      start_timing
      echo "===== v7 phase" >>"$OUT/table.log"
      v7_rows() { sed -n '/^===== v7 phase/,$p' "$OUT/table.log"; }
      v7_ok=1  # the step phase forces v7 only when every v7 row here ran and passed
      for impls in flash_v7 flash_v5,cudnn; do
        timeout $(limit 60) stdbuf -oL ./llm_bench attention --impl $impls --seq 4096,8192 \
          --head-dim 128 --causal 0,1 --pass fwd >>"$OUT/table.log" 2>&1
        rc=$?
        note "attention $impls, seq 4096 and 8192, forward: exit $rc, FAIL rows $(v7_rows | grep -c FAIL)"
        [ $impls = flash_v7 ] && [ $rc != 0 ] && v7_ok=0
        timeout $(limit 60) stdbuf -oL ./llm_bench attention --impl $impls --seq 2048 --head-dim 64,128 \
          --heads 32 --kv-heads 8 --causal 1 --pass fwd,fwd_bwd >>"$OUT/table.log" 2>&1
        rc=$?
        note "attention $impls, 32 heads on 8, seq 2048: exit $rc, FAIL rows $(v7_rows | grep -c FAIL)"
        [ $impls = flash_v7 ] && [ $rc != 0 ] && v7_ok=0
      done
      v7_rows | grep -q '^flash_v7 .*FAIL' && v7_ok=0
      # v8 (v5's forward; v5's five-product backward with v6's GQA splits) at the training shapes.
      timeout $(limit 45) stdbuf -oL ./llm_bench attention --impl flash_v8 --seq 2048 --head-dim 64,128 \
        --heads 32 --kv-heads 8 --causal 1 --pass fwd_bwd >>"$OUT/table.log" 2>&1
      note "attention flash_v8, 32 heads on 8, seq 2048: exit $?, FAIL rows $(v7_rows | grep -c '^flash_v8 .*FAIL')"
      v7_rows | grep -E '^(flash|cudnn)' | sed 's/^/   /'
      ;;
    profile)
      # Where the attention kernels' time goes, by Nsight Compute's speed-of-light section (each
      # kernel's duration, SM and memory throughput; clocks left alone, as METHOD.md asks): v6's
      # forward and its backward's kernels (dK/dV, split sums, dQ) at llama3-1b's shape, then v7's
      # forward at issue #13's. The first launches of each are the row's check at the same shape.
      start_timing
      echo "===== profile phase" >>"$OUT/table.log"
      timeout $(limit 90) ncu --clock-control none --section SpeedOfLight -c 8 \
        -k "regex:forward_v|dkdv_v4|sum_splits|dq_v4" ./llm_bench attention --impl flash_v6 --seq 2048 \
        --head-dim 64 --heads 32 --kv-heads 8 --causal 1 --pass fwd_bwd --repeats 1 >>"$OUT/table.log" 2>&1
      note "ncu v6 at llama3-1b's shape: exit $?"
      timeout $(limit 60) ncu --clock-control none --section SpeedOfLight -c 2 -k "regex:forward_v7" \
        ./llm_bench attention --impl flash_v7 --seq 4096 --head-dim 128 --causal 1 --pass fwd \
        --repeats 1 >>"$OUT/table.log" 2>&1
      note "ncu v7 forward at seq 4096: exit $?"
      sed -n '/^===== profile phase/,$p' "$OUT/table.log" | grep -E '^  [a-z_]+.*\(|Duration|Compute \(SM\) Throughput|Memory Throughput' | sed 's/^/   /' | head -40
      ;;
    sweep)
      start_timing
      timeout $(limit 150) ./llm_bench attention --impl flash_v5 --seq 1024,4096,8192 --head-dim 64,128 \
        --causal 0,1 --pass fwd,fwd_bwd --json "$OUT/bench_flash_v5.json" >>"$OUT/v5.log" 2>&1
      note "v5 sweep: exit $?, FAIL rows: $(grep -c FAIL "$OUT/v5.log")"
      ;;
    step)
      # Issue #14's step, the comparisons that matter first (the deadline cuts the last): ours
      # and transformers' at the same shape, then bfloat16 (with our attention, then cuDNN's as
      # sdp_attention picks it: HF's sdpa is PyTorch's choice of flash or cuDNN kernels),
      # recompute, PyTorch's mixed precision, attention v4 forced and one loss chunk.
      start_timing
      ours() {  # $1: what the note calls the run; the rest: llm_bench step's flags beside the shape
        local what=$1
        shift
        timeout $(limit 100) stdbuf -oL ./llm_bench step --device cuda --preset llama3-1b --seq 2048 \
          --batch 1 "$@" >>"$OUT/step.log" 2>&1
        note "llm_bench step llama3-1b seq 2048 $what: exit $?"
      }
      hf() {  # $@: bench_hf_step.py's flags beside the shape
        PYTHONUNBUFFERED=1 timeout $(limit 120) tools/bench_hf_step.py --preset llama3-1b --seq 2048 \
          --batch 1 "$@" >>"$OUT/step.log" 2>&1
        note "bench_hf_step.py llama3-1b seq 2048 $*: exit $?"
      }
      ours bf16 --attention flash --bf16 1
      hf
      # bfloat16: bf16 weights and AdamW moments, no f32 master (HF's bf16 model's bytes).
      ours bfloat16 --attention flash --bfloat16 1
      ours "bfloat16, cuDNN attention" --attention cudnn --bfloat16 1
      # v7 forced (persistent forward, ping-pong backward), only after the v7 phase saw it pass.
      [ "${v7_ok:-0}" = 1 ] && LLM_ATTENTION_KERNEL=v7 ours "bfloat16, attention v7" --attention flash --bfloat16 1
      ours "bf16, recompute" --attention flash --bf16 1 --recompute 1
      # PyTorch's mixed precision: f32 master weights and AdamW state as ours keep (DESIGN.md),
      # so that the ratio to it measures the kernels, the bf16 one also the state's bytes.
      hf --amp 1
      # Attention v4 forced: the automatic choice has had v6 among its candidates since v6 passed
      # on an H200 (2026-12-04), where forced it gave 46.85 ms to v4's 48.51.
      LLM_ATTENTION_KERNEL=v4 ours "bf16, attention v4" --attention flash --bf16 1
      # The loss in one chunk of 2048 rows (the default: 4 of 512): its d(lm_head) GEMMs without
      # re-reading their output chunk after chunk, for 0.75 GiB more workspace.
      ours "bf16, loss chunks of 2048 rows" --attention flash --bf16 1 --loss-chunk-rows 2048
      # The op split's tables stay in step.log; the summary keeps each run's totals.
      grep -E '^(llm_bench step|step |tokens/s|hf step|flash attention|host reads|host.s own|forward kept)' "$OUT/step.log" \
        | sed 's/^/   /'
      ;;
    table)
      start_timing
      table_impl() {  # one implementation over the whole table, in a process of its own
        timeout $(limit 60) stdbuf -oL ./llm_bench attention --impl $1 --seq 1024,2048,4096,8192,16384 \
          --head-dim 64,128 --causal 0,1 --pass fwd,fwd_bwd >>"$OUT/table.log" 2>&1
        note "table $1: exit $?, rows $(grep -c "^$1 " "$OUT/table.log"), FAIL $(grep -c "^$1 .*FAIL" "$OUT/table.log")"
      }
      # The rows issue #13's targets read first (flash, S2 beside it, the packed batches, torch SDPA,
      # cuDNN), then the numbered variants newest first and the slow ones last: a deadline cuts the
      # least wanted.
      table_impl flash
      table_impl s2
      # Packed batches: memory-efficient attention against flash on the same 8 documents a row.
      timeout $(limit 60) stdbuf -oL ./llm_bench attention --impl flash,mem_efficient --seq 4096,16384 --head-dim 128 \
        --causal 1 --pass fwd,fwd_bwd --docs 8 >>"$OUT/table.log" 2>&1
      note "table flash and mem_efficient, 8 documents a row: exit $?"
      PYTHONUNBUFFERED=1 timeout $(limit 90) tools/bench_torch_sdpa.py --seq 1024,2048,4096,8192,16384 \
        --head-dim 64,128 >>"$OUT/table.log" 2>&1
      note "table torch sdpa: exit $?"
      for impl in cudnn flash_v7 flash_v6 flash_v8 flash_v5 flash_v4 mem_efficient flash_v3 flash_v2 flash_simt eager; do
        table_impl $impl
      done
      ;;
    bench)
      start_timing
      make -s bench-attention BUILD_DIR=$build >"$OUT/bench_attention.log" 2>&1
      note "bench-attention: exit $? (bench_attention.log)"
      cp bench_attention.json bench_torch_sdpa.json "$OUT/" 2>/dev/null
      make -s bench-gpu BUILD_DIR=$build >"$OUT/bench_gpu.log" 2>&1
      note "bench-gpu: exit $? (bench_gpu.log)"
      ;;
    *) note "unknown phase '$phase' (test, sanitize, rerun, cpu, quick, v4, v6, v7, profile, sweep, step, kernels, table, bench)" ;;
  esac
done
start_timing
echo
printf '%s\n' "${summary[@]}"
