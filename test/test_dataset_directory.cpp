// A dataset directory without data_files, read as HF's `datasets` 4.8 reads it for Axolotl
// (load_dataset(dir)): splits named by its paths, one loader by its files' extensions, and the
// split Axolotl takes (the entry's `split`, else train, or test for test_datasets). Before
// 2026-12-06 every file of a directory trained, a test.jsonl beside train.jsonl included.
// The expected layouts are those datasets' own patterns give (datasets/data_files.py).
#include "io/dataset_directory.h"

#include "io/documents.h"
#include "io/tokenizer.h"
#include "test/config_fixture.h"
#include "test/test_files.h"

using namespace llm;
using namespace llm::config_test;
using llm::testing::TempDir;

namespace {

using Files = std::vector<std::string>;

const std::string kRow = R"({"instruction": "Say hi", "input": "", "output": "hi"})" "\n";

// A directory holding `files` (relative paths, parents made), each one alpaca row.
struct Layout {
  TempDir dir;
  explicit Layout(const Files& files) {
    for (const std::string& f : files) add(f);
  }
  void add(const std::string& rel, const std::string& bytes = kRow) const {
    fs::create_directories((dir.path / rel).parent_path());
    dir.write(rel, bytes);
  }
  std::string path() const { return dir.path.string(); }
  // split name -> files, in HF's order
  std::vector<std::pair<std::string, Files>> splits() const {
    std::vector<std::pair<std::string, Files>> out;
    const DatasetDirectory directory = read_dataset_directory(path()).value();
    for (const DatasetDirectorySplit& s : directory.splits) out.emplace_back(s.name, s.files);
    return out;
  }
};

using Splits = std::vector<std::pair<std::string, Files>>;

std::string io_error(const std::function<void()>& f) {
  try {
    f();
  } catch (const UserError& e) {
    return e.what();
  }
  return "(no error)";
}

}  // namespace

TEST_CASE("split names from file names, directory names and sharded names, as datasets' patterns give them") {
  // A keyword delimited by "-._ " or a digit names the split; README.md, hidden and __ paths are no data.
  Layout named({"train.jsonl", "my_train-1.jsonl", "trainer.jsonl", "dev.jsonl", "eval_set.jsonl", "README.md",
                ".hidden.jsonl", "__pycache__/train.jsonl"});
  CHECK(named.splits() == Splits{{"train", {"train.jsonl", "my_train-1.jsonl"}},
                                 {"validation", {"dev.jsonl"}},
                                 {"test", {"eval_set.jsonl"}}});
  CHECK(read_dataset_directory(named.path())->loader == "json");
  // A directory's name before a file's: data/train/ and data/test/ (any depth below them).
  Layout dirs({"data/train/a.jsonl", "data/train/more/b.jsonl", "data/test/c.jsonl", "train_notes.jsonl"});
  CHECK(dirs.splits() == Splits{{"train", {"data/train/a.jsonl", "data/train/more/b.jsonl"}},
                                {"test", {"data/test/c.jsonl"}}});
  // A file matching two of a split's patterns is listed twice, as datasets lists it.
  Layout twice({"a_train_b/train/x.jsonl"});
  CHECK(twice.splits() == Splits{{"train", {"a_train_b/train/x.jsonl", "a_train_b/train/x.jsonl"}}});
  // Sharded names directly in data/ give their own splits: train, validation, test first, then sorted.
  Layout sharded({"data/train-00000-of-00002.jsonl", "data/train-00001-of-00002.jsonl",
                  "data/random-00000-of-00001.jsonl", "data/alpha-00000-of-00001.jsonl", "data/test-00000-of-00001.jsonl"});
  CHECK(sharded.splits() == Splits{{"train", {"data/train-00000-of-00002.jsonl", "data/train-00001-of-00002.jsonl"}},
                                   {"test", {"data/test-00000-of-00001.jsonl"}},
                                   {"alpha", {"data/alpha-00000-of-00001.jsonl"}},
                                   {"random", {"data/random-00000-of-00001.jsonl"}}});
  // No keyword anywhere: every file is train.
  Layout flat({"b.jsonl", "a.jsonl", "sub/c.jsonl"});
  CHECK(flat.splits() == Splits{{"train", {"a.jsonl", "b.jsonl", "sub/c.jsonl"}}});
  // Symlinked files are read; symlinked directories are not entered, as fsspec's walk skips them
  // (a train/ link would otherwise name a split), save a data/ link for sharded names.
  Layout outside({"d.jsonl", "train-00000-of-00001.jsonl"});
  fs::create_symlink(flat.dir.path / "a.jsonl", flat.dir.path / "linked.jsonl");
  fs::create_directory_symlink(outside.dir.path, flat.dir.path / "train");
  fs::create_directory_symlink(flat.dir.path, flat.dir.path / "loop");
  CHECK(flat.splits() == Splits{{"train", {"a.jsonl", "b.jsonl", "linked.jsonl", "sub/c.jsonl"}}});
  fs::create_directory_symlink(outside.dir.path, flat.dir.path / "data");
  CHECK(flat.splits() == Splits{{"train", {"data/train-00000-of-00001.jsonl"}}});
}

