// Hub ids in base_model and tokenizer_config, resolved offline in a Hugging Face hub cache laid
// out as huggingface_hub writes it (refs/<branch> -> snapshots/<commit>/, files symlinked into
// blobs/); a hub id the cache lacks is one line saying how to fetch it.
#include <cstdlib>
#include <fstream>
#include <functional>
#include <iterator>
#include <map>

#include "io/documents.h"

#include "io/hf_hub_cache.h"
#include "test/config_fixture.h"
#include "test/compress_fixture.h"
#include "test/test_files.h"

using namespace llm;
using namespace llm::config_test;

namespace {

const fs::path kData = fs::path(__FILE__).parent_path() / "data";
const std::string kMain = "0123456789abcdef0123456789abcdef01234567";
const std::string kOther = "89abcdef0123456789abcdef0123456789abcdef";

// A cache under the scratch directory holding `repo` at two commits, main -> kMain and a tag
// v1 -> kOther, each snapshot's files linked to blobs as the hub's downloads are.
struct HubCache {
  fs::path root = scratch().dir / "hub";
  HubCache() { setenv("HF_HUB_CACHE", root.c_str(), 1); }
  ~HubCache() {
    unsetenv("HF_HUB_CACHE");
    fs::remove_all(root);
  }
  // `files`: path in the repo -> bytes.
  void add(const std::string& folder, const std::string& ref, const std::string& commit,
           const std::map<std::string, std::string>& files) {
    const fs::path repo = root / folder;
    fs::create_directories(repo / "refs");
    fs::create_directories(repo / "blobs");
    std::ofstream(repo / "refs" / ref) << commit;  // no newline, as huggingface_hub writes it
    for (const auto& [name, bytes] : files) {
      const fs::path blob = repo / "blobs" / (commit + "-" + std::to_string(std::hash<std::string>()(name)));
      std::ofstream(blob, std::ios::binary) << bytes;
      const fs::path link = repo / "snapshots" / commit / name;
      fs::create_directories(link.parent_path());
      fs::create_symlink(blob, link);
    }
  }
  void add_dir(const std::string& folder, const std::string& ref, const std::string& commit, const fs::path& dir) {
    std::map<std::string, std::string> files;
    for (const fs::directory_entry& f : fs::directory_iterator(dir)) {
      std::ifstream in(f.path(), std::ios::binary);
      files[f.path().filename().string()] = std::string(std::istreambuf_iterator<char>(in), {});
    }
    add(folder, ref, commit, files);
  }
};

}  // namespace

TEST_CASE("hub ids: huggingface_hub's shape, never a path") {
  for (const char* id : {"meta-llama/Llama-3.2-1B", "NousResearch/Meta-Llama-3-8B", "org/name_1.5"})
    CHECK_MESSAGE(looks_like_hub_id(id), id);
  for (const char* not_id : {"", "gpt2", "data.jsonl", "/abs/path", "./model", "../model", "a/b/c", "org/..", "org/-x", "org--x/y",
                             "org/x.", "has space/x", "org/"})
    CHECK_MESSAGE(!looks_like_hub_id(not_id), not_id);
}

TEST_CASE("the cache directory: HF_HUB_CACHE, else HF_HOME/hub, else XDG_CACHE_HOME, else ~/.cache") {
  unsetenv("HF_HUB_CACHE");
  unsetenv("HUGGINGFACE_HUB_CACHE");
  setenv("HF_HOME", "/h", 1);
  CHECK(hf_hub_cache_dir() == "/h/hub");
  unsetenv("HF_HOME");
  setenv("XDG_CACHE_HOME", "/x", 1);
  CHECK(hf_hub_cache_dir() == "/x/huggingface/hub");
  unsetenv("XDG_CACHE_HOME");
  setenv("HOME", "/home/u", 1);
  CHECK(hf_hub_cache_dir() == "/home/u/.cache/huggingface/hub");
  setenv("HF_HUB_CACHE", "/c", 1);
  CHECK(hf_hub_cache_dir() == "/c");
  unsetenv("HF_HUB_CACHE");
}

