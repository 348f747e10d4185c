// defines: use_passive_openmp_waits, called first thing in the programs' main
#pragma once

namespace llm {

// Starts the program again with OMP_WAIT_POLICY=passive when the environment names no policy
// (a user's choice, or this call's own restart, is kept). libgomp's idle threads spin between
// parallel regions by default, and every op is one: on a machine shared with other work the
// spinning takes the cores the working threads need. Measured on this project's 2-core machine,
// `llm_bench step` (tiny preset, 2 threads): at load 5, 1190-2880 ms a step spinning vs 740-1190
// passive; on a quiet machine 372-388 vs 366-403, no cost. libgomp reads the variable once, as it
// loads, so setting it means exec'ing the program again; on failure it runs on as it is.
void use_passive_openmp_waits(char** argv);

}  // namespace llm
