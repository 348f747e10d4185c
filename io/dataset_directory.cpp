// defines: read_dataset_directory, resolve_data_pattern, has_glob_magic, directory_split_files
// (io/dataset_directory.h)
#include "io/dataset_directory.h"

#include <algorithm>
#include <cctype>
#include <cstring>
#include <filesystem>
#include <map>
#include <regex>
#include <tuple>

#include "engine/user_error.h"
#include "io/dataset_split.h"
#include "io/saved_dataset.h"

namespace llm {

namespace fs = std::filesystem;

namespace {

// datasets' FILES_TO_IGNORE: never data, whatever the pattern.
bool ignored_name(const std::string& name) {
  for (const char* n : {"README.md", "config.json", "dataset_info.json", "dataset_infos.json", "dummy_data.zip",
                        "dataset_dict.json"})
    if (name == n) return true;
  return false;
}

// The loader each extension HF knows picks (its _EXTENSION_TO_MODULE; media folders abridged to
// their common extensions), "zip" for archives. Exact case: HF keeps a file only by a suffix in
// this list as written (media ones in both cases), and counts suffixes lowercased.
const std::map<std::string, std::string>& known_extensions() {
  static const std::map<std::string, std::string> known = [] {
    std::map<std::string, std::string> m = {
        {".csv", "csv"},         {".tsv", "tsv"},         {".json", "json"},   {".jsonl", "json"},
        {".ndjson", "json"},     {".parquet", "parquet"}, {".geoparquet", "parquet"}, {".gpq", "parquet"},
        {".arrow", "arrow"},     {".txt", "text"},        {".tar", "webdataset"}, {".xml", "xml"},
        {".hdf5", "hdf5"},       {".h5", "hdf5"},         {".eval", "eval"},   {".lance", "lance"},
        {".zip", "zip"},         {".idx", ""},            {".txn", ""},        {".manifest", ""}};  // (lance metadata)
    const std::pair<const char*, std::vector<const char*>> media[] = {
        {"imagefolder", {".png", ".jpg", ".jpeg", ".gif", ".bmp", ".tif", ".tiff", ".webp"}},
        {"audiofolder", {".wav", ".mp3", ".flac", ".ogg"}},
        {"videofolder", {".mp4", ".mkv", ".avi", ".mov", ".mpeg"}},
        {"pdffolder", {".pdf"}},
        {"niftifolder", {".nii"}}};
    for (const auto& [loader, extensions] : media)
      for (std::string ext : extensions) {
        m[ext] = loader;
        std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return std::toupper(c); });
        m[ext] = loader;
      }
    return m;
  }();
  return known;
}

// A file name's suffixes as datasets splits them: "a.jsonl.gz" -> .jsonl, .gz.
std::vector<std::string> suffixes(const std::string& name) {
  std::vector<std::string> out;
  for (size_t dot = name.find('.'); dot != std::string::npos;) {
    const size_t next = name.find('.', dot + 1);
    out.push_back(name.substr(dot, next == std::string::npos ? std::string::npos : next - dot));
    dot = next;
  }
  return out;
}

std::string base_name(const std::string& rel) { return rel.substr(rel.rfind('/') + 1); }

bool has_known_extension(const std::string& rel) {
  for (const std::string& s : suffixes(base_name(rel)))
    if (known_extensions().count(s)) return true;
  return false;
}

// datasets' infer_module_for_data_files_list: the most common suffix (lowercased; metadata.* files
// last; ties to .parquet, .jsonl, .json, .csv, then the greater name) that names a loader.
std::string loader_of(const std::vector<std::string>& files) {
  std::map<std::pair<std::string, bool>, int> counts;
  for (const std::string& rel : files) {
    const std::string name = base_name(rel);
    const bool metadata = name == "metadata.csv" || name == "metadata.jsonl" || name == "metadata.parquet";
    for (std::string s : suffixes(name)) {
      std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
      counts[{s, metadata}]++;
    }
  }
  std::vector<std::pair<std::pair<std::string, bool>, int>> order(counts.begin(), counts.end());
  const auto key = [](const auto& e) {
    const std::string& ext = e.first.first;
    return std::make_tuple(!e.first.second, e.second, ext == ".parquet", ext == ".jsonl", ext == ".json", ext == ".csv",
                           ext);
  };
  std::sort(order.begin(), order.end(), [&](const auto& a, const auto& b) { return key(a) > key(b); });
  for (const auto& e : order)
    if (auto it = known_extensions().find(e.first.first); it != known_extensions().end() && !it->second.empty())
      return it->second;
  return "";
}