TEST_CASE("base_model and tokenizer_config as hub ids: the cached snapshot at revision_of_model") {
  HubCache hub;
  hub.add_dir("models--org--tiny-llama", "main", kMain, kData / "hf_reference" / "tied_gqa4");
  hub.add_dir("models--org--tiny-llama", "v1", kOther, kData / "hf_reference" / "untied_gqa2");
  hub.add_dir("models--org--tokenizer", "main", kMain, kData / "hf_tokenizer");

  const std::string fits = "sequence_len: 64\n";  // within the fixtures' max_position_embeddings
  const TrainConfig main = parse("base_model: org/tiny-llama\n" + fits);
  CHECK(main.base_model == (hub.root / "models--org--tiny-llama" / "snapshots" / kMain).string());
  CHECK(main.model.tie_word_embeddings);
  // The tag and the commit itself name the other snapshot, wherever the key stands.
  for (const std::string& revision : {std::string("revision_of_model: v1\n"), "model_revision: " + kOther + "\n"}) {
    const TrainConfig other = parse("base_model: org/tiny-llama\n" + revision + fits);
    CHECK(other.base_model == (hub.root / "models--org--tiny-llama" / "snapshots" / kOther).string());
    CHECK(!other.model.tie_word_embeddings);
  }
  // The resolved directory is what a checkpoint's config records: a resume reads the same files.
  CHECK(parse_config(config_to_yaml(main), "saved.yaml").base_model == main.base_model);

  // An adapter's hub id (lora_model_dir) resolves at main, whatever revision the base takes.
  hub.add("models--org--adapter", "main", kMain, {{"adapter_config.json", "{}"}, {"adapter_model.safetensors", ""}});
  CHECK(parse("base_model: org/tiny-llama\nrevision_of_model: v1\nadapter: lora\nlora_target_linear: true\nlora_model_dir: org/adapter\n" + fits)
            .lora_model_dir == (hub.root / "models--org--adapter" / "snapshots" / kMain).string());

  const TrainConfig tok = parse("tokenizer_config: org/tokenizer\n");
  CHECK(tok.tokenizer_config == (hub.root / "models--org--tokenizer" / "snapshots" / kMain / "tokenizer.json").string());

  // A local directory of the same name wins, as transformers prefers a path that exists.
  fs::create_directories(scratch().dir / "org" / "tiny-llama");
  fs::copy(kData / "hf_reference" / "untied_gqa2", scratch().dir / "org" / "tiny-llama",
           fs::copy_options::overwrite_existing | fs::copy_options::recursive);
  CHECK(!parse_config(base() + "base_model: org/tiny-llama\n" + fits, (scratch().dir / "cfg.yaml").string())
             .model.tie_word_embeddings);
  fs::remove_all(scratch().dir / "org");
}

TEST_CASE("a hub id the cache lacks: one line naming the key, the revision and how to fetch it") {
  HubCache hub;
  hub.add_dir("models--org--tiny-llama", "main", kMain, kData / "hf_reference" / "tied_gqa4");
  const std::string hint = "nothing is downloaded here: fetch it first (huggingface-cli download ";
  CHECK(error_with("base_model: org/absent\n") ==
        "cfg.yaml:3: base_model: expected a preset (tiny, llama3-1b, llama3-3b, llama3-8b, llama3-70b), an HF model "
        "directory holding config.json or a hub id in the local HF cache, got hub id 'org/absent' at revision main, "
        "which the local Hugging Face cache does not hold; " + hint + "org/absent) into the hub cache " +
        hub.root.string() + " (HF_HUB_CACHE / HF_HOME), or name a local directory");
  CHECK(starts_with(error_with("base_model: org/tiny-llama\nrevision_of_model: v9\n"),
                    "cfg.yaml:3: base_model: expected a preset"));
  CHECK(error_with("base_model: org/tiny-llama\nrevision_of_model: v9\n").find("at revision v9") != std::string::npos);
  CHECK(error_with("tokenizer_config: org/absent\n").find("cfg.yaml:3: tokenizer_config: ") == 0);
  // A ref name that would climb out of refs/ is no revision.
  CHECK(error_with("base_model: org/tiny-llama\nrevision_of_model: ../../x\n").find("at revision ../../x") !=
        std::string::npos);
}

