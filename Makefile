# The MaaS control plane. `make help` lists the targets; a newcomer needs `make run` and `make test`.
SHELL := /bin/bash
.DEFAULT_GOAL := help

SWIFT ?= swift
CXX ?= g++
GRPC_LIBS := -lgrpc++ -lgrpc -lgpr -labsl_synchronization -lpthread
HARNESS := .build-harness/shim_harness
HARNESS_SOURCES := Tests/CGRPCShimTests/shim_harness.cc Sources/CGRPCShim/server.cc Sources/CGRPCShim/client.cc
LIST_LOAD := .build-bench/list_load
PYTHON := $(CURDIR)/.venv/bin/python
export MAAS_PYTHON := $(PYTHON)

.PHONY: help deps build test test-swift test-run leak-check run generate check-generated lint \
	bench bench-transport bench-postgres bench-quota bench-gateway bench-scheduler clean postgres postgres-stop psql \
	lint-deploy test-deploy deploy FORCE

help: ## List the targets
	@grep -E '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | sort \
	  | awk 'BEGIN {FS = ":.*## "} {printf "  \033[36m%-18s\033[0m %s\n", $$1, $$2}'

deps: ## Install missing system packages (grpc C++, protobuf, postgresql, ...) and the Python test peer
	@scripts/install-deps
	@scripts/postgres install
	@scripts/python-env >/dev/null

build: deps ## Build every service and tool (debug)
	$(SWIFT) build

test: deps lint lint-deploy test-swift test-run test-deploy leak-check ## Run every test: lint, Swift suites (transport, Python interop, real Postgres), `make run` end to end, shipping files, shim leak check
	@echo "make test: all passed"

# The suites run in parallel and print thousands of lines; a failure is repeated at the end (with
# the log's path) so that the tail of a CI log names it.
test-swift: deps
	$(SWIFT) build --build-tests
	@mkdir -p .build
	@$(SWIFT) test --skip-build 2>&1 | tee .build/test-swift.log; status=$${PIPESTATUS[0]}; \
	  if [ $$status -ne 0 ]; then \
	    echo "== test-swift failed (exit $$status); the failures, from .build/test-swift.log:"; \
	    grep -E -A3 '✘|error:|Fatal error|Crash|signal [0-9]' .build/test-swift.log | head -80; \
	    exit $$status; \
	  fi

# `make run`'s script in a temporary MAAS_RUN_DIR on free ports (a developer's own suite in .run is
# left alone): it comes up, the commands it prints work, SIGTERM stops all of it, a second run
# finds the first one's data.
test-run: deps ## Test `make run` end to end: the printed commands, SIGTERM, and a second run keeping the data
	$(SWIFT) build --build-tests
	$(PYTHON) -m unittest discover -s Tests/Run -v

leak-check: deps ## Run thousands of calls through the shim under valgrind; fails on any leak
	@mkdir -p .build-harness
	$(CXX) -std=c++17 -O1 -g -Wall -Wextra -Werror -ISources/CGRPCShim/include -ISources/CGRPCShim \
	  $(HARNESS_SOURCES) -o .build-harness/shim_harness_debug $(GRPC_LIBS)
	# --fair-sched=yes: valgrind runs one thread at a time, and with its default (unfair) lock a
	# thread can wait for seconds while another spins (grpc's locks spin before they sleep). One
	# CI run (2026-11-23) saw two of the 3,000 calls stall past their 10 s deadline, taken to be
	# that: not reproduced in seven runs since, and never seen outside valgrind.
	valgrind --quiet --fair-sched=yes --leak-check=full --errors-for-leak-kinds=definite,indirect \
	  --show-leak-kinds=definite,indirect --error-exitcode=3 \
	  .build-harness/shim_harness_debug exercise 3000
	@echo "leak-check: valgrind found no definite or indirect leak in the shim"

run: build ## Bring the suite up locally (Ctrl-C stops it)
	@scripts/run-local

postgres: ## Start the local Postgres alone (.run/postgres, 127.0.0.1:54329) and print its URL
	@scripts/postgres start

postgres-stop: ## Stop the local Postgres cleanly (data kept; scripts/postgres destroy --yes deletes it)
	@scripts/postgres stop

psql: ## psql into the local Postgres as maas_owner
	@scripts/postgres psql

generate: ## Regenerate Sources/MaaSContracts from proto/
	scripts/generate

check-generated: ## Fail if Sources/MaaSContracts is stale against proto/
	scripts/generate --check

