// LLM_CHECK: internal invariants and API misuse; throws std::runtime_error with the message.
// User input (config, data, checkpoints, CLI) is validated in io/ with its own clearer errors.
#pragma once
#include <stdexcept>
#include <string>

#define LLM_CHECK(cond, msg)                                        \
  do {                                                              \
    if (!(cond)) throw std::runtime_error(std::string(msg));        \
  } while (0)