TEST_CASE("one loader by the most common extension; its files only; splits that need two are refused") {
  // Two CSV files outvote one JSON Lines file; compressed names count by their inner suffix too.
  Layout mixed({"a.jsonl", "b.csv", "c.csv", "d.txt.gz"});
  const DatasetDirectory csv = read_dataset_directory(mixed.path()).value();
  CHECK(csv.loader == "csv");
  CHECK(csv.splits[0].files == Files{"b.csv", "c.csv"});
  // A tie goes to Parquet, then .jsonl, .json, .csv.
  Layout tie({"a.jsonl", "b.parquet", "c.json.gz"});
  CHECK(read_dataset_directory(tie.path())->loader == "parquet");
  Layout json_tie({"a.jsonl", "b.txt"});
  CHECK(read_dataset_directory(json_tie.path())->loader == "json");
  Layout gz({"x.jsonl.gz", "y.jsonl.zst"});
  CHECK(gz.splits() == Splits{{"train", {"x.jsonl.gz", "y.jsonl.zst"}}});
  // No file with an extension datasets knows: llm_train's own reading of text documents.
  Layout fortunes({"art", "art.dat", "cookie", "notes.md"});
  CHECK(!read_dataset_directory(fortunes.path()));
  CHECK(!directory_split_files(fortunes.path(), "train", false));

  Layout two({"train.jsonl", "test.csv"});
  CHECK(io_error([&] { read_dataset_directory(two.path()); }) ==
        two.path() + ": HF's datasets reads every split with one loader, and this directory's splits (named by its "
                     "paths) need several (train: json, test: csv); name the files with data_files");
  Layout tsv({"a.tsv"});
  CHECK(io_error([&] { read_dataset_directory(tsv.path()); }) ==
        tsv.path() + ": HF's datasets reads this directory with its tsv loader (by its files' extensions), which "
                     "llm_train does not have; convert the files to JSONL (or Parquet) and name them with data_files");
  Layout notes({"train_notes.md", "data.jsonl"});  // the split a file name gives holds no data file
  CHECK(io_error([&] { read_dataset_directory(notes.path()); }) ==
        notes.path() + ": holds no data file HF's datasets reads in its train split (the split its file names give); "
                       "name the files with data_files");
  // csv reads .tsv files too (with commas: refused here when read); a loading script refuses the directory.
  Layout tsv_minor({"a.tsv", "b.csv", "c.csv"});
  CHECK(tsv_minor.splits() == Splits{{"train", {"a.tsv", "b.csv", "c.csv"}}});
  Layout script({"script/data.jsonl", "script/script.py"});
  CHECK(io_error([&] { read_dataset_directory(script.path() + "/script/"); }) ==
        script.path() + "/script/: holds a loading script, script.py, and HF's datasets refuses such a directory "
                        "(dataset scripts are no longer supported); name the data files with data_files");
  Layout bad_shard({"data/my-set-00000-of-00001.jsonl"});
  CHECK(io_error([&] { read_dataset_directory(bad_shard.path()); }) ==
        bad_shard.path() + ": data/my-set-00000-of-00001.jsonl names split 'my-set', and HF's datasets refuses a "
                           "split name that is not word characters (\\w+(\\.\\w+)*); rename it or name the files with "
                           "data_files");
}