// datasets' last filter: a file stays when one of the loader's extensions (csv's: .csv and .tsv,
// which HF then reads as comma-separated) ends its absolute path or is followed by another suffix
// (data.jsonl.gz); the directory's own path counts, as HF matches the whole path.
bool loader_reads(const std::string& loader, const std::string& path) {
  for (const auto& [ext, owner] : known_extensions()) {
    if (owner != loader && ext != ".zip" && !(loader == "csv" && owner == "tsv")) continue;
    for (size_t at = path.find(ext); at != std::string::npos; at = path.find(ext, at + 1)) {
      const size_t end = at + ext.size();
      if (end == path.size() || (path[end] == '.' && end + 1 < path.size())) return true;
    }
  }
  return false;
}

// HF's keyword delimiters, NON_WORDS_CHARS "-._ 0-9".
bool delimiter(char c) { return c == '-' || c == '.' || c == '_' || c == ' ' || (c >= '0' && c <= '9'); }

// fsspec's reading of datasets' keyword patterns on one path part: "k[S]*", "*[S]k", "*[S]k[S]*".
bool keyword_first(const std::string& part, const std::string& k) {
  return part.size() > k.size() && part.compare(0, k.size(), k) == 0 && delimiter(part[k.size()]);
}
bool keyword_last(const std::string& part, const std::string& k) {
  return part.size() > k.size() && part.compare(part.size() - k.size(), k.size(), k) == 0 &&
         delimiter(part[part.size() - k.size() - 1]);
}
bool keyword_inside(const std::string& part, const std::string& k) {
  for (size_t at = part.find(k, 1); at != std::string::npos; at = part.find(k, at + 1))
    if (delimiter(part[at - 1]) && at + k.size() < part.size() && delimiter(part[at + k.size()])) return true;
  return false;
}

std::vector<std::string> parts_of(const std::string& rel) {
  std::vector<std::string> parts;
  for (const auto& p : fs::path(rel)) parts.push_back(p.string());
  return parts;
}

// One of datasets' default patterns: a keyword in a directory name (**/k/**, **/k[S]*/**,
// **/*[S]k/**, **/*[S]k[S]*/**) or in the file name (**/k[S]*, **/*[S]k[S]*).
struct KeywordPattern {
  bool in_directory;
  int form;  // 0: the whole part (directories only), 1: first, 2: last (directories only), 3: inside
  std::string keyword;
  bool matches(const std::vector<std::string>& parts) const {  // a relative path's parts_of
    const auto fits = [&](const std::string& part) {
      return form == 0 ? part == keyword
                       : form == 1 ? keyword_first(part, keyword)
                                   : form == 2 ? keyword_last(part, keyword) : keyword_inside(part, keyword);
    };
    if (!in_directory) return fits(parts.back());
    return std::any_of(parts.begin(), parts.end() - 1, fits);
  }
};

const std::vector<std::pair<std::string, std::vector<std::string>>>& split_keywords() {
  static const std::vector<std::pair<std::string, std::vector<std::string>>> k = {
      {"train", {"train", "training"}},
      {"validation", {"validation", "valid", "dev", "val"}},
      {"test", {"test", "testing", "eval", "evaluation"}}};
  return k;
}

bool digits(const std::string& s, size_t at, size_t n) {
  if (at + n > s.size()) return false;
  for (size_t i = at; i < at + n; i++)
    if (!std::isdigit(static_cast<unsigned char>(s[i]))) return false;
  return true;
}

// "-00000-of-00002" at `at` (the last part's fifth digit optional, as datasets' regex has it when
// it reads a split name off a file name; `five` asks for it, as its glob does).
bool shard_mark(const std::string& name, size_t at, bool five) {
  return name.compare(at, 1, "-") == 0 && digits(name, at + 1, 5) && name.compare(at + 6, 4, "-of-") == 0 &&
         digits(name, at + 10, five ? 5 : 4);
}

