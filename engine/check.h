// LLM_CHECK: internal invariants and API misuse; throws std::runtime_error with the message and
// the file:line of the check. User input (config, data, checkpoints, CLI) is validated with its
// own clearer errors (engine/user_error.h).
#pragma once
#include <stdexcept>
#include <string>

#define LLM_CHECK(cond, msg)                                                                   \
  do {                                                                                         \
    if (!(cond))                                                                               \
      throw std::runtime_error(std::string(msg) + " (" + __FILE__ + ":" +                      \
                               std::to_string(__LINE__) + ")");                                \
  } while (0)