TEST_CASE("config: a directory's split becomes data_files; test_datasets take test; split names another") {
  Layout dir({"train.jsonl", "dev.jsonl", "test.jsonl"});
  dir.add("train.jsonl", kRow + kRow + kRow);
  const std::string d = dir.path();
  const auto entry = [&](const std::string& key, const std::string& extra) {
    const TrainConfig c = parse_config(key + ":\n  - path: " + d + "\n    type: alpaca\n" + extra +
                                           (key == "test_datasets" ? "datasets:\n  - path: " + d + "\n    type: alpaca\n" +
                                                                         "val_set_size: 0\n"
                                                                   : ""),
                                       "cfg.yaml");
    return (key == "test_datasets" ? c.data.test_datasets : c.data.datasets)[0];
  };
  const DatasetSpec train = entry("datasets", "");
  CHECK(train.data_files == Files{"train.jsonl"});
  CHECK(load_documents(train, ByteTokenizer()).size() == 3);  // the test and dev rows left out
  const DatasetSpec test = entry("test_datasets", "");
  CHECK(test.data_files == Files{"test.jsonl"});
  CHECK(test.split == "train");
  // split: another split by name, its slice kept as the slice of those files' rows.
  const DatasetSpec dev = entry("datasets", "    split: validation[:50%]\n");
  CHECK(dev.data_files == Files{"dev.jsonl"});
  CHECK(dev.split == "train[:50%]");
  const DatasetSpec sliced = entry("datasets", "    split: train[1:]\n");
  CHECK(sliced.data_files == Files{"train.jsonl"});
  CHECK(load_documents(sliced, ByteTokenizer()).size() == 2);
  // ds_type is Axolotl's loader for a file or data_files; here HF picks it by the files' names.
  const TrainConfig typed = parse_config("datasets:\n  - path: " + d + "\n    type: alpaca\n    ds_type: text\n", "cfg.yaml");
  CHECK(typed.data.datasets[0].ds_type.empty());
  CHECK(typed.adjustments.back() == "datasets[0].ds_type: unused for a directory read without data_files (HF's "
                                    "datasets picks the loader by the files' names, as Axolotl calls it)");
  CHECK(load_documents(typed.data.datasets[0], ByteTokenizer()).size() == 3);
  // The saved config names the files, so a resume reads the same ones.
  const TrainConfig c = parse_config("datasets:\n  - path: " + d + "\n    type: alpaca\n    split: test\n", "cfg.yaml");
  const DatasetSpec again = parse_config(config_to_yaml(c), "saved.yaml").data.datasets[0];
  CHECK(again.data_files == Files{"test.jsonl"});
  CHECK(again.split == "train");

  CHECK(error_of("datasets:\n  - path: " + d + "\n    split: extra\n") ==
        "cfg.yaml:2: datasets[0].path: " + d + ": expected split 'extra', got splits train, validation, test (as HF's "
        "datasets names them by the directory's paths); name one of them, or name the files with data_files");
  // Axolotl's rl loader takes a DatasetDict's train split for test_datasets too.
  const TrainConfig rl = parse_config("rl: dpo\ndatasets:\n  - path: " + d + "\n    type: chatml.intel\n"
                                      "test_datasets:\n  - path: " + d + "\n    type: chatml.intel\nval_set_size: 0\n",
                                      "cfg.yaml");
  CHECK(rl.data.test_datasets[0].data_files == Files{"train.jsonl"});
  Layout only_train({"train.jsonl"});
  CHECK(error_of("test_datasets:\n  - path: " + only_train.path() + "\n    type: alpaca\ndatasets:\n  - path: " +
                 only_train.path() + "\n    type: alpaca\nval_set_size: 0\n") ==
        "cfg.yaml:2: test_datasets[0].path: " + only_train.path() + ": no test split, got splits train (as HF's "
        "datasets names them by the directory's paths); name one with split:, or name the files with data_files");
  // A file, or data_files, is one split: train.
  CHECK(error_of("datasets:\n  - path: " + d + "/train.jsonl\n    split: test\n") ==
        "cfg.yaml:3: datasets[0].split: expected train or a slice of it (a file is one split, train), got 'test'");
  CHECK(error_of("datasets:\n  - path: " + d + "\n    data_files: [dev.jsonl]\n    split: test\n") ==
        "cfg.yaml:4: datasets[0].split: expected train or a slice of it (data_files are one split, train), got 'test'");
  CHECK(error_of("datasets:\n  - path: " + d + "\n    split: \"train[\"\n") ==
        "cfg.yaml:3: datasets[0].split: expected a split or a slice of it in HF's syntax, e.g. train, test, "
        "train[:20%] or train[100:], got 'train['");
}