// datasets' SPLIT_PATTERN_SHARDED, data/{split}-[0-9]x5-of-[0-9]x5*.*, for the split `split`
// (empty: any split).
bool sharded(const std::string& rel, const std::string& split) {
  const std::vector<std::string> parts = parts_of(rel);
  if (parts.size() != 2 || parts[0] != "data") return false;
  const std::string& name = parts[1];
  const auto marked = [&](size_t at) { return shard_mark(name, at, true) && name.find('.', at + 15) != std::string::npos; };
  if (!split.empty()) return name.compare(0, split.size(), split) == 0 && marked(split.size());
  for (size_t at = 0; at < name.size(); at++)
    if (marked(at)) return true;
  return false;
}

// The split a sharded file name gives: the longest head before "-00000-of-0000" (datasets'
// string_to_dict), which must be a split name (\w+(\.\w+)*).
std::string shard_split(const std::string& dir, const std::string& rel) {
  const std::string name = parts_of(rel)[1];
  size_t at = name.size();
  while (--at > 0 && !shard_mark(name, at, false)) {
  }
  const std::string split = name.substr(0, at);
  const std::optional<RowSlice> named = parse_split(split);
  if (!named || named->split != split)
    throw UserError(dir + ": " + rel + " names split '" + split + "', and HF's datasets refuses a split name that is "
                    "not word characters (\\w+(\\.\\w+)*); rename it or name the files with data_files");
  return split;
}

bool hidden_name(const std::string& name) {
  return name[0] == '.' && name.find_first_not_of('.') != std::string::npos;
}

// The directory's files, relative and sorted, as datasets' patterns see them (see the header):
// symlinked files are read, symlinked directories never entered (fsspec's walk takes them for
// neither a file nor a directory).
std::vector<std::string> visible_files(const std::string& dir) {
  std::vector<std::string> files;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(dir, fs::directory_options::skip_permission_denied, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (it->is_directory(ec)) {
      if (hidden_name(name) || name.rfind("__", 0) == 0) it.disable_recursion_pending();  // no data there
      continue;
    }
    if (hidden_name(name) || !it->is_regular_file(ec) || ignored_name(name)) continue;
    files.push_back(it->path().lexically_relative(dir).generic_string());
  }
  std::sort(files.begin(), files.end());
  return files;
}

// The files directly in data/, where datasets' sharded pattern looks (fsspec's glob lists that
// directory by name, so a symlinked data/ is read for it alone).
std::vector<std::string> data_folder_files(const std::string& dir) {
  std::vector<std::string> files;
  std::error_code ec;
  for (const fs::directory_entry& e : fs::directory_iterator(fs::path(dir) / "data", ec)) {
    const std::string name = e.path().filename().string();
    if (!hidden_name(name) && e.is_regular_file(ec) && !ignored_name(name)) files.push_back("data/" + name);
  }
  std::sort(files.begin(), files.end());
  return files;
}

