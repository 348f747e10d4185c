// defines: use_short_openmp_spins, called first thing in the programs' main
#pragma once

namespace llm {

// Starts the program again with GOMP_SPINCOUNT=10000 when the environment sets neither it nor
// OMP_WAIT_POLICY (a user's choice, or this call's own restart, is kept). libgomp's idle threads
// spin up to 300000 times between parallel regions before they sleep, and every op is a region:
// on a machine shared with other work the spinning takes the cores the working threads need.
// Measured on this project's 2-core machine: `llm_bench step`, tiny preset, beside three busy
// loops, 3865-4336 ms a step with libgomp's spins, 2183-2547 with 10000, 2121-2748 with no spin
// (OMP_WAIT_POLICY=passive); quiet, `llm_train configs/tiny.yaml --max_steps 1` (eval and
// sampling: many small regions) 6.5-7.4 s, 6.6-7.6 s and 7.2-7.9 s. libgomp reads the variables
// once, as it loads, so setting one means exec'ing the program again; on failure it runs on.
void use_short_openmp_spins(char** argv);

}  // namespace llm