// load_from_disk's DatasetDict (which Axolotl tries first): the split by name, test for test_datasets.
TEST_CASE("config: a save_to_disk DatasetDict's split becomes data_files") {
  const std::string saved = (fs::path(__FILE__).parent_path() / "data" / "arrow" / "saved_dict").string();
  const TrainConfig c = parse_config("datasets:\n  - path: " + saved + "\n    type: alpaca\ntest_datasets:\n  - path: " +
                                         saved + "\n    type: alpaca\nval_set_size: 0\n",
                                     "cfg.yaml");
  CHECK(c.data.datasets[0].data_files == Files{"train/data-00000-of-00001.arrow"});
  CHECK(c.data.test_datasets[0].data_files == Files{"test/data-00000-of-00001.arrow"});
  CHECK(load_documents(c.data.test_datasets[0], ByteTokenizer()).size() > 0);
  CHECK(error_of("datasets:\n  - path: " + saved + "\n    split: validation\n") ==
        "cfg.yaml:2: datasets[0].path: " + saved + ": expected split 'validation', got splits train, test; name one "
        "of them");
}

TEST_CASE("config: a README's configs give each split's files; test_datasets take the config's test split") {
  Layout dir({"en/train-00000-of-00001.jsonl", "en/test-00000-of-00001.jsonl", "fr/a.jsonl"});
  dir.add("README.md", "---\nconfigs:\n- config_name: en\n  data_files:\n  - split: train\n    path: en/train-*\n"
                       "  - split: test\n    path: en/test-*\n- config_name: fr\n  data_files: fr/*.jsonl\n---\n");
  const std::string d = dir.path();
  const TrainConfig c = parse_config("datasets:\n  - path: " + d + "\n    type: alpaca\n    name: en\ntest_datasets:\n"
                                     "  - path: " + d + "\n    type: alpaca\n    name: en\nval_set_size: 0\n",
                                     "cfg.yaml");
  CHECK(c.data.datasets[0].data_files == Files{"en/train-00000-of-00001.jsonl"});
  CHECK(c.data.test_datasets[0].data_files == Files{"en/test-00000-of-00001.jsonl"});
  CHECK(error_of("datasets:\n  - path: " + d + "\n    type: alpaca\n    name: fr\n    split: test\n") ==
        "cfg.yaml:4: datasets[0].name: expected a split the config has, got 'test'; config 'fr' of " + d +
            " has splits train");
}

// HF's resolve_pattern through fsspec's glob: '**' a whole part matching any number of parts
// (none too), '*' within a part, each pattern's files sorted; hidden, "__" and ignored names only
// where the pattern names them; a card's patterns keep only data file extensions.
TEST_CASE("data_files patterns resolve as HF's resolve_pattern resolves them") {
  Layout dir({"top.jsonl", "d/x.jsonl", "d/e/y.jsonl", "ab/c.jsonl", "a/x/b/c.jsonl", ".hid/z.jsonl", "d/.h.jsonl",
              "__pycache__/p.jsonl", "LICENSE", "B.JSONL"});
  dir.add("README.md", "# card\n");
  const auto resolve = [&](const std::string& p, bool known) { return resolve_data_pattern(dir.path(), p, known); };
  CHECK(resolve("**/*.jsonl", false) == Files{"a/x/b/c.jsonl", "ab/c.jsonl", "d/e/y.jsonl", "d/x.jsonl", "top.jsonl"});
  CHECK(resolve("d/**/*.jsonl", false) == Files{"d/e/y.jsonl", "d/x.jsonl"});
  CHECK(resolve("a*b/**/c.jsonl", false) == Files{"ab/c.jsonl"});
  CHECK(resolve("**", false) == Files{"B.JSONL", "LICENSE", "a/x/b/c.jsonl", "ab/c.jsonl", "d/e/y.jsonl", "d/x.jsonl",
                                      "top.jsonl"});
  CHECK(resolve("**", true) == Files{"a/x/b/c.jsonl", "ab/c.jsonl", "d/e/y.jsonl", "d/x.jsonl", "top.jsonl"});
  CHECK(resolve(".hid/*.jsonl", false) == Files{".hid/z.jsonl"});  // named: read
  CHECK(resolve("README.md", false) == Files{"README.md"});
  CHECK(resolve("./d/?.jsonl", false) == Files{"d/x.jsonl"});
  // std::regex recurses: a glob past a path's 4096 bytes is refused before it is compiled.
  CHECK_THROWS_WITH_AS(resolve("a" + std::string(100000, '?'), false),
                       doctest::Contains("expected a glob pattern of at most 4096 characters (a path's limit), got 100001"),
                       UserError);
  CHECK(resolve("d", false).empty());  // a directory is no file
  // Bracket classes as fnmatch translates them (held to Python's fnmatch on 30,851 random classes):
  // a range out of order is dropped with both its ends, so it can empty or negate the class.
  CHECK(resolve("[a-d]/x.jsonl", false) == Files{"d/x.jsonl"});
  CHECK(resolve("[!a]/x.jsonl", false) == Files{"d/x.jsonl"});
  CHECK(resolve("[z-a]/x.jsonl", false).empty());         // "(?!)": nothing
  CHECK(resolve("[dz-a]/x.jsonl", false) == Files{"d/x.jsonl"});  // [d]
  CHECK(resolve("[|--!]/x.jsonl", false) == Files{"d/x.jsonl"});  // '|' > '-': "!" is left, any character
  CHECK(resolve("d/[x-]*.jsonl", false) == Files{"d/x.jsonl"});   // a trailing '-' is literal
  CHECK(io_error([&] { resolve("d/**.jsonl", false); }) ==
        dir.path() + ": data_files pattern 'd/**.jsonl': '**' can only be a whole path part, as fsspec's glob (HF's "
                     "datasets) requires");
}