// The splits and their patterns' matches, from the first of datasets' rules that names one.
std::vector<DatasetDirectorySplit> split_files(const std::string& dir, const std::vector<std::string>& all) {
  const std::vector<std::string> data_folder = data_folder_files(dir);
  std::vector<DatasetDirectorySplit> splits;
  const auto keep = [](const std::vector<std::string>& files, auto&& match) {
    std::vector<std::string> out;
    for (const std::string& f : files)
      if (match(f) && has_known_extension(f)) out.push_back(f);
    return out;
  };
  // data/{split}-00000-of-00001.*: the splits those names give, train, validation, test first.
  std::vector<std::string> names;
  for (const std::string& f : data_folder)
    if (sharded(f, "")) names.push_back(shard_split(dir, f));
  if (!names.empty()) {
    std::sort(names.begin(), names.end());
    names.erase(std::unique(names.begin(), names.end()), names.end());
    std::vector<std::string> ordered;
    for (const auto& [split, keywords] : split_keywords())
      if (std::find(names.begin(), names.end(), split) != names.end()) ordered.push_back(split);
    for (const std::string& n : names)
      if (std::find(ordered.begin(), ordered.end(), n) == ordered.end()) ordered.push_back(n);
    for (const std::string& n : ordered)
      splits.push_back({n, keep(data_folder, [&](const std::string& f) { return sharded(f, n); })});
    return splits;
  }
  // datasets' logs pattern **/*.eval, then the keyword rules, a directory's name before a file's.
  const auto eval_log = [](const std::string& f) {
    const std::string name = base_name(f);
    return name.size() > 5 && name.compare(name.size() - 5, 5, ".eval") == 0;
  };
  if (std::any_of(all.begin(), all.end(), eval_log)) return {{"logs", keep(all, eval_log)}};
  std::vector<std::vector<std::string>> parts;  // each file's, split once for the 60 patterns
  for (const std::string& f : all) parts.push_back(parts_of(f));
  for (const bool in_directory : {true, false}) {
    for (const auto& [split, keywords] : split_keywords()) {
      std::vector<KeywordPattern> patterns;
      for (const std::string& k : keywords)
        for (int form : in_directory ? std::vector<int>{0, 1, 2, 3} : std::vector<int>{1, 3})
          patterns.push_back({in_directory, form, k});
      bool named = false;
      std::vector<std::string> files;
      for (const KeywordPattern& p : patterns)
        for (size_t i = 0; i < all.size(); i++) {
          if (!p.matches(parts[i])) continue;
          named = true;
          if (has_known_extension(all[i])) files.push_back(all[i]);
        }
      if (named) splits.push_back({split, std::move(files)});
    }
    if (!splits.empty()) return splits;
  }
  return {{"train", keep(all, [](const std::string&) { return true; })}};
}


// fnmatch's translation of a bracket class's inside (`stuff`, between '[' and ']'), step for step
// as Python's: split at each '-' into ranges, a range whose ends are out of order dropped with
// both ends ("remove empty ranges": `[z-a]` matches nothing, `[ab-a]` is `[a]`), a trailing '-'
// literal; then the joined text decides: empty matches nothing, "!" any character, a leading '!'
// negates (also one that a dropped range brought to the front, as Python's does).
std::string class_regex(const std::string& stuff) {
  std::vector<std::string> chunks;
  if (stuff.find('-') == std::string::npos) {
    chunks.push_back(stuff);
  } else {
    size_t from = 0, k = stuff[0] == '!' ? 2 : 1;
    while ((k = stuff.find('-', k)) != std::string::npos) {
      chunks.push_back(stuff.substr(from, k - from));
      from = k + 1;
      k += 3;
    }
    if (from < stuff.size()) chunks.push_back(stuff.substr(from));
    else chunks.back() += '-';
    // Out of order as std::regex orders a range's ends (plain chars): Python compares code points,
    // which agree on ASCII; classes of other characters match bytes here in any case.
    for (size_t k = chunks.size() - 1; k > 0; k--)
      if (!chunks[k - 1].empty() && chunks[k - 1].back() > chunks[k][0]) {
        chunks[k - 1] = chunks[k - 1].substr(0, chunks[k - 1].size() - 1) + chunks[k].substr(1);
        chunks.erase(chunks.begin() + static_cast<std::ptrdiff_t>(k));
      }
  }
  std::string joined;  // the chunks' own characters, each escaped; ranges between them
  for (size_t k = 0; k < chunks.size(); k++) {
    if (k > 0) joined += '-';
    for (const char c : chunks[k]) joined += std::strchr("\\^[]-", c) ? std::string("\\") + c : std::string(1, c);
  }
  if (joined.empty()) return "(?!)";
  if (joined == "!") return "[\\s\\S]";
  return joined[0] == '!' ? "[^" + joined.substr(1) + "]" : "[" + joined + "]";
}

