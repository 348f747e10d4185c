// Tensor views, copies, bf16 rounding and the caching allocator's accounting.
#include <cstdlib>
#include <map>
#include <vector>

#include "engine/backend.h"
#include "test/test_util.h"

using namespace llm;
using namespace llm::testing;

TEST_CASE("views share storage and index correctly") {
  std::vector<float> v(24);
  for (int i = 0; i < 24; i++) v[i] = float(i);
  Tensor t = Tensor::from_floats(v, {2, 3, 4});
  Tensor r = t.reshape({6, -1});
  CHECK(r.shape() == Shape{6, 4});
  CHECK(r.shares_storage(t));

  Tensor tr = t.transpose(1, 2);  // (2, 4, 3)
  CHECK(tr.shares_storage(t));
  CHECK_FALSE(tr.is_contiguous());
  CHECK_THROWS(tr.reshape({24}));  // no hidden copy: the caller says contiguous()
  std::vector<float> c = tr.contiguous().to_floats();
  CHECK(c[0 * 12 + 1 * 3 + 2] == v[0 * 12 + 2 * 4 + 1]);  // tr[0][1][2] == t[0][2][1]
  CHECK(c[1 * 12 + 3 * 3 + 0] == v[1 * 12 + 0 * 4 + 3]);

  Tensor n = t.narrow(2, 1, 2);  // (2, 3, 2): columns 1..2
  CHECK(n.shares_storage(t));
  std::vector<float> nv = n.to_floats();
  CHECK(nv == std::vector<float>{1, 2, 5, 6, 9, 10, 13, 14, 17, 18, 21, 22});
  Tensor s = t.slice(0, 1, 2).reshape({12});
  CHECK(s.is_contiguous());
  CHECK(s.to_floats()[0] == 12.0f);
  CHECK_THROWS(t.narrow(2, 3, 2));
}

TEST_CASE("clone is a deep copy; copy_from converts dtype") {
  Tensor a = randn({3, 5});
  Tensor b = a.clone();
  b.data<float>()[0] += 1.0f;
  CHECK(a.to_floats()[0] != b.to_floats()[0]);
  Tensor h = Tensor::empty({3, 5}, DType::bf16);
  h.copy_from(a);
  CHECK(h.to_floats()[4] == bf16_to_f32(f32_to_bf16(a.to_floats()[4])));
}

TEST_CASE("to_floats reads each dtype's own elements (u8 codes, i32 ids)") {
  Tensor codes = Tensor::full({5}, 200.0f, DType::u8, Device::cpu());
  codes.data<uint8_t>()[1] = 7;
  CHECK(codes.to_floats() == std::vector<float>{200, 7, 200, 200, 200});
  CHECK(Tensor::from_ints({3, -4}, {2}).to_floats() == std::vector<float>{3, -4});
}

TEST_CASE("bf16 conversion rounds to nearest even and keeps NaN and infinities") {
  CHECK(bf16_to_f32(f32_to_bf16(1.0f)) == 1.0f);
  // 1 + 2^-8 lies halfway between 1 and 1 + 2^-7: ties go to the even mantissa (1.0).
  CHECK(bf16_to_f32(f32_to_bf16(1.0f + 1.0f / 256)) == 1.0f);
  // 1 + 3 * 2^-8 lies halfway between 1 + 2^-7 and 1 + 2^-6: even is 1 + 2^-6.
  CHECK(bf16_to_f32(f32_to_bf16(1.0f + 3.0f / 256)) == 1.0f + 1.0f / 64);
  CHECK(bf16_to_f32(f32_to_bf16(1.0f + 1.5f / 256)) == 1.0f + 1.0f / 128);  // above half: up
  CHECK(std::isnan(bf16_to_f32(f32_to_bf16(NAN))));
  CHECK(std::isinf(bf16_to_f32(f32_to_bf16(INFINITY))));
  CHECK(bf16_to_f32(f32_to_bf16(-2.5f)) == -2.5f);
}

TEST_CASE("caching allocator: counts bytes in use and their peak, reuses freed blocks") {
  CachingAllocator& alloc = backend(Device::cpu()).allocator();
  AllocatorStats before = alloc.stats();
  alloc.reset_peak();
  {
    Tensor a = Tensor::empty({1024, 256}, DType::f32);  // 1 MiB
    CHECK(alloc.stats().in_use_bytes == before.in_use_bytes + (1 << 20));
    {
      Tensor b = Tensor::empty({1024, 256}, DType::f32);
      CHECK(alloc.stats().peak_bytes >= before.in_use_bytes + (2 << 20));
    }
    CHECK(alloc.stats().in_use_bytes == before.in_use_bytes + (1 << 20));
  }
  CHECK(alloc.stats().in_use_bytes == before.in_use_bytes);
  // The two freed blocks are cached: allocating them again asks the system for nothing.
  size_t system_allocs = alloc.stats().system_allocs;
  {
    Tensor a = Tensor::empty({1024, 256}, DType::f32);
    Tensor b = Tensor::empty({256, 1024}, DType::f32);
  }
  CHECK(alloc.stats().system_allocs == system_allocs);
}

namespace {
// Host memory behind the caching allocator, counted, with at most `limit` bytes at once (0: no
// limit), as a device runs out.
class CountingAllocator : public CachingAllocator {
 public:
  explicit CountingAllocator(size_t limit = 0) : limit_(limit) {}
  ~CountingAllocator() override { release_all(); }
  size_t held = 0, frees = 0;

