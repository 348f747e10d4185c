// defines: install_stop_signal_handlers, silence_second_signal_message, stop_signal, StopRequested
#include "engine/stop_signal.h"

#include <unistd.h>

#include <atomic>
#include <csignal>
#include <cstring>

namespace llm {

namespace {
std::atomic<int> first_signal{0};
std::atomic<bool> says_second_signal{true};
const char* second_signal_text = nullptr;
size_t second_signal_length = 0;

void on_stop_signal(int signal) {
  int none = 0;
  if (first_signal.compare_exchange_strong(none, signal)) return;
  // A second signal: leave now, with the code the shell gives a process that signal ended. Only
  // write(2) and _exit are safe in a handler: the line was measured when it was installed.
  if (second_signal_text != nullptr && says_second_signal.load()) {
    [[maybe_unused]] const ssize_t written = write(STDERR_FILENO, second_signal_text, second_signal_length);
  }
  _exit(kStopExitCodeBase + signal);
}
}  // namespace

std::string signal_name(int signal) {
  if (signal == SIGINT) return "SIGINT";
  if (signal == SIGTERM) return "SIGTERM";
  return "signal " + std::to_string(signal);
}

void install_stop_signal_handlers(const char* second_signal_line) {
  second_signal_text = second_signal_line;
  second_signal_length = second_signal_line != nullptr ? std::strlen(second_signal_line) : 0;
  std::signal(SIGINT, on_stop_signal);
  std::signal(SIGTERM, on_stop_signal);
}

void silence_second_signal_message() { says_second_signal.store(false); }

int stop_signal() { return first_signal.load(); }

StopRequested::StopRequested(int signal, const std::string& during)
    : std::runtime_error("stopped by " + signal_name(signal) + " during start-up (" + during +
                         "), before the first step: no checkpoint written; run the same command to start again"),
      signal(signal) {}

}  // namespace llm