TEST_CASE("config: a card's patterns in order with repeats, in its data_dir; a missing file and bad entries refused") {
  Layout dir({"data/a.jsonl", "data/b.jsonl", "sub/x.jsonl", "y.jsonl", "README.txt"});
  const auto files = [&](const std::string& config) {
    dir.add("README.md", "\n---\nconfigs:\n- config_name: c\n" + config + "---\n");  // a blank line first, as HF allows
    return parse_config("datasets:\n  - path: " + dir.path() + "\n", "cfg.yaml").data.datasets[0].data_files;
  };
  CHECK(files("  data_files: [data/b.jsonl, data/a.jsonl]\n") == Files{"data/b.jsonl", "data/a.jsonl"});
  CHECK(files("  data_files: [\"data/*.jsonl\", data/a.jsonl]\n") == Files{"data/a.jsonl", "data/b.jsonl", "data/a.jsonl"});
  CHECK(files("  data_dir: sub\n  data_files: \"*.jsonl\"\n") == Files{"sub/x.jsonl"});
  CHECK(files("  drop_labels: true\n") == Files{"data/a.jsonl", "data/b.jsonl", "sub/x.jsonl", "y.jsonl"});
  const auto error = [&](const std::string& config) {
    dir.add("README.md", "---\nconfigs:\n- config_name: c\n" + config + "---\n");
    return error_of("datasets:\n  - path: " + dir.path() + "\n");
  };
  const std::string at = "cfg.yaml:2: datasets[0]: expected ";
  CHECK(error("  data_files: [y.jsonl, missing.jsonl]\n") ==
        at + "data files the config names, got config 'c' of " + dir.path() + ", whose 'missing.jsonl' is no data file there");
  CHECK(error("  data_files: {train: y.jsonl}\n").find("data_files: expected a path, a list of paths or a list of {split, "
                                                       "path}, got a map") != std::string::npos);
  CHECK(error("  data_files:\n").find("got null") != std::string::npos);
  CHECK(error("  data_files:\n  - path: y.jsonl\n").find("expected entries of exactly {split, path}") != std::string::npos);
  CHECK(error("  data_files:\n  - {split: train, path: y.jsonl}\n  - {split: train, path: y.jsonl}\n")
            .find("split 'train' is given twice") != std::string::npos);
  CHECK(error("  data_files:\n  - {split: train-sft, path: y.jsonl}\n").find("expected a split name") != std::string::npos);
  CHECK(error("  data_files: y.jsonl\n  default: true\n- config_name: d\n  data_files: y.jsonl\n  default: true\n")
            .find("expected one default config at most (default: true, or the one named default), got several") !=
        std::string::npos);
  CHECK(error("  data_files: y.jsonl\n  default: true\n- config_name: default\n  data_files: y.jsonl\n")
            .find("got several") != std::string::npos);
}
