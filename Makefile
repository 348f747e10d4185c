# The front door. `make` builds ./llm_train and ./llm_bench; `make test` and `make train` first
# install whatever Debian packages are missing (`make deps`), so each alone sets up a new machine.
BUILD_DIR ?= build
JOBS ?= $(shell nproc)
CMAKE_FLAGS ?=

.PHONY: all build deps test train bench bench-attention bench-gpu bench-cpu-torch check-exports clean build-asan test-asan fuzz

all: build

build:
	cmake -S . -B $(BUILD_DIR) -DCMAKE_BUILD_TYPE=Release $(CMAKE_FLAGS)
	cmake --build $(BUILD_DIR) -j$(JOBS)

deps:
	@tools/install_deps.sh

test: deps build
	cd $(BUILD_DIR) && ctest --output-on-failure -j$(JOBS)

# AddressSanitizer + UBSan, CPU only, in a build directory of its own. LeakSanitizer reports what
# we leak, not what Open MPI keeps until exit (tools/lsan.supp).
ASAN_DIR ?= build-asan
SAN_ENV = ASAN_OPTIONS=detect_leaks=1 LSAN_OPTIONS=suppressions=$(CURDIR)/tools/lsan.supp:print_suppressions=0 \
          UBSAN_OPTIONS=print_stacktrace=1:abort_on_error=1
# `make fuzz`: every target of llm_fuzz for FUZZ_SECONDS each from FUZZ_SEED, sanitizers on; a
# failing input is saved in $(ASAN_DIR)/crash-TARGET-SEED-N (replay: llm_fuzz TARGET FILE).
FUZZ_SECONDS ?= 60
FUZZ_SEED ?= 1
ASAN_CONFIGURE = cmake -S . -B $(ASAN_DIR) -DCMAKE_BUILD_TYPE=Release -DLLM_CUDA=OFF -DLLM_SANITIZE=ON

build-asan:
	$(ASAN_CONFIGURE)
	cmake --build $(ASAN_DIR) -j$(JOBS)

test-asan: deps build-asan
	cd $(ASAN_DIR) && $(SAN_ENV) ctest --output-on-failure -j$(JOBS)

fuzz: deps
	$(ASAN_CONFIGURE)
	cmake --build $(ASAN_DIR) -j$(JOBS) --target llm_fuzz
	for t in $$($(ASAN_DIR)/llm_fuzz --list); do \
	  $(SAN_ENV) $(ASAN_DIR)/llm_fuzz $$t --seconds $(FUZZ_SECONDS) --seed $(FUZZ_SEED) --crash-dir $(ASAN_DIR) || exit 1; \
	done

# The demo replaces its previous run's checkpoints (llm_train alone refuses to: overwrite_output_dir).
train: deps build
	./llm_train configs/tiny.yaml --overwrite_output_dir true

# Benchmarks print tables; they never gate anything. On a GPU machine, bench-gpu runs the
# training-step comparison with HF transformers (torch needed) at the llama3-1b shape.
bench: build
	./llm_bench step
	./llm_bench attention
	./llm_bench kernel

bench-attention: build
	./llm_bench attention --impl flash,flash_v2,flash_v3,flash_v4,flash_v5,flash_v6,flash_v7,flash_v8,flash_simt,mem_efficient,s2,cudnn,eager --head-dim 64,128 --pass fwd,fwd_bwd --json bench_attention.json
	./llm_bench attention --impl mem_efficient --seq 4096,16384 --head-dim 128 --causal 1 --pass fwd,fwd_bwd --docs 8
	@if python3 -c "import torch" 2>/dev/null; then \
	  tools/bench_torch_sdpa.py --head-dim 64,128 --json bench_torch_sdpa.json && \
	  tools/bench_compare.py bench_attention.json bench_torch_sdpa.json; \
	else echo "torch not importable: no torch SDPA column"; fi

bench-gpu: build
	LLM_GEMM_CANDIDATES=8 ./llm_bench kernel --preset llama3-1b --tokens 4096 --offset 0,1 --loss-chunks 0,1024,2048 \
	  --json bench_kernel_llama3-1b.json
	./llm_bench kernel --preset llama3-8b --tokens 4096 --json bench_kernel_llama3-8b.json
	./llm_bench step --device cuda --preset llama3-1b --seq 2048 --batch 1 --bf16 1 --attention flash
	./llm_bench step --device cuda --preset llama3-1b --seq 2048 --batch 1 --bf16 1 --attention flash --recompute 1
	./llm_bench step --device cuda --preset llama3-1b --seq 2048 --batch 1 --bf16 1 --attention flash --loss-chunk-rows 2048
	tools/bench_hf_step.py --preset llama3-1b --seq 2048 --batch 1
	tools/bench_hf_step.py --preset llama3-1b --seq 2048 --batch 1 --amp 1
	tools/bench_hf_step.py --preset llama3-1b --seq 2048 --batch 1 --gradient-checkpointing 1
	./llm_bench step --device cuda --preset llama3-8b --layers 8 --seq 2048 --batch 4 --bf16 1 --attention flash

# The CPU backend beside PyTorch on this machine (interleaved rounds, load averages printed);
# TORCH_PYTHON: a python that imports torch and transformers.
TORCH_PYTHON ?= python3
bench-cpu-torch: build
	tools/bench_cpu_vs_torch.py --python $(TORCH_PYTHON) --rounds 3

# Every kind of model a run writes, loaded by transformers and PEFT and merged by PEFT
# (TORCH_PYTHON must also import peft).
check-exports: build
	$(TORCH_PYTHON) tools/check_exports.py --llm-train ./llm_train

clean:
	rm -rf $(BUILD_DIR) $(ASAN_DIR) llm_train llm_bench
