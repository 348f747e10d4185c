// Axolotl's Spectrum plugin (axolotl.integrations.spectrum.SpectrumPlugin): a full fine-tuning run
// trains the embedding, lm_head and, of each kind of weight, the share spectrum_top_fraction with
// the highest signal-to-noise ratio in a scan of the model (Spectrum's model_snr_results file);
// it does so by setting unfrozen_parameters (train/unfrozen_parameters.h).
#pragma once
#include <string>
#include <vector>

namespace llm {

// "model_snr_results/snr_results_<slug>.json", slug the model name with '/' and '_' as '-', as
// the plugin looks for it in the working directory (it downloads it when absent; llm_train does not).
std::string spectrum_snr_file(const std::string& model_name);

// The unfrozen_parameters the plugin makes from that file's text: "^lm_head.weight$",
// "^model.embed_tokens.weight$", then per weight kind (its "type", in the order kinds first
// appear) the int(count x top_fraction) names of highest "snr" (ties in file order; Python's
// Infinity counts as the highest). A file that is not such a map is a UserError naming `path`.
std::vector<std::string> spectrum_unfrozen_parameters(const std::string& text, const std::string& path,
                                                      double top_fraction);

}  // namespace llm