TEST_CASE("hub datasets: the snapshot's train split as HF reads a directory, or data_files; other formats refused") {
  HubCache hub;
  const std::string row = R"({"instruction": "Say hi", "input": "", "output": "hi"})" "\n";
  hub.add("datasets--org--alpaca", "main", kMain,
          {{"README.md", "# card\n"}, {".gitattributes", "*.parquet lfs\n"},
           {"data/train-00000-of-00002.jsonl", row}, {"data/train-00001-of-00002.jsonl", row + row},
           {"data/test-00000-of-00001.jsonl", row}});
  hub.add("datasets--org--flat", "main", kMain, {{"alpaca_data.json", "[" + row + "]"}});
  const std::string parquet = llm::testing::read_file((fs::path(__FILE__).parent_path() / "data" / "parquet" / "alpaca.parquet").string());
  hub.add("datasets--org--parquet", "main", kMain,
          {{"data/train-00000-of-00001.parquet", parquet}, {"data/test-00000-of-00001.parquet", parquet}});
  hub.add("datasets--org--tsv", "main", kMain, {{"data/train-00000-of-00001.tsv", "a\tb\n1\t2\n"}});
  hub.add("datasets--org--text", "main", kMain, {{"train.txt", "line one\nline two\n"}, {"test.txt", "held\n"}});
  hub.add("datasets--org--gzipped", "main", kMain,
          {{"train.jsonl.gz", llm::testing::gzip(row + row)}, {"test.jsonl.zst", llm::testing::zstd(row)}});

  const TrainConfig c = parse_config("datasets:\n  - path: org/alpaca\n    type: alpaca\n", "cfg.yaml");
  const DatasetSpec& spec = c.data.datasets[0];
  CHECK(spec.path == (hub.root / "datasets--org--alpaca" / "snapshots" / kMain).string());
  CHECK(spec.data_files == std::vector<std::string>{"data/train-00000-of-00002.jsonl", "data/train-00001-of-00002.jsonl"});
  CHECK(load_documents(spec, ByteTokenizer()).size() == 3);  // read through the snapshot's symlinks; the test split left out
  CHECK(parse_config(config_to_yaml(c), "saved.yaml").data.datasets[0].data_files == spec.data_files);
  // test_datasets take the test split, as Axolotl takes it of the DatasetDict load_dataset returns.
  CHECK(parse_config("datasets:\n  - path: org/alpaca\n    type: alpaca\ntest_datasets:\n  - path: org/alpaca\n"
                     "    type: alpaca\nval_set_size: 0\n", "cfg.yaml").data.test_datasets[0].data_files ==
        std::vector<std::string>{"data/test-00000-of-00001.jsonl"});
  // No split in any name: every JSON file. data_files given: those, in that order.
  CHECK(parse_config("datasets:\n  - path: org/flat\n    type: alpaca\n", "cfg.yaml").data.datasets[0].data_files ==
        std::vector<std::string>{"alpaca_data.json"});
  const TrainConfig test_split = parse_config(
      "datasets:\n  - path: org/alpaca\n    type: alpaca\n    data_files: [data/test-00000-of-00001.jsonl]\n", "cfg.yaml");
  CHECK(load_documents(test_split.data.datasets[0], ByteTokenizer()).size() == 1);
  // HF's patterns: each expanded in its place, its matches sorted; one matching nothing refused.
  CHECK(parse_config("datasets:\n  - path: org/alpaca\n    data_files: [data/test-*, data/train-*.jsonl]\n",
                     "cfg.yaml").data.datasets[0].data_files ==
        std::vector<std::string>{"data/test-00000-of-00001.jsonl", "data/train-00000-of-00002.jsonl",
                                 "data/train-00001-of-00002.jsonl"});
  CHECK(parse_config("datasets:\n  - path: org/alpaca\n    data_files: \"**/*-00001-of-00002.jsonl\"\n",
                     "cfg.yaml").data.datasets[0].data_files ==
        std::vector<std::string>{"data/train-00001-of-00002.jsonl"});
  CHECK(error_of("datasets:\n  - path: org/alpaca\n    data_files: [data/*.parquet]\n").find(
            "cfg.yaml:3: datasets[0].data_files: expected data_files patterns that match files of ") == 0);

  // The hub's usual format: the train split's Parquet files (a 15-row fixture, test/data/parquet).
  const TrainConfig from_parquet = parse_config("datasets:\n  - path: org/parquet\n    type: alpaca\n", "cfg.yaml");
  CHECK(from_parquet.data.datasets[0].data_files == std::vector<std::string>{"data/train-00000-of-00001.parquet"});
  CHECK(load_documents(from_parquet.data.datasets[0], ByteTokenizer()).size() == 15);
  // Text files, HF's text loader's rows (a line each), for a completion dataset.
  const TrainConfig text = parse_config("datasets:\n  - path: org/text\n    type: completion\n", "cfg.yaml");
  CHECK(text.data.datasets[0].data_files == std::vector<std::string>{"train.txt"});
  CHECK(load_documents(text.data.datasets[0], ByteTokenizer()).size() == 2);
  // Compressed JSON Lines, which HF's json loader opens decompressed.
  const TrainConfig gzipped = parse_config("datasets:\n  - path: org/gzipped\n    type: alpaca\n", "cfg.yaml");
  CHECK(gzipped.data.datasets[0].data_files == std::vector<std::string>{"train.jsonl.gz"});
  CHECK(load_documents(gzipped.data.datasets[0], ByteTokenizer()).size() == 2);
  CHECK(error_of("datasets:\n  - path: org/tsv\n    type: alpaca\n") ==
        "cfg.yaml:2: datasets[0].path: " + (hub.root / "datasets--org--tsv" / "snapshots" / kMain).string() +
            ": HF's datasets reads this directory with its tsv loader (by its files' extensions), which llm_train "
            "does not have; convert the files to JSONL (or Parquet) and name them with data_files");
  CHECK(error_of("datasets:\n  - path: org/absent\n    revision: v2\n").find(
            "cfg.yaml:2: datasets[0].path: expected an existing file or directory, or a hub dataset in the local HF "
            "cache, got 'org/absent' at revision v2, neither; nothing is downloaded here: fetch it first "
            "(huggingface-cli download --repo-type dataset org/absent)") == 0);
  CHECK(error_of("datasets:\n  - path: org/alpaca\n    data_files: [../../secret.jsonl]\n") ==
        "cfg.yaml:3: datasets[0].data_files: expected paths inside the dataset's directory, got '../../secret.jsonl'");
  CHECK(error_of("datasets:\n  - path: " + scratch().data + "\n    data_files: [x.jsonl]\n") ==
        "cfg.yaml:2: datasets[0].path: expected a directory, as data_files names files inside it, got '" +
            scratch().data + "'");
}

