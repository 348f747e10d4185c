// Tensor views, copies, bf16 rounding and the caching allocator's accounting.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
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
  alloc.empty_cache();
  CHECK(alloc.stats().reserved_bytes == alloc.stats().in_use_bytes);
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