// fsspec's glob_translate (recursive, hidden included) of one pattern, as an ECMAScript regex.
std::string glob_regex(const std::string& dir, const std::string& pattern) {
  std::vector<std::string> parts(1);
  for (char c : pattern) {
    if (c == '/') parts.emplace_back();
    else parts.back() += c;
  }
  std::string re;
  const auto escaped = [](char c) {
    return std::strchr("\\^$.|?*+()[]{}/", c) ? std::string("\\") + c : std::string(1, c);
  };
  for (size_t i = 0; i < parts.size(); i++) {
    const std::string& part = parts[i];
    const bool last = i + 1 == parts.size();
    if (part == "*") {
      re += last ? "[^/]+" : "[^/]+/";
      continue;
    }
    if (part == "**") {
      re += last ? "[\\s\\S]*" : "(?:[\\s\\S]+/)?";
      continue;
    }
    if (part.find("**") != std::string::npos)
      throw UserError(dir + ": data_files pattern '" + pattern + "': '**' can only be a whole path part, as fsspec's "
                      "glob (HF's datasets) requires");
    for (size_t j = 0; j < part.size(); j++) {
      const char c = part[j];
      if (c == '*') {
        re += "[^/]*";
      } else if (c == '?') {
        re += "[^/]";
      } else if (c == '[') {
        size_t end = j + 1;  // fnmatch's class: a leading '!' or ']' belongs to it
        if (end < part.size() && part[end] == '!') end++;
        if (end < part.size() && part[end] == ']') end++;
        end = part.find(']', end);
        if (end == std::string::npos) {
          re += "\\[";
          continue;
        }
        re += class_regex(part.substr(j + 1, end - j - 1));
        j = end;
      } else {
        re += escaped(c);
      }
    }
    if (!last) re += "/";
  }
  return re;
}

// How many parts of `path` (its parent's, with `parents_only`) start with `prefix` ("." hidden,
// "__" special; a part of dots only is no hidden one).
size_t parts_starting(const std::string& path, const char* prefix, bool parents_only) {
  std::vector<std::string> parts = parts_of(path);
  if (parents_only && !parts.empty()) parts.pop_back();
  return static_cast<size_t>(std::count_if(parts.begin(), parts.end(), [&](const std::string& p) {
    return p.rfind(prefix, 0) == 0 && p.find_first_not_of('.') != std::string::npos;
  }));
}

}  // namespace

bool has_glob_magic(const std::string& pattern) { return pattern.find_first_of("*?[") != std::string::npos; }