// A local directory's data_files: inside it first (patterns too), else as Axolotl hands them to
// HF's loader for a local directory: beside the config or the working directory, or absolute.
TEST_CASE("local datasets: data_files inside the directory, or a file beside it as Axolotl resolves them") {
  const fs::path dir = scratch().dir / "local_dataset";
  fs::create_directories(dir / "data");
  const std::string row = R"({"instruction": "Say hi", "input": "", "output": "hi"})" "\n";
  std::ofstream(dir / "data" / "a.jsonl") << row;
  std::ofstream(dir / "data" / "b.jsonl") << row << row;
  const std::string outside = scratch().write("outside.jsonl", row + row + row);
  auto files = [&](const std::string& data_files) {
    const TrainConfig c = parse_config("datasets:\n  - path: " + dir.string() + "\n    type: alpaca\n    data_files: " +
                                           data_files + "\n", (scratch().dir / "cfg.yaml").string());
    CHECK(load_documents(c.data.datasets[0], ByteTokenizer()).size() > 0);
    return c.data.datasets[0].data_files;
  };
  CHECK(files("[data/b.jsonl, data/a.jsonl]") == std::vector<std::string>{"data/b.jsonl", "data/a.jsonl"});
  CHECK(files("data/*.jsonl") == std::vector<std::string>{"data/a.jsonl", "data/b.jsonl"});
  CHECK(files("[" + outside + "]") == std::vector<std::string>{outside});  // absolute
  CHECK(files("[outside.jsonl]") == std::vector<std::string>{outside});    // beside the config
  fs::remove_all(dir);
}

