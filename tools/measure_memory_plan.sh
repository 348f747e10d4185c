#!/usr/bin/env bash
# The memory planner against the CPU allocator's measured peak, through llm_train itself: for each
# model, world size and ZeRO stage, two steps under mpirun; the start-up plan's "peak per rank"
# against the log's "(peak N)" (rank 0's allocator since start-up). Prints markdown table rows.
# usage: tools/measure_memory_plan.sh CONFIG [extra llm_train flags...]  (run from the repo root)
# CASES="1 0,2 3,4 3" (ranks and stage, comma-separated) measures only those; the default is all.
set -euo pipefail
config=$1; shift
root=(); [ "$(id -u)" = 0 ] && root=(--allow-run-as-root)
IFS=, read -r -a cases <<<"${CASES:-1 0,2 0,2 1,2 2,2 3,4 0,4 1,4 2,4 3}"
for case in "${cases[@]}"; do
  read -r ranks stage <<<"$case"
  out=$(mpirun --oversubscribe "${root[@]}" -np "$ranks" -x OMP_NUM_THREADS=1 \
        ./llm_train "$config" --zero_stage "$stage" --overwrite_output_dir true "$@" 2>&1 | tr -d '\r')
  planned=$(grep -a -m1 "peak per rank" <<<"$out" | awk '{print $4}')
  measured=$(grep -a "(peak" <<<"$out" | tail -1 | sed 's/.*(peak \([0-9.]*\).*/\1/')
  awk -v r="$ranks" -v s="$stage" -v p="$planned" -v m="$measured" -v c="$config" \
      'BEGIN { printf "| %s | %s | %s | %.1f | %.1f | %+.1f%% |\n", c, r, s, m, p, 100 * (p - m) / m }'
done