lint: deps check-generated ## Static checks: generated code, shell scripts, shim warnings
	shellcheck scripts/* .ci/run
	$(CXX) -std=c++17 -fsyntax-only -Wall -Wextra -Werror -ISources/CGRPCShim/include \
	  -ISources/CGRPCShim Sources/CGRPCShim/*.cc Tests/CGRPCShimTests/shim_harness.cc

lint-deploy: deps ## Check what ships the services: Dockerfiles, rendered overlays, workflows, scripts (scripts/lint-deploy)
	scripts/lint-deploy

# The same build as test-swift's (--build-tests), so that one does not undo the other's.
test-deploy: deps ## Test the pipeline's path filters and deploy script, and the manifests and images against the binaries
	$(SWIFT) build --build-tests
	MAAS_BIN_DIR="$$($(SWIFT) build --show-bin-path)" "$$(scripts/deploy-tools)/python" -m unittest discover -s Tests/Deploy -v

deploy: ## Deploy one service: make deploy SERVICE=quota ENV=staging [ARGS="--tag SHA --dry-run"] (scripts/deploy)
	scripts/deploy $(SERVICE) $(ENV) $(ARGS)

$(HARNESS): $(HARNESS_SOURCES) $(wildcard Sources/CGRPCShim/*.h) Sources/CGRPCShim/include/CGRPCShim.h
	@mkdir -p .build-harness
	$(CXX) -std=c++17 -O2 -DNDEBUG -ISources/CGRPCShim/include -ISources/CGRPCShim \
	  $(HARNESS_SOURCES) -o $@ $(GRPC_LIBS)

# gateway-bench's callers, in C++ (Benchmarks/load/list_load.cc).
$(LIST_LOAD): Benchmarks/load/list_load.cc
	@mkdir -p .build-bench
	$(CXX) -std=c++17 -O2 -DNDEBUG $< -o $@ $(GRPC_LIBS)

.build-bench/links/maas: FORCE
	@mkdir -p .build-bench/links
	@ln -sfn ../.. .build-bench/links/maas
	@# SwiftPM does not notice a file added under the linked package's Sources: a source directory
	@# newer than the last bench build makes it read the manifests again.
	@if [ -n "$$(find Sources -type d -newer .build-bench/links/.built 2>/dev/null | head -1)" ] \
	  || [ ! -e .build-bench/links/.built ]; then touch Benchmarks/Package.swift; fi
	@touch .build-bench/links/.built

FORCE:

bench: bench-transport bench-postgres bench-quota bench-gateway bench-scheduler ## Run every benchmark

bench-transport: deps $(HARNESS) .build-bench/links/maas ## Unary QPS/p50/p99 through the shim vs grpc-swift-nio-transport vs a C++ echo server
	$(SWIFT) build -c release --package-path Benchmarks --scratch-path .build-bench --product transport-bench
	@mkdir -p .bench
	.build-bench/release/transport-bench run --harness $(HARNESS) --seconds $${BENCH_SECONDS:-3} --json .bench/transport.json

bench-postgres: deps .build-bench/links/maas ## Primary-key select and single-row update through the Swift Postgres client vs pgbench at 1/8/32 clients
	$(SWIFT) build -c release --package-path Benchmarks --scratch-path .build-bench --product postgres-bench
	@mkdir -p .bench
	.build-bench/release/postgres-bench run --seconds $${BENCH_SECONDS:-5} --json .bench/postgres.json

# maas-quota is built as a product of the root package inside the bench scratch path (through the
# link), so it is the same release build as the bench's own copy of the libraries, and the build
# never waits on the lock of the root .build that `make build` and `make test` use.
bench-quota: deps .build-bench/links/maas ## Consume/s and p50/p99 (one hot tenant, 1,000 tenants; 1/16/64 callers) vs pgbench's single-row UPDATE; overshoot check
	$(SWIFT) build -c release --package-path Benchmarks --scratch-path .build-bench --product maas-quota
	$(SWIFT) build -c release --package-path Benchmarks --scratch-path .build-bench --product quota-bench
	@mkdir -p .bench
	.build-bench/release/quota-bench run --server .build-bench/release/maas-quota --seconds $${BENCH_SECONDS:-5} --json .bench/quota.json

# The three services are built like maas-quota above (products of the root package in the bench
# scratch path), one `swift build` each: SwiftPM builds one product or all of them.
bench-gateway: deps $(LIST_LOAD) .build-bench/links/maas ## ListModels end to end (gateway -> registry -> Postgres; 1,000 models, page 50; 1/16/64 callers) vs pgbench running the registry's list query
	$(SWIFT) build -c release --package-path Benchmarks --scratch-path .build-bench --product maas-quota
	$(SWIFT) build -c release --package-path Benchmarks --scratch-path .build-bench --product maas-registry
	$(SWIFT) build -c release --package-path Benchmarks --scratch-path .build-bench --product maas-gateway
	$(SWIFT) build -c release --package-path Benchmarks --scratch-path .build-bench --product gateway-bench
	@mkdir -p .bench
	.build-bench/release/gateway-bench run --bin-dir .build-bench/release --load-client $(LIST_LOAD) --seconds $${BENCH_SECONDS:-5} --json .bench/gateway.json

# Built like bench-gateway's services. During each placement cell the fleet heartbeats at the
# default interval's rate (nodes / 10 per second); the bench sets the scheduler's heartbeat grace
# to its maximum (an hour) so that every node stays READY between cells.
bench-scheduler: deps .build-bench/links/maas ## Schedule+Release/s and p50/p99 at 100, 1,000 and 10,000 nodes (8 GPUs each; 1/16/64 callers), CPU per placement, double-allocation check
	$(SWIFT) build -c release --package-path Benchmarks --scratch-path .build-bench --product maas-quota
	$(SWIFT) build -c release --package-path Benchmarks --scratch-path .build-bench --product maas-scheduler
	$(SWIFT) build -c release --package-path Benchmarks --scratch-path .build-bench --product scheduler-bench
	@mkdir -p .bench
	.build-bench/release/scheduler-bench run --bin-dir .build-bench/release --seconds $${BENCH_SECONDS:-5} --json .bench/scheduler.json

clean: ## Remove build output (keeps the local database under .run/)
	rm -rf .build .build-harness .build-bench .build-python
