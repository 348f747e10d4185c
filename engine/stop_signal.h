// A clean stop on SIGINT or SIGTERM. The handler only records the first signal; the program stops
// at its next safe point: after the current training step (with a checkpoint), between two
// evaluation batches (with the checkpoint of the step before its evaluation, which a resume runs
// first), or at a stop point of start-up, where nothing is half written (StopRequested). A second signal exits at once, after
// writing the program's line for it to stderr.
#pragma once
#include <stdexcept>
#include <string>

namespace llm {

// llm_train calls this first thing in main, so a signal during config parsing, tokenisation or
// model loading is a clean stop too. `second_signal_line` (a string that lives as long as the
// program, or nullptr) is what a second signal writes before the exit.
void install_stop_signal_handlers(const char* second_signal_line);

// Ranks other than the first call this, so a second signal to an mpirun job prints one line, not
// one per rank.
void silence_second_signal_message();

// The first signal received (SIGINT or SIGTERM); 0 while none.
int stop_signal();
std::string signal_name(int signal);  // "SIGINT", "SIGTERM", "signal N"

// Thrown at a stop point of start-up after a stop signal (`during` names the phase); llm_train prints one line and exits
// kStopExitCodeBase + signal (the shell's code for a process that signal ended: 130, 143).
struct StopRequested : std::runtime_error {
  StopRequested(int signal, const std::string& during);
  int signal;
};
constexpr int kStopExitCodeBase = 128;

}  // namespace llm
