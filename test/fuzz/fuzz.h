// Fuzz targets: one per parser of user input. llm_fuzz (test/fuzz/fuzz_main.cpp) feeds each one
// seeded byte mutations of its corpus (test/fuzz/corpus/<target>/); a target passes an input when
// it parses or ends in a one-line UserError. Anything else (another exception, a wrong round
// trip, a crash, a sanitizer report, a hang) is a bug, and the input is kept to replay.
#pragma once
#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

namespace llm::fuzz {

// A property that failed on an input the parser accepted (e.g. a round trip that changed it);
// the driver treats it as a bug, never as a refusal.
struct PropertyFailure : std::logic_error {
  using std::logic_error::logic_error;
};

struct Target {
  std::string name;
  std::string corpus;  // its folder under test/fuzz/corpus
  // Byte strings the mutator inserts: the format's syntax and key names, which random bytes
  // would take long to spell.
  std::vector<std::string> dictionary;
  // Called once with a scratch directory of its own, before any input; returns seeds built in
  // code (a fixture's own valid file) to add to the corpus files.
  std::function<std::vector<std::string>(const std::string& scratch)> setup;
  // Parses `input` (written where the parser reads it, under `scratch`); throws UserError on
  // bad input.
  std::function<void(const std::string& input, const std::string& scratch)> run;
};

// Shared by the targets: files as bytes, a property check, and a JSON format's dictionary
// (its key names quoted, plus JSON's syntax and awkward values).
void write_bytes(const std::string& path, const std::string& bytes);
std::string read_bytes(const std::string& path);
void require(bool ok, const std::string& what);  // throws PropertyFailure
std::vector<std::string> with_json(std::vector<std::string> keys);

// Every target: the main inputs' (fuzz_targets.cpp) and the side files' (fuzz_side_files.cpp).
const std::vector<Target>& targets();
std::vector<Target> side_file_targets();
Target chat_template_jinja_target();  // fuzz_jinja.cpp
Target parquet_target();  // fuzz_tables.cpp
Target arrow_target();    // fuzz_tables.cpp
Target csv_target();      // fuzz_tables.cpp
Target reward_pairs_target();          // fuzz_reward.cpp
Target process_reward_rows_target();  // fuzz_reward.cpp

}  // namespace llm::fuzz