 protected:
  void* system_alloc(size_t bytes) override {
    if (limit_ > 0 && held + bytes > limit_) return nullptr;
    held += bytes;
    void* p = std::aligned_alloc(512, bytes);
    owned_[p] = bytes;
    return p;
  }
  void system_free(void* ptr) override {
    held -= owned_.at(ptr);
    owned_.erase(ptr);
    frees++;
    std::free(ptr);
  }

 private:
  size_t limit_;
  std::map<void*, size_t> owned_;
};
constexpr size_t kKiB = 1024, kMiB = 1024 * 1024;
}  // namespace

TEST_CASE("caching allocator: small requests share a 2 MiB segment, freed pieces merge, empty_cache returns it") {
  CountingAllocator alloc;
  char* a = static_cast<char*>(alloc.allocate(1000));  // rounded to 1 KiB
  char* b = static_cast<char*>(alloc.allocate(2 * kKiB));
  char* c = static_cast<char*>(alloc.allocate(1));
  CHECK(alloc.stats().system_allocs == 1);
  CHECK(alloc.stats().reserved_bytes == 2 * kMiB);
  CHECK(alloc.stats().in_use_bytes == 3 * kKiB + 512);  // what was asked, rounded to 512
  CHECK(b == a + kKiB);                                 // cut from one block in address order
  CHECK(c == b + 2 * kKiB);
  alloc.deallocate(b);
  alloc.empty_cache();  // a and c still hold the segment
  CHECK(alloc.stats().reserved_bytes == 2 * kMiB);
  CHECK(alloc.allocate(2 * kKiB) == b);  // the hole is the best fit
  alloc.deallocate(b);
  alloc.deallocate(a);  // merges with b's hole
  CHECK(alloc.allocate(3 * kKiB) == a);
  alloc.deallocate(a);
  alloc.deallocate(c);  // the segment whole again
  CHECK(alloc.stats().in_use_bytes == 0);
  // Over 1 MiB: a large segment (20 MiB for requests up to 10 MiB), not the small one's free 2 MiB.
  CHECK(alloc.allocate(2 * kMiB - 512) != a);
  CHECK(alloc.stats().system_allocs == 2);
  alloc.empty_cache();
  CHECK(alloc.stats().reserved_bytes == 20 * kMiB);  // the small segment went back
  CHECK(alloc.held == 20 * kMiB);
  CHECK_THROWS_AS(alloc.deallocate(c), std::logic_error);
}

TEST_CASE("caching allocator: a freed large block serves smaller requests; rows of changing lengths reserve no more") {
  CountingAllocator alloc;
  void* big = alloc.allocate(24 * kMiB);  // over 10 MiB: a segment of its own size
  alloc.deallocate(big);
  void* x = alloc.allocate(11 * kMiB);
  void* y = alloc.allocate(12 * kMiB);  // the 1 MiB after it is too little to cut off: y's block keeps it
  CHECK(x == big);
  CHECK(static_cast<char*>(y) == static_cast<char*>(big) + 11 * kMiB);
  CHECK(alloc.stats().system_allocs == 1);
  CHECK(alloc.stats().in_use_bytes == 23 * kMiB);  // what was asked
  CHECK(alloc.stats().reserved_bytes == 24 * kMiB);
  alloc.deallocate(x);
  alloc.deallocate(y);
  // A step's tensors at one length, then at others no longer in total: the cache serves them all.
  for (size_t length : {5, 7, 3, 6, 4}) {
    std::vector<void*> step;
    for (size_t t = 0; t < 3; t++) step.push_back(alloc.allocate(length * 350 * kKiB));
    for (void* p : step) alloc.deallocate(p);
  }
  CHECK(alloc.stats().system_allocs == 1);
  CHECK(alloc.stats().peak_reserved_bytes == 24 * kMiB);
}

TEST_CASE("caching allocator: out of system memory, it returns its free segments and asks again") {
  CountingAllocator alloc(40 * kMiB);
  void* a = alloc.allocate(16 * kMiB);
  void* b = alloc.allocate(12 * kMiB);
  alloc.deallocate(a);
  void* c = alloc.allocate(18 * kMiB);  // a's free 16 MiB is too small, and 28 + 18 > 40
  CHECK(alloc.frees == 1);
  CHECK(alloc.stats().reserved_bytes == 30 * kMiB);
  CHECK_THROWS_WITH_AS(alloc.allocate(12 * kMiB), doctest::Contains("out of memory allocating 12582912 bytes"),
                       std::runtime_error);
  alloc.deallocate(b);
  alloc.deallocate(c);
}

TEST_CASE("device registry: the CPU is always there; CUDA is listed only with a device") {
  CHECK(device_count(DeviceType::cpu) == 1);
  CHECK(device_count(DeviceType::cuda) >= 0);
  CHECK_THROWS(backend(Device::cuda(device_count(DeviceType::cuda))));
}

TEST_CASE("shape arithmetic refuses sizes past 64 bits instead of wrapping") {
  const int64_t big = int64_t(1) << 40;
  CHECK(shape_numel({big, 1024}) == big * 1024);
  CHECK_THROWS_WITH(shape_numel({big, big}),
                    doctest::Contains("shape [1099511627776, 1099511627776]: the element count overflows 64 bits"));
  CHECK_THROWS_WITH(shape_nbytes({int64_t(1) << 62}, DType::f32),
                    doctest::Contains("the byte size overflows 64 bits"));
  CHECK_THROWS_WITH(Tensor::empty({big, big}, DType::f32), doctest::Contains("overflows 64 bits"));
}