std::vector<std::string> resolve_data_pattern(const std::string& dir, const std::string& given,
                                              bool known_extensions_only) {
  std::string pattern = given;
  while (pattern.rfind("./", 0) == 0) pattern.erase(0, 2);
  // std::regex compiles and matches recursively (100 000 `?` overflowed the stack); no path
  // matched is longer than PATH_MAX, 4096 bytes.
  constexpr size_t kMaxPattern = 4096;
  if (pattern.size() > kMaxPattern)
    throw UserError(dir + ": data_files pattern: expected a glob pattern of at most " + std::to_string(kMaxPattern) +
                    " characters (a path's limit), got " + std::to_string(pattern.size()) + " characters");
  std::regex re;
  try {
    re = std::regex(glob_regex(dir, pattern));
  } catch (const std::regex_error& e) {
    throw UserError(dir + ": data_files pattern '" + pattern + "': expected a glob pattern, got one whose bracket class "
                    "cannot be matched (" + e.what() + ")");
  }
  // fsspec walks from the pattern's literal leading directory (entered even when a symlink).
  std::string root;
  const std::vector<std::string> parts = parts_of(pattern);
  for (size_t i = 0; i + 1 < parts.size() && !has_glob_magic(parts[i]); i++) root += parts[i] + "/";
  std::vector<std::string> candidates;
  std::error_code ec;
  if (!has_glob_magic(pattern)) {
    candidates.push_back(pattern);
  } else {
    const fs::path start = fs::path(dir) / root;
    for (auto it = fs::recursive_directory_iterator(start, fs::directory_options::skip_permission_denied, ec);
         !ec && it != fs::recursive_directory_iterator(); it.increment(ec))
      if (!it->is_directory(ec)) candidates.push_back(root + it->path().lexically_relative(start).generic_string());
  }
  const std::string pattern_name = base_name(pattern);
  std::vector<std::string> out;
  for (const std::string& rel : candidates) {
    if (!fs::is_regular_file(fs::path(dir) / rel, ec) || !std::regex_match(rel, re)) continue;
    const std::string name = base_name(rel);
    if (ignored_name(name) && name != pattern_name) continue;
    if (parts_starting(rel, "__", true) != parts_starting(pattern, "__", true)) continue;
    if (parts_starting(rel, ".", false) != parts_starting(pattern, ".", false)) continue;
    if (known_extensions_only && !has_known_extension(rel)) continue;
    out.push_back(rel);
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::optional<DatasetDirectory> read_dataset_directory(const std::string& dir) {
  std::error_code ec;
  const fs::path named = fs::path(dir).lexically_normal();
  const fs::path loading_script = named / ((named.has_filename() ? named.filename() : named.parent_path().filename()).string() + ".py");
  if (fs::is_regular_file(loading_script, ec))
    throw UserError(dir + ": holds a loading script, " + loading_script.filename().string() + ", and HF's datasets "
                    "refuses such a directory (dataset scripts are no longer supported); name the data files with "
                    "data_files");
  const std::vector<std::string> all = visible_files(dir);
  if (std::none_of(all.begin(), all.end(), has_known_extension)) return std::nullopt;
  DatasetDirectory out;
  out.splits = split_files(dir, all);
  std::string loaders;
  bool one_loader = true;
  for (const DatasetDirectorySplit& s : out.splits) {
    const std::string loader = loader_of(s.files);
    if (&s == &out.splits.front()) out.loader = loader;
    one_loader &= loader == out.loader;
    loaders += (loaders.empty() ? "" : ", ") + s.name + ": " + (loader.empty() ? "none" : loader);
  }
  if (!one_loader)
    throw UserError(dir + ": HF's datasets reads every split with one loader, and this directory's splits (named by "
                          "its paths) need several (" + loaders + "); name the files with data_files");
  if (out.loader.empty())
    throw UserError(dir + ": holds no data file HF's datasets reads in its " + out.splits.front().name +
                    " split (the split its file names give); name the files with data_files");
  const char* const readable[] = {"json", "parquet", "arrow", "csv", "text"};
  if (std::find(std::begin(readable), std::end(readable), out.loader) == std::end(readable))
    throw UserError(dir + ": HF's datasets reads this directory with its " + out.loader + " loader (by its files' "
                    "extensions), which llm_train does not have; convert the files to JSONL (or Parquet) and "
                    "name them with data_files");
  const fs::path base = fs::weakly_canonical(fs::absolute(dir, ec), ec);
  for (DatasetDirectorySplit& s : out.splits) {
    std::vector<std::string> kept;
    for (std::string& f : s.files)
      if (loader_reads(out.loader, (base / f).generic_string())) kept.push_back(std::move(f));
    s.files = std::move(kept);
  }
  return out;
}

std::optional<std::vector<std::string>> directory_split_files(const std::string& dir, const std::string& split,
                                                              bool asked) {
  std::vector<std::string> saved_splits;
  if (std::optional<std::vector<std::string>> saved = saved_dataset_files(dir, split, saved_splits)) return saved;
  const std::optional<DatasetDirectory> directory = saved_splits.empty() ? read_dataset_directory(dir) : std::nullopt;
  if (!directory && saved_splits.empty()) return std::nullopt;
  std::string names;
  for (const std::string& s : saved_splits) names += (names.empty() ? "" : ", ") + s;
  if (directory)
    for (const DatasetDirectorySplit& s : directory->splits) {
      if (s.name == split) {
        std::vector<std::string> files;
        for (const std::string& f : s.files) files.push_back((fs::path(dir) / f).string());
        return files;
      }
      names += (names.empty() ? "" : ", ") + s.name;
    }
  throw UserError(dir + ": " + (asked ? "expected split '" + split + "'" : "no " + split + " split") +
                  ", got splits " + names + (directory ? " (as HF's datasets names them by the directory's paths)" : "") +
                  "; " + (asked ? "name one of them" : "name one with split:") +
                  (directory ? ", or name the files with data_files" : ""));
}

}  // namespace llm
