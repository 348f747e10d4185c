// defines: Trainer::inference (Axolotl's `inference` command: prompts read from the input, each
// answered by the model the config loads, as its do_inference samples and prints them)
#include <fmt/core.h>

#include <iterator>
#include <optional>

#include <nlohmann/json.hpp>

#include "engine/autograd.h"
#include "engine/user_error.h"
#include "io/chat_jinja.h"
#include "io/python_text.h"
#include "model/generate.h"
#include "train/config_fields.h"
#include "train/prompters.h"
#include "train/trainer_impl.h"

namespace llm {
namespace {

const std::string kRule(80, '=');

// Text as HF's decode gives it by default: special tokens by name, the rest as their bytes.
std::string text_with_specials(const Tokenizer& tokenizer, const std::vector<int32_t>& ids) {
  std::string out;
  std::vector<int32_t> run;
  for (int32_t id : ids) {
    const std::optional<std::string> name = tokenizer.special_name(id);
    if (!name) {
      run.push_back(id);
      continue;
    }
    out += tokenizer.decode(run) + *name;
    run.clear();
  }
  return out + tokenizer.decode(run);
}

// The end of bytes' text that can be shown now: up to a character that the next token may still
// complete (an ill-formed run that cannot be completed shows, replaced).
size_t shown_end(const std::string& bytes, size_t from) {
  size_t i = from;
  while (i < bytes.size()) {
    size_t prefix = 0;
    const size_t length = utf8_char_length(bytes, i, prefix);
    const unsigned char lead = static_cast<unsigned char>(bytes[i]);
    if (length == 0 && i + prefix == bytes.size() && lead >= 0xC2 && lead < 0xF5) break;  // unfinished
    i += length > 0 ? length : prefix;
  }
  return i;
}

// Python's str.strip("\n"), as do_inference strips an instruction for its prompter.
std::string strip_newlines(const std::string& text) {
  const size_t first = text.find_first_not_of('\n');
  return first == std::string::npos ? "" : text.substr(first, text.find_last_not_of('\n') + 1 - first);
}

// The prompt's ids as Axolotl's do_inference makes them: under the chat template as one user
// message with the generation prompt (the template writes BOS), else BOS and the text, a special
// token's name in it read as that token (as HF's tokenizer call reads it).
std::vector<int32_t> prompt_ids(const std::string& prompt, const std::optional<jinja::Template>& chat_template,
                                const Tokenizer& tokenizer) {
  if (!chat_template) {
    std::vector<int32_t> ids{tokenizer.bos()};
    const std::vector<int32_t> text = tokenizer.encode_with_specials(prompt);
    ids.insert(ids.end(), text.begin(), text.end());
    return ids;
  }
  const nlohmann::ordered_json messages = nlohmann::ordered_json::array({{{"role", "user"}, {"content", prompt}}});
  // transformers' apply_chat_template reads special tokens' names in the message as tokens too
  // (its sanitize_control_tokens is off by default): the content carries the template's source.
  const jinja::ValueDict variables =
      chat_template_variables(jinja::from_json(messages), jinja::Value::none(), /*add_generation_prompt=*/true, tokenizer);
  return tokenize_template_text(chat_template->render(variables), tokenizer);
}

}  // namespace

// Its checks before loading fail alike on every rank, which then stop together (one line, no abort).
void Trainer::inference(TrainConfig config, const std::string& prompter_name, std::istream& in, std::FILE* out) {
  std::optional<Prompter> prompter;
  if (!prompter_name.empty() && !(prompter = find_prompter(prompter_name))) {
    std::string names;
    for (const Prompter& p : prompters()) names += (names.empty() ? "" : ", ") + std::string(p.name);
    throw EveryRankError("command line: --prompter: expected one of " + names + ", got '" + prompter_name + "'");
  }
  const Communicator& comm = Communicator::get();
  if (comm.world_size() > 1)
    throw EveryRankError(config.source + ": inference: expected one rank, got " + std::to_string(comm.world_size()));
  if (config.reward_model || config.process_reward_model)
    throw EveryRankError(config.source + ": inference: expected a causal LM, got " +
                         (config.reward_model ? "reward_model" : "process_reward_model") +
                         " (a classifier scores; it has no lm_head to sample from)");
  if (config.diffusion.on)
    throw EveryRankError(config.source + ": inference: expected a causal LM, got a diffusion model (Axolotl's masked "
                         "denoising inference is not built; its samples print during training: generation_interval)");
  // Axolotl's: a prompter's format, else the chat template. A missing template fails before loading.
  const std::string template_source = prompter ? "" : inference_chat_template(config);
  std::optional<jinja::Template> chat_template;
  if (!template_source.empty()) chat_template.emplace(template_source, config.source + ": chat_template");
  Impl impl(std::move(config), Impl::Purpose::inference);
  const Tokenizer& tokenizer = *impl.tokenizer;
  for (uint64_t turn = 0;; turn++) {
    fmt::print(out, "{}\nGive me an instruction (Ctrl + D to submit): \n{}\n", kRule, kRule);
    std::fflush(out);
    const std::string instruction{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
    in.clear();  // a terminal's Ctrl+D ends one prompt, not the input
    if (instruction.empty()) return;
    const std::vector<int32_t> ids =
        prompt_ids(prompter ? build_prompt(*prompter, strip_newlines(instruction)) : python_strip(instruction),
                   chat_template, tokenizer);
    fmt::print(out, "{}\n", kRule);
    // Streamed as HF's TextStreamer shows it: the prompt, then the new text as it comes.
    fmt::print(out, "{}", decode_utf8_replacing(text_with_specials(tokenizer, ids)));
    std::fflush(out);
    std::vector<int32_t> generated;
    size_t shown = 0;
    SampleOptions opt;
    opt.max_new_tokens = 1024, opt.context = static_cast<int64_t>(ids.size()) + opt.max_new_tokens;
    opt.temperature = 0.9f, opt.repetition_penalty = 1.1f, opt.top_k = 40, opt.top_p = 0.95f;
    opt.stop_tokens = {tokenizer.eos()}, opt.seed = mix_seed(impl.config.seed, turn), opt.ssmax = impl.forward.ssmax;
    opt.on_token = [&](int32_t id) {
      generated.push_back(id);
      const std::string text = text_with_specials(tokenizer, generated);
      const size_t end = shown_end(text, shown);
      fmt::print(out, "{}", decode_utf8_replacing(text.substr(shown, end - shown)));
      std::fflush(out);
      shown = end;
    };
    sample(*impl.model, ids, opt);
    const std::string text = text_with_specials(tokenizer, generated);
    fmt::print(out, "{}\n{}\n", decode_utf8_replacing(text.substr(shown)), kRule);
    std::vector<int32_t> all = ids;
    all.insert(all.end(), generated.begin(), generated.end());
    fmt::print(out, "{}\n", decode_utf8_replacing(text_with_specials(tokenizer, all)));
  }
}

}  // namespace llm
