# The front door. `make` builds ./llm_train and ./llm_bench; `make test` and `make train` first
# install whatever Debian packages are missing (`make deps`), so each alone sets up a new machine.
BUILD_DIR ?= build
JOBS ?= $(shell nproc)
CMAKE_FLAGS ?=

.PHONY: all build deps test train bench bench-attention bench-gpu clean

all: build

build:
	cmake -S . -B $(BUILD_DIR) -DCMAKE_BUILD_TYPE=Release $(CMAKE_FLAGS)
	cmake --build $(BUILD_DIR) -j$(JOBS)

deps:
	@tools/install_deps.sh

test: deps build
	cd $(BUILD_DIR) && ctest --output-on-failure -j$(JOBS)

train: deps build
	./llm_train configs/tiny.yaml

# Benchmarks print tables; they never gate anything. On a GPU machine, bench-gpu runs the
# training-step comparison with HF transformers (torch needed) at the llama3-1b shape.
bench: build
	./llm_bench step
	./llm_bench attention
	./llm_bench kernel

bench-attention: build
	./llm_bench attention --impl flash,flash_v3,flash_simt,s2,cudnn,eager --head-dim 64,128 --pass fwd,fwd_bwd --json bench_attention.json
	@if python3 -c "import torch" 2>/dev/null; then \
	  tools/bench_torch_sdpa.py --head-dim 64,128 --json bench_torch_sdpa.json && \
	  tools/bench_compare.py bench_attention.json bench_torch_sdpa.json; \
	else echo "torch not importable: no torch SDPA column"; fi

bench-gpu: build
	./llm_bench kernel --preset llama3-1b --tokens 4096 --json bench_kernel_llama3-1b.json
	./llm_bench kernel --preset llama3-8b --tokens 4096 --json bench_kernel_llama3-8b.json
	./llm_bench step --device cuda --preset llama3-1b --seq 2048 --batch 1 --bf16 1 --attention flash
	./llm_bench step --device cuda --preset llama3-1b --seq 2048 --batch 1 --bf16 1 --attention flash --recompute 1
	tools/bench_hf_step.py --preset llama3-1b --seq 2048 --batch 1
	tools/bench_hf_step.py --preset llama3-1b --seq 2048 --batch 1 --gradient-checkpointing 1

clean:
	rm -rf $(BUILD_DIR) llm_train llm_bench
