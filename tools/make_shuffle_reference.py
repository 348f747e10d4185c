"""Prints the orders test/test_python_shuffles.cpp checks io/python_shuffles.cpp against:
numpy's default_rng(seed).permutation(n) (HF datasets' Dataset.shuffle) and torch's
randperm(n, generator=Generator().manual_seed(seed)) (HF Trainer's epoch order), and randperm(n)
from the global generator after manual_seed(seed) and int64 random_() draws (HF's
LengthGroupedSampler after DataLoader base seeds), and HF datasets' IterableDataset.shuffle(seed,
buffer_size) of a stream in a given epoch (Axolotl's pretraining_dataset).
Run: python tools/make_shuffle_reference.py (numpy, torch and datasets 4.8 installed)."""
import numpy as np
import torch
import torch.utils.data


def torch_randperm(n, seed):
    generator = torch.Generator()
    generator.manual_seed(seed)
    return torch.randperm(n, generator=generator).tolist()


def show(name, n, seed, order):
    # Whole orders when short; else the first five and five spread positions.
    if n <= 16:
        print(f"{name}({n}, {seed}) = {order}")
    else:
        spread = [n // 7 * k for k in range(1, 6)]
        print(f"{name}({n}, {seed}): head {order[:5]}, at {spread} {[order[i] for i in spread]}")


for n, seed in [(10, 42), (12, 0), (12, 4294967301), (1, 3), (100003, 18446744073709551557)]:
    show("numpy_permutation", n, seed, np.random.default_rng(seed).permutation(n).tolist())
for n, seed in [(10, 42), (10, 43), (1, 9), (100003, 1099511627779)]:
    show("torch_randperm", n, seed, torch_randperm(n, seed))
for n, seed, skips in [(10, 11, (1, 2))]:
    torch.manual_seed(seed)
    orders = []
    for k in skips:
        for _ in range(k):
            torch.empty((), dtype=torch.int64).random_()
        orders.append(torch.randperm(n).tolist())
    print(f"global stream seed {seed}, n {n}, int64 draws before each randperm {skips}: {orders}")
torch.manual_seed(11)
print("manual_seed(11), random_() of an int64:", int(torch.empty((), dtype=torch.int64).random_().item()))
torch.manual_seed(11)
print("manual_seed(11), list(RandomSampler(range(10))) twice:",
      [list(torch.utils.data.RandomSampler(range(10))) for _ in range(2)])

import datasets
for n, buffer_size, seed, epoch in [(10, 100, 42, 0), (25, 8, 42, 0), (25, 8, 42, 1), (25, 8, 42, 2),
                                    (2500, 7, 3, 0), (2500, 7, 3, 1), (12, 12, 4294967301, 0)]:
    stream = datasets.IterableDataset.from_generator(lambda n=n: ({"i": i} for i in range(n)))
    shuffled = stream.shuffle(seed=seed, buffer_size=buffer_size)
    shuffled.set_epoch(epoch)
    order = [row["i"] for row in shuffled]
    show(f"hf_stream_shuffle(buffer {buffer_size}, epoch {epoch})", n, seed, order)
    if n > 16:
        print(f"  tail (the buffer's final shuffle) {order[-buffer_size:]}")
