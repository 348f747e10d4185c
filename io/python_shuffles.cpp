// defines: numpy_permutation, hf_stream_shuffle, torch_randperm (see the header)
#include "io/python_shuffles.h"

#include <array>
#include <numeric>
#include <utility>

namespace llm {

namespace {

using u128 = unsigned __int128;

// numpy's SeedSequence(seed).generate_state(4, uint64): the seed's 32-bit words (least
// significant first) hashed into a pool of four, then the pool hashed out again, cycled.
std::array<uint64_t, 4> seed_sequence_state(uint64_t seed) {
  constexpr uint32_t kInitA = 0x43b0d7e5, kMultA = 0x931e8875, kInitB = 0x8b51f9dd, kMultB = 0x58f38ded;
  constexpr uint32_t kMixMultL = 0xca01f9dd, kMixMultR = 0x4973f715;
  std::vector<uint32_t> entropy{static_cast<uint32_t>(seed)};
  if (seed >> 32) entropy.push_back(static_cast<uint32_t>(seed >> 32));
  uint32_t hash_const = kInitA;
  const auto hashmix = [&hash_const](uint32_t value) {
    value ^= hash_const;
    hash_const *= kMultA;
    value *= hash_const;
    return value ^ (value >> 16);
  };
  const auto mix = [](uint32_t x, uint32_t y) {
    const uint32_t result = kMixMultL * x - kMixMultR * y;
    return result ^ (result >> 16);
  };
  std::array<uint32_t, 4> pool{};
  for (size_t i = 0; i < pool.size(); i++) pool[i] = hashmix(i < entropy.size() ? entropy[i] : 0);
  for (size_t src = 0; src < pool.size(); src++)
    for (size_t dst = 0; dst < pool.size(); dst++)
      if (src != dst) pool[dst] = mix(pool[dst], hashmix(pool[src]));
  // (A seed has at most two words, so none is left over for the pool's extra mixing round.)
  std::array<uint32_t, 8> words{};
  uint32_t out_const = kInitB;
  for (size_t i = 0; i < words.size(); i++) {
    uint32_t value = pool[i % pool.size()] ^ out_const;
    out_const *= kMultB;
    value *= out_const;
    words[i] = value ^ (value >> 16);
  }
  std::array<uint64_t, 4> state{};
  for (size_t i = 0; i < state.size(); i++) state[i] = words[2 * i] | static_cast<uint64_t>(words[2 * i + 1]) << 32;
  return state;
}

// numpy's PCG64 (PCG XSL-RR 128/64) with its 32-bit draws: each 64-bit output serves two, low
// half first.
class Pcg64 {
 public:
  explicit Pcg64(uint64_t seed) {
    const std::array<uint64_t, 4> s = seed_sequence_state(seed);
    const u128 initstate = static_cast<u128>(s[0]) << 64 | s[1], initseq = static_cast<u128>(s[2]) << 64 | s[3];
    inc_ = initseq << 1 | 1;
    step();
    state_ += initstate;
    step();
  }
  uint64_t next64() {
    step();
    const uint64_t folded = static_cast<uint64_t>(state_ >> 64) ^ static_cast<uint64_t>(state_);
    const unsigned rotation = static_cast<unsigned>(state_ >> 122);
    return (folded >> rotation) | (folded << ((64 - rotation) & 63));
  }
  uint32_t next32() {
    if (has_half_) {
      has_half_ = false;
      return half_;
    }
    const uint64_t next = next64();
    has_half_ = true;
    half_ = static_cast<uint32_t>(next >> 32);
    return static_cast<uint32_t>(next);
  }

