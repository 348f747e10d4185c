// llm_fuzz: a deterministic mutation fuzzer for our parsers (test/fuzz/fuzz.h). No libFuzzer:
// the same driver runs in the normal build (ctest: a fixed number of inputs from a fixed seed)
// and, built with AddressSanitizer and UBSan, in `make fuzz` (a time budget per target).
//
//   llm_fuzz --list
//   llm_fuzz TARGET [--iterations N] [--seconds S] [--seed N] [--corpus DIR] [--crash-dir DIR]
//   llm_fuzz TARGET FILE...          replays saved inputs, one run each
//
// Coverage stands in cheaply: an input whose outcome (its error message with digits and the
// scratch path taken out) was not seen before joins the corpus, so later mutations start from
// the deepest inputs found so far. A failing input is written to CRASH_DIR/crash-TARGET-SEED-I.
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#ifdef __SANITIZE_ADDRESS__
#include <sanitizer/common_interface_defs.h>
#endif

// defines: UserError
#include "engine/user_error.h"
// defines: Target, targets, PropertyFailure
#include "test/fuzz/fuzz.h"

namespace fs = std::filesystem;
using llm::fuzz::Target;

namespace {

constexpr size_t kMaxInputBytes = 1 << 16;
constexpr size_t kMaxCorpus = 4000;
constexpr unsigned kHangSeconds = 20;  // one input; the largest parse takes milliseconds

// splitmix64: the same stream on every platform and standard library, so a seed replays.
struct Rng {
  uint64_t state;
  uint64_t next() {
    uint64_t z = (state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
  size_t below(size_t n) { return n == 0 ? 0 : size_t(next() % n); }
};

// Values that sit on the edges parsers check: sizes, signs, overflow, floats that are not finite.
const std::vector<std::string> kNumbers = {
    "0", "-1", "1", "-0", "255", "256", "65536", "2147483647", "2147483648", "-2147483649",
    "4294967295", "4294967296", "9223372036854775807", "9223372036854775808",
    "18446744073709551615", "18446744073709551616", "1e308", "1e999", "-1e999", "nan", "inf",
    "0.5", "1e-400", "0x10", "99999999999999999999999999"};
const char kBytes[] = {0, '\n', '\r', '"', '\\', ' ', ':', ',', '{', '}', '[', ']', '-', '#',
                       char(0x7f), char(0x80), char(0xc3), char(0xff)};

// The input being run, for the death paths below (a signal handler may only use write(2)).
const std::string* g_input = nullptr;
char g_crash_path[4096];

void dump_input() {
  if (!g_input) return;
  int fd = open(g_crash_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0) return;
  ssize_t ignored = write(fd, g_input->data(), g_input->size());
  (void)ignored;
  close(fd);
  const char* what = "llm_fuzz: the input is saved as ";
  ignored = write(2, what, strlen(what));
  ignored = write(2, g_crash_path, strlen(g_crash_path));
  ignored = write(2, "\n", 1);
}

void on_fatal_signal(int sig) {
  const char* what = sig == SIGALRM ? "llm_fuzz: one input ran past the hang limit\n"
                                    : "llm_fuzz: the target crashed\n";
  ssize_t ignored = write(2, what, strlen(what));
  (void)ignored;
  dump_input();
  signal(sig, SIG_DFL);
  if (sig == SIGALRM) _exit(3);
  raise(sig);
}

void install_death_handlers() {
  signal(SIGALRM, on_fatal_signal);
#ifdef __SANITIZE_ADDRESS__
  __sanitizer_set_death_callback(dump_input);  // ASan owns the fault signals and reports first
  // GCC links UBSan as a runtime of its own that never calls ASan's death callback: `make fuzz`
  // has it abort (UBSAN_OPTIONS=abort_on_error=1), and ASan leaves SIGABRT to us.
  signal(SIGABRT, on_fatal_signal);
#else
  for (int sig : {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT}) signal(sig, on_fatal_signal);
#endif
}

std::string read_bytes(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// One random edit; inputs stay under kMaxInputBytes.
void mutate_once(std::string& s, Rng& rng, const std::vector<std::string>& corpus,
                 const std::vector<std::string>& dictionary) {
  const size_t at = rng.below(s.size() + 1);
  switch (rng.below(10)) {
    case 0:
      if (!s.empty()) s[rng.below(s.size())] ^= char(1u << rng.below(8));
      break;
    case 1:
      if (!s.empty()) s[rng.below(s.size())] = kBytes[rng.below(sizeof kBytes)];
      break;
    case 2: {
      std::string bytes(1 + rng.below(8), '\0');
      for (char& c : bytes) c = char(rng.next());
      s.insert(at, bytes);
      break;
    }
    case 3:
      if (at < s.size()) s.erase(at, 1 + rng.below(std::min<size_t>(s.size() - at, 32)));
      break;
    case 4:
      if (!s.empty()) {  // a run of the input repeated elsewhere: lists, nesting, duplicate keys
        const size_t from = rng.below(s.size());
        s.insert(at, s.substr(from, 1 + rng.below(std::min<size_t>(s.size() - from, 64))));
      }
      break;
    case 5: {  // splice: this input's head, another one's tail
      const std::string& other = corpus[rng.below(corpus.size())];
      s = s.substr(0, at) + other.substr(rng.below(other.size() + 1));
      break;
    }
    case 6:
    case 7:
      if (!dictionary.empty()) s.insert(at, dictionary[rng.below(dictionary.size())]);
      break;
    case 8: {  // a number replaced by an edge value
      size_t begin = s.find_first_of("0123456789", at);
      if (begin == std::string::npos) begin = at;
      const size_t end = std::min(s.find_first_not_of("0123456789.eE+", begin), s.size());
      s.replace(begin, end - begin, kNumbers[rng.below(kNumbers.size())]);
      break;
    }
    default:
      s.resize(at);
  }
  if (s.size() > kMaxInputBytes) s.resize(kMaxInputBytes);
}

// What the target made of an input: a bug, or its refusal's message ("" when it parsed).
struct Outcome {
  bool bug = false;
  std::string message;
};

// A refusal is one line; several only where one error lists several keys (the config), each a
// whole line about the same file. UserError itself escapes other control characters.
bool one_line_each(const std::string& what) {
  if (what.empty()) return false;
  const std::string prefix = what.substr(0, what.find(':') + 1);
  for (size_t at = what.find('\n'); at != std::string::npos; at = what.find('\n', at + 1))
    if (prefix.empty() || what.compare(at + 1, prefix.size(), prefix) != 0) return false;
  return true;
}

Outcome run_one(const Target& target, const std::string& input, const std::string& scratch) {
  try {
    target.run(input, scratch);
    return {};
  } catch (const llm::UserError& e) {
    const std::string what = e.what();
    if (!one_line_each(what)) return {true, "a UserError that is not one line: " + what};
    return {false, what};
  } catch (const llm::fuzz::PropertyFailure& e) {
    return {true, std::string("property failed: ") + e.what()};
  } catch (const std::exception& e) {
    return {true, std::string("an exception other than UserError: ") + e.what()};
  } catch (...) {
    return {true, "an exception of unknown type"};
  }
}

// The message's shape: the scratch path, digits and quoted user text taken out, so that inputs
// refused by the same check share it and only a new check adds to the corpus.
std::string signature(std::string message, const std::string& scratch) {
  for (size_t at; (at = message.find(scratch)) != std::string::npos;) message.erase(at, scratch.size());
  std::string shape;
  char quote = 0;
  for (char c : message) {
    if (quote) {
      if (c == quote) quote = 0;
    } else if (c == '\'' || c == '"') {
      quote = c;
      shape += c;
    } else if (c < '0' || c > '9') {
      shape += c;
    }
  }
  return shape.substr(0, 100);
}

struct Options {
  uint64_t iterations = 0;  // 0: until `seconds` pass
  double seconds = 0;
  uint64_t seed = 1;
  std::string corpus_dir = LLM_FUZZ_CORPUS_DIR;
  std::string crash_dir = ".";
  std::vector<std::string> replay;
};

[[noreturn]] void usage(const std::string& why) {
  std::fprintf(stderr, "llm_fuzz: %s\nusage: llm_fuzz --list | llm_fuzz TARGET [--iterations N] "
               "[--seconds S] [--seed N] [--corpus DIR] [--crash-dir DIR] | llm_fuzz TARGET FILE...\n",
               why.c_str());
  std::exit(2);
}

int fuzz(const Target& target, const Options& o, const std::string& scratch) {
  std::vector<std::string> corpus = target.setup ? target.setup(scratch) : std::vector<std::string>{};
  const fs::path dir = fs::path(o.corpus_dir) / target.corpus;
  std::vector<fs::path> files;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir, ec)) files.push_back(entry.path());
  std::sort(files.begin(), files.end());  // directory order differs between machines
  for (const fs::path& f : files) corpus.push_back(read_bytes(f));
  if (corpus.empty()) usage("no seeds for " + target.name + " in " + dir.string());

  Rng rng{o.seed};
  std::set<std::string> seen;
  uint64_t parsed = 0, refused = 0, n = 0;
  const auto start = std::chrono::steady_clock::now();
  auto elapsed = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(); };
  for (;; n++) {
    if (o.iterations ? n >= o.iterations : elapsed() >= o.seconds) break;
    // The seeds themselves first, then stacked mutations of corpus entries.
    std::string input = corpus[n < corpus.size() ? n : rng.below(corpus.size())];
    if (n >= corpus.size())
      for (size_t k = 1 + rng.below(4); k > 0; k--) mutate_once(input, rng, corpus, target.dictionary);
    std::snprintf(g_crash_path, sizeof g_crash_path, "%s/crash-%s-%llu-%llu", o.crash_dir.c_str(),
                  target.name.c_str(), (unsigned long long)o.seed, (unsigned long long)n);
    g_input = &input;
    alarm(kHangSeconds);
    const Outcome out = run_one(target, input, scratch);
    alarm(0);
    if (out.bug) {
      std::fprintf(stderr, "llm_fuzz %s: input %llu (seed %llu): %s\n", target.name.c_str(),
                   (unsigned long long)n, (unsigned long long)o.seed, out.message.c_str());
      dump_input();
      return 1;
    }
    g_input = nullptr;
    (out.message.empty() ? parsed : refused)++;
    if (seen.insert(signature(out.message, scratch)).second && corpus.size() < kMaxCorpus)
      corpus.push_back(input);
  }
  std::printf("llm_fuzz %s: %llu inputs in %.1f s (seed %llu): %llu parsed, %llu refused in one line, "
              "%zu outcomes, corpus %zu\n", target.name.c_str(), (unsigned long long)n, elapsed(),
              (unsigned long long)o.seed, (unsigned long long)parsed, (unsigned long long)refused,
              seen.size(), corpus.size());
  return 0;
}

int replay(const Target& target, const Options& o, const std::string& scratch) {
  if (target.setup) target.setup(scratch);
  int status = 0;
  for (const std::string& path : o.replay) {
    const std::string input = read_bytes(path);
    g_input = &input;
    const Outcome out = run_one(target, input, scratch);
    std::printf("%s: %s%s\n", path.c_str(), out.bug ? "BUG: " : "",
                out.message.empty() ? "parsed" : out.message.c_str());
    if (out.bug) status = 1;
  }
  g_input = nullptr;
  return status;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) usage("no target");
  const std::string name = argv[1];
  if (name == "--list") {
    for (const Target& t : llm::fuzz::targets()) std::printf("%s\n", t.name.c_str());
    return 0;
  }
  const auto& all = llm::fuzz::targets();
  auto target = std::find_if(all.begin(), all.end(), [&](const Target& t) { return t.name == name; });
  if (target == all.end()) usage("no target named " + name + " (llm_fuzz --list)");
  Options o;
  for (int i = 2; i < argc; i++) {
    const std::string arg = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) usage(arg + " needs a value");
      return argv[++i];
    };
    if (arg == "--iterations") o.iterations = std::stoull(value());
    else if (arg == "--seconds") o.seconds = std::stod(value());
    else if (arg == "--seed") o.seed = std::stoull(value());
    else if (arg == "--corpus") o.corpus_dir = value();
    else if (arg == "--crash-dir") o.crash_dir = value();
    else if (arg.rfind("--", 0) == 0) usage("unknown option " + arg);
    else o.replay.push_back(arg);
  }
  if (o.replay.empty() && o.iterations == 0 && o.seconds <= 0) usage("give --iterations or --seconds");

  // Parsers read files: a scratch directory in memory when the machine has one.
  const fs::path base = fs::is_directory("/dev/shm") && access("/dev/shm", W_OK) == 0
                            ? fs::path("/dev/shm") : fs::temp_directory_path();
  std::string pattern = (base / ("llm_fuzz_" + name + "_XXXXXX")).string();
  if (!mkdtemp(pattern.data())) usage("cannot create a scratch directory under " + base.string());
  install_death_handlers();
  const int status = o.replay.empty() ? fuzz(*target, o, pattern) : replay(*target, o, pattern);
  std::error_code ec;
  fs::remove_all(pattern, ec);
  return status;
}