// HF's `name`: the config whose train split the README's front matter (`configs:`, as push_to_hub
// writes it) points at: by {split, path} entries, a plain pattern, or data_dir. Without a name, a
// dataset of several configs is refused, as `datasets` refuses it; without configs, only
// "default" (or no name) reads.
TEST_CASE("hub datasets: `name` picks a config from the README's configs") {
  HubCache hub;
  const std::string row = R"({"instruction": "Say hi", "input": "", "output": "hi"})" "\n";
  const std::string readme =
      "---\nlicense: mit\nconfigs:\n"
      "- config_name: en\n  data_files:\n  - split: train\n    path: en/train-*\n  - split: test\n    path: en/test-*\n"
      "- config_name: fr\n  data_files: fr/*.jsonl\n"
      "- config_name: de\n  data_dir: de\n"
      "---\n# card\n";
  hub.add("datasets--org--multi", "main", kMain,
          {{"README.md", readme}, {"en/train-00000-of-00001.jsonl", row}, {"en/test-00000-of-00001.jsonl", row},
           {"fr/part.jsonl", row + row}, {"de/train.jsonl", row + row + row}, {"de/test.jsonl", row}});
  hub.add("datasets--org--plain", "main", kMain, {{"README.md", "# card\n"}, {"data.jsonl", row}});
  hub.add("datasets--org--defaulted", "main", kMain,
          {{"README.md", "---\nconfigs:\n- config_name: small\n  data_files: s.jsonl\n  default: true\n"
                         "- config_name: big\n  data_files: b.jsonl\n---\n"},
           {"s.jsonl", row}, {"b.jsonl", row + row}});
  auto files = [](const std::string& name) {
    return parse_config("datasets:\n  - path: org/multi\n    type: alpaca\n    name: " + name + "\n", "cfg.yaml")
        .data.datasets[0]
        .data_files;
  };
  CHECK(files("en") == std::vector<std::string>{"en/train-00000-of-00001.jsonl"});
  CHECK(files("fr") == std::vector<std::string>{"fr/part.jsonl"});
  CHECK(files("de") == std::vector<std::string>{"de/train.jsonl"});
  const TrainConfig de = parse_config("datasets:\n  - path: org/multi\n    type: alpaca\n    name: de\n", "cfg.yaml");
  CHECK(load_documents(de.data.datasets[0], ByteTokenizer()).size() == 3);
  const std::string snapshot = (hub.root / "datasets--org--multi" / "snapshots" / kMain).string();
  CHECK(error_of("datasets:\n  - path: org/multi\n    type: alpaca\n    name: es\n") ==
        "cfg.yaml:4: datasets[0].name: expected a config the dataset has, got 'es'; " + snapshot + " has configs en, fr, de");
  CHECK(error_of("datasets:\n  - path: org/multi\n    type: alpaca\n") ==
        "cfg.yaml:2: datasets[0]: expected a config name (`name:`) for a dataset of several configs, got none; " +
            snapshot + " has configs en, fr, de");
  // Without configs: no name or "default" reads the snapshot's train files; another name is refused.
  CHECK(parse_config("datasets:\n  - path: org/plain\n    type: alpaca\n    name: default\n", "cfg.yaml")
            .data.datasets[0].data_files == std::vector<std::string>{"data.jsonl"});
  CHECK(error_of("datasets:\n  - path: org/plain\n    type: alpaca\n    name: en\n").find(
            "cfg.yaml:4: datasets[0].name: expected a config the dataset has, got 'en'; ") == 0);
  // A local directory with the same README picks the same way; a file has no configs.
  const std::string local = std::string(snapshot);
  CHECK(parse_config("datasets:\n  - path: " + local + "\n    type: alpaca\n    name: fr\n", "cfg.yaml")
            .data.datasets[0].data_files == std::vector<std::string>{"fr/part.jsonl"});
  // Without a name a directory with configs is refused as the snapshot is (HF reads a local
  // directory's card too: a git clone of the dataset repo); with a default config it reads that.
  CHECK(error_of("datasets:\n  - path: " + local + "\n    type: alpaca\n") ==
        "cfg.yaml:2: datasets[0]: expected a config name (`name:`) for a dataset of several configs, got none; " +
            local + " has configs en, fr, de");
  CHECK(error_of("datasets:\n  - path: " + local + "/fr/part.jsonl\n    type: alpaca\n    name: fr\n") ==
        "cfg.yaml:4: datasets[0].name: expected a config of a dataset directory (a file has none), got 'fr' for " +
            local + "/fr/part.jsonl");
  const std::string defaulted = (hub.root / "datasets--org--defaulted" / "snapshots" / kMain).string();
  for (const std::string& path : {std::string("org/defaulted"), defaulted})
    CHECK(parse_config("datasets:\n  - path: " + path + "\n    type: alpaca\n", "cfg.yaml").data.datasets[0].data_files ==
          std::vector<std::string>{"s.jsonl"});
}

