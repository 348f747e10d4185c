"""Prints the draws test/test_torch_generator.cpp checks engine/torch_generator.cpp against:
apollo_torch's stable_randn(shape, seed) (torch.randn from a CPU generator seeded with seed) as
hex floats, its first three and last three elements, and the seeds next_seed(seed) chains from 1.
Run: python tools/make_torch_random_reference.py (torch and apollo-torch installed)."""
import torch
from apollo_torch.random_projector import next_seed, stable_randn

for shape, seed in [((2, 8), 1), ((4, 5), 7), ((3, 2), 3), ((1, 33), 5), ((16, 64), 12345)]:
    values = [float(x).hex() for x in stable_randn(shape, seed).flatten().tolist()]
    print(f"stable_randn({shape}, {seed}): head {values[:3]}, tail {values[-3:]}")
seed = 1
for _ in range(4):
    seed = next_seed(seed)
    print("next_seed:", seed)
print("torch", torch.__version__, "CPU capability", torch.backends.cpu.get_cpu_capability())
