// defines: install_stop_signal_handlers, stop_signal, StopRequested
#include "engine/stop_signal.h"

#include <unistd.h>

#include <atomic>
#include <csignal>

namespace llm {

namespace {
std::atomic<int> first_signal{0};

std::string signal_name(int signal) {
  if (signal == SIGINT) return "SIGINT";
  if (signal == SIGTERM) return "SIGTERM";
  return "signal " + std::to_string(signal);
}

void on_stop_signal(int signal) {
  int none = 0;
  // A second signal: leave now, with the code the shell gives a process that signal ended.
  if (!first_signal.compare_exchange_strong(none, signal)) _exit(kStopExitCodeBase + signal);
}
}  // namespace

void install_stop_signal_handlers() {
  std::signal(SIGINT, on_stop_signal);
  std::signal(SIGTERM, on_stop_signal);
}

int stop_signal() { return first_signal.load(); }

StopRequested::StopRequested(int signal, const std::string& during)
    : std::runtime_error("stopped by " + signal_name(signal) + " during start-up (" + during +
                         "), before the first step: no checkpoint written; run the same command to start again"),
      signal(signal) {}

}  // namespace llm