// A card's data_dir resolves inside the dataset, as HF resolves it in the repo: one that leaves
// the directory is refused in one line (the card must not send training to files elsewhere), as is
// a config_name that is not a name.
TEST_CASE("hub datasets: a config's data_dir outside the dataset, or a config_name not a name, is refused") {
  HubCache hub;
  const std::string row = R"({"instruction": "Say hi", "input": "", "output": "hi"})" "\n";
  hub.add("datasets--org--escape", "main", kMain,
          {{"README.md", "---\nconfigs:\n- config_name: up\n  data_dir: ../../elsewhere\n---\n"}, {"a.jsonl", row}});
  hub.add("datasets--org--odd", "main", kMain,
          {{"README.md", "---\nconfigs:\n- config_name: {a: 1}\n  data_files: a.jsonl\n---\n"}, {"a.jsonl", row}});
  const std::string escape = error_of("datasets:\n  - path: org/escape\n    type: alpaca\n    name: up\n");
  CHECK(escape.find("cfg.yaml:4: datasets[0].name: ") == 0);
  CHECK(escape.find("README.md: configs[0].data_dir: expected a directory inside the dataset, got "
                    "'../../elsewhere'") != std::string::npos);
  const std::string odd = error_of("datasets:\n  - path: org/odd\n    type: alpaca\n");
  CHECK(odd.find("cfg.yaml:2: datasets[0]: ") == 0);
  CHECK(odd.find("README.md: configs[0].config_name: expected a name") != std::string::npos);
  CHECK(odd.find('\n') == std::string::npos);
}