 private:
  void step() {
    constexpr u128 kMultiplier = static_cast<u128>(2549297995355413924ULL) << 64 | 4865540595714422341ULL;
    state_ = state_ * kMultiplier + inc_;
  }
  u128 state_ = 0, inc_ = 0;
  bool has_half_ = false;
  uint32_t half_ = 0;
};

// numpy's random_interval: a uniform draw in [0, max] by rejection under the smallest bit mask.
uint64_t random_interval(Pcg64& rng, uint64_t max) {
  if (max == 0) return 0;
  uint64_t mask = max;
  for (int shift = 1; shift <= 32; shift *= 2) mask |= mask >> shift;
  uint64_t value;
  if (max <= 0xffffffffULL) {
    while ((value = rng.next32() & mask) > max) {
    }
  } else {
    while ((value = rng.next64() & mask) > max) {
    }
  }
  return value;
}

// numpy's integers(0, range + 1) for int64: Lemire's multiply-shift with rejection, on 32-bit
// draws when the range fits them (its buffered_bounded_lemire_uint32), else on 64-bit ones.
uint64_t bounded_lemire(Pcg64& rng, uint64_t range) {
  if (range <= 0xffffffffULL) {
    const uint64_t exclusive = range + 1;
    uint64_t m = static_cast<uint64_t>(rng.next32()) * exclusive;
    uint32_t leftover = static_cast<uint32_t>(m);
    if (leftover < exclusive) {
      const uint32_t threshold = static_cast<uint32_t>((0xffffffffULL - range) % exclusive);
      while (leftover < threshold) {
        m = static_cast<uint64_t>(rng.next32()) * exclusive;
        leftover = static_cast<uint32_t>(m);
      }
    }
    return m >> 32;
  }
  const uint64_t exclusive = range + 1;
  u128 m = static_cast<u128>(rng.next64()) * exclusive;
  uint64_t leftover = static_cast<uint64_t>(m);
  if (leftover < exclusive) {
    const uint64_t threshold = (~uint64_t{0} - range) % exclusive;
    while (leftover < threshold) {
      m = static_cast<u128>(rng.next64()) * exclusive;
      leftover = static_cast<uint64_t>(m);
    }
  }
  return static_cast<uint64_t>(m >> 64);
}

// Generator.shuffle of a list: from the back, each place swapped with one drawn at or before it.
template <class T>
void numpy_shuffle(std::vector<T>& items, Pcg64& rng) {
  for (int64_t i = static_cast<int64_t>(items.size()) - 1; i >= 1; i--)
    std::swap(items[static_cast<size_t>(i)], items[random_interval(rng, static_cast<uint64_t>(i))]);
}

}  // namespace

std::vector<int64_t> hf_stream_shuffle(int64_t n, int64_t buffer_size, uint64_t seed, int64_t epoch, bool in_worker) {
  // shift_rngs(value): a fresh generator seeded with the first draw of the original one, less value.
  const auto shifted = [](uint64_t from, int64_t value) {
    Pcg64 original(from);
    return bounded_lemire(original, (uint64_t{1} << 63) - 1) - static_cast<uint64_t>(value);
  };
  uint64_t epoch_seed = epoch > 0 ? shifted(seed, epoch) : seed;
  if (in_worker) epoch_seed = shifted(epoch_seed, 0);  // dataloader worker 0's own shift
  Pcg64 rng(epoch_seed);
  std::vector<int64_t> order, buffer;
  order.reserve(static_cast<size_t>(n));
  // The indices come 1000 at a time (integers(size=1000)), drawn when the first of a batch is
  // needed: the final shuffle starts after the whole last batch.
  constexpr int64_t kIndexBatch = 1000;
  std::vector<int64_t> indices;
  size_t next_index = 0;
  const uint64_t range = static_cast<uint64_t>(buffer_size) - 1;
  for (int64_t item = 0; item < n; item++) {
    if (static_cast<int64_t>(buffer.size()) < buffer_size) {
      buffer.push_back(item);
      continue;
    }
    if (next_index == indices.size()) {
      indices.clear();
      for (int64_t i = 0; i < kIndexBatch; i++) indices.push_back(static_cast<int64_t>(bounded_lemire(rng, range)));
      next_index = 0;
    }
    int64_t& drawn = buffer[static_cast<size_t>(indices[next_index++])];
    order.push_back(drawn);
    drawn = item;
  }
  numpy_shuffle(buffer, rng);
  order.insert(order.end(), buffer.begin(), buffer.end());
  return order;
}

std::vector<int64_t> numpy_permutation(int64_t n, uint64_t seed) {
  std::vector<int64_t> order(static_cast<size_t>(n));
  std::iota(order.begin(), order.end(), 0);
  Pcg64 rng(seed);
  numpy_shuffle(order, rng);
  return order;
}

std::vector<int64_t> torch_randperm(int64_t n, uint64_t seed) { return TorchGenerator(seed).randperm(n); }

}  // namespace llm
