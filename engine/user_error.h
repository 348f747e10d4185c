// UserError: bad input from the user (config, data, checkpoint, CLI). Its message is one line
// naming the file, the key or offset, and what was expected; llm_train prints it and exits 2.
#pragma once
#include <stdexcept>
#include <string>

namespace llm {

struct UserError : std::runtime_error {
  explicit UserError(const std::string& message) : std::runtime_error(message) {}
};

constexpr int kUserErrorExitCode = 2;

}  // namespace llm
