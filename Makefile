# The front door. `make` builds ./llm_train and ./llm_bench; `make test` and `make train` first
# install whatever Debian packages are missing (`make deps`), so each alone sets up a new machine.
BUILD_DIR ?= build
JOBS ?= $(shell nproc)
CMAKE_FLAGS ?=

.PHONY: all build deps test train bench clean

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

bench: build
	./llm_bench step

clean:
	rm -rf $(BUILD_DIR) llm_train llm_bench
