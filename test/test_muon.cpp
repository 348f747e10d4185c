// Muon (engine/muon.h): the Newton-Schulz orthogonalisation's effect on known singular values,
// its transposition rule, and one optimizer step against the update written out by hand. Its
// trajectory against Axolotl's own Muon through the Trainer: test_hf_trajectory.
#include <cmath>

#include "engine/autograd.h"
#include "engine/dtype.h"
#include "engine/muon.h"
#include "engine/ops.h"
#include "test/test_util.h"

using namespace llm;
using namespace llm::testing;

namespace {

void set_grad(Tensor& p, const Tensor& g) {
  p.zero_grad();
  accumulate_grad(*p.autograd_meta(), g);
}

}  // namespace

// A diagonal matrix's singular values are its entries: the iteration maps each, spread over a
// decade, to about 1 (Moonlight's coefficients land in 0.7-1.2, not exactly 1) and keeps the
// zeros off the diagonal zero. A wide (8, 12) matrix and its tall transpose.
TEST_CASE("newton_schulz: singular values from 0.1 to 1 all map near 1, zeros stay zero") {
  const int64_t r = 8, c = 12;
  std::vector<float> values(r * c, 0.0f);
  for (int64_t i = 0; i < r; i++) values[i * c + i] = 0.1f + 0.9f * float(i) / float(r - 1);
  const Tensor u = Tensor::from_floats(values, {r, c});
  const std::vector<float> o = newton_schulz(u, 5).to_floats();
  for (int64_t i = 0; i < r; i++)
    for (int64_t j = 0; j < c; j++) {
      CAPTURE(i);
      CAPTURE(j);
      if (i == j) CHECK((o[i * c + j] > 0.6f && o[i * c + j] < 1.3f));
      else CHECK(o[i * c + j] == 0.0f);
      CHECK(o[i * c + j] == bf16_to_f32(f32_to_bf16(o[i * c + j])));  // bf16 values
    }
  // A tall matrix is orthogonalised through its transpose: the same values, transposed.
  const std::vector<float> tall = newton_schulz(u.transpose(0, 1).contiguous(), 5).to_floats();
  for (int64_t i = 0; i < r; i++)
    for (int64_t j = 0; j < c; j++) CHECK(tall[j * r + i] == o[i * c + j]);
}

// One step of each role at lr 0.02 with weight decay 0.1 and clipping's factor 0.5: the matrix
// by Nesterov momentum, the orthogonalised update and the 0.2 sqrt(max side) step; the embedding
// by AdamW with eps added before the bias correction; the norm not at all.
TEST_CASE("Muon: one step of each role matches the update written out") {
  Tensor w = randn({6, 10}), e = randn({5, 4}), norm = randn({4});
  const std::vector<float> w0 = w.to_floats(), e0 = e.to_floats(), n0 = norm.to_floats();
  for (Tensor* t : {&w, &e, &norm}) t->set_requires_grad(true);
  const Tensor gw = randn({6, 10}), ge = randn({5, 4}), gn = randn({4});
  set_grad(w, gw);
  set_grad(e, ge);
  set_grad(norm, gn);
  const float lr = 0.02f, wd = 0.1f, b1 = 0.9f, b2 = 0.95f, eps = 1e-8f, mu = 0.95f;
  Muon opt({{"w", &w, true}, {"model.embed_tokens.weight", &e, true}, {"norm", &norm, false}},
           {MuonRole::orthogonalised, MuonRole::adamw, MuonRole::untrained}, {b1, b2, eps, wd}, {mu, true, 5});
  // The global norm over all three gradients, clipped to half of it.
  const double norm_all = std::sqrt(sum_squares(std::vector<Tensor>{gw, ge, gn}));
  CHECK(opt.step(lr, norm_all / 2) == doctest::Approx(norm_all));
  const float clip = static_cast<float>(norm_all / 2 / (norm_all + 1e-6));

  // Matrix: buf = g; Nesterov u = g + mu buf = (1 + mu) g.
  std::vector<float> u = gw.to_floats();
  for (float& x : u) x *= clip * (1 + mu);
  const std::vector<float> o = newton_schulz(Tensor::from_floats(u, {6, 10}), 5).to_floats();
  const float adjusted = lr * 0.2f * std::sqrt(10.0f);
  const std::vector<float> w1 = w.to_floats();
  for (size_t i = 0; i < w1.size(); i++) CHECK(w1[i] == doctest::Approx(w0[i] * (1 - lr * wd) - adjusted * o[i]).epsilon(1e-5));

  // Embedding: m = (1 - b1) g, v = (1 - b2) g^2; p -= lr sqrt(1 - b2) / (1 - b1) m / (eps + sqrt(v)).
  const std::vector<float> g = ge.to_floats(), e1 = e.to_floats();
  for (size_t i = 0; i < e1.size(); i++) {
    const double gc = double(g[i]) * clip, m = (1 - b1) * gc, v = (1 - b2) * gc * gc;
    const double want = e0[i] * (1 - lr * wd) - lr * std::sqrt(1.0 - b2) / (1 - b1) * m / (eps + std::sqrt(v));
    CHECK(e1[i] == doctest::Approx(want).epsilon(1e-5));
  }
  CHECK(norm.to_floats() == n0);
  // State: the matrix's momentum buffer and the embedding's two moments, f32.
  CHECK(opt.state_bytes() == size_t(4 * (60 + 2 * 20)));
  CHECK(opt.state_table().size() == 3);
}
