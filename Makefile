# Entry points for the tuner demo. `make help` lists them.
# Scripts work from any directory; demo/.env holds the ports and password.

SHELL := /bin/bash
.DEFAULT_GOAL := help

TUNER := target/release/tuner
# make dev-down VOLUMES=1 also deletes the PostgreSQL and Prometheus data.
VOLUMES ?= 0

.PHONY: help setup images dev-up dev-down dev-env check-health build man test test-swarm lint alerts alerts-check report \
	performance-baseline performance-status demo bench

help: ## List targets
	@grep -E '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F ':.*## ' '{printf "  %-22s %s\n", $$1, $$2}'

setup: ## Install packages (apt) and make sure dockerd answers
	scripts/setup.sh

images: ## Build the local demo images (only those whose inputs changed)
	scripts/images.sh

dev-env: ## Write demo/.env (ports, password, load) if missing
	scripts/dev-env.sh

dev-up: ## Start the demo stack and wait until every service is healthy
	scripts/dev-up.sh

dev-down: ## Stop the demo stack (VOLUMES=1 also removes its data)
	VOLUMES=$(VOLUMES) scripts/dev-down.sh

build: ## Release build of tuner
	cargo build --release

man: build ## The man page from the clap definitions: target/man/tuner.1 (man -l target/man/tuner.1)
	mkdir -p target/man
	$(TUNER) man > target/man/tuner.1

check-health: build ## Health of the stack as tuner sees it
	$(TUNER) status --health

alerts: build ## Render config/alerts.yml from the SLA profile and config/budget.yaml, then promtool-test it
	$(TUNER) alerts --no-baseline --tests target/alerts_test.yml
	promtool test rules target/alerts_test.yml

alerts-check: ## Validate config/alerts.yml with promtool
	promtool check rules config/alerts.yml

report: build ## The HTML report of the last tuning run (tuning-report.html)
	$(TUNER) report

test: ## Everything CI runs: setup if needed, fmt, clippy, all unit and integration tests
	scripts/setup.sh
	cargo fmt --check
	cargo clippy --all-targets -- -D warnings
	cargo test --all-targets
	$(MAKE) test-swarm

test-swarm: ## The Swarm tests, apart (after the rest): joining or leaving a swarm disturbs every container's networks
	TUNER_TEST_LEAVE_SWARM=1 cargo test --test swarm -- --test-threads=1 --include-ignored

lint: ## rustfmt, clippy, the module-layer check (no cycles), shellcheck, cargo-deny (licenses, bans, sources)
	cargo fmt --check
	cargo clippy --all-targets -- -D warnings
	cargo test --test layers
	shellcheck -x scripts/*.sh scripts/lib/*.sh bench/*.sh bench/lib/*.sh
	scripts/setup.sh lint-tools
	cargo deny check licenses bans sources

performance-baseline: build ## Capture baseline.yaml from Prometheus
	$(TUNER) baseline

performance-status: build ## SLA report against the baseline
	$(TUNER) status

performance-tuning: build ## Closed-loop tuning on the demo stack (15 min windows)
	$(TUNER) tune --max-cycles 5

demo: setup dev-up build ## The whole tour on the demo stack: baseline, status, a short tune run, a deploy
	scripts/demo.sh

bench: build ## Benchmarks: status and dev-up, deploy swap vs naive/Swarm, check on k6 streams, watch footprint and cycle (BENCHMARKS.md), tune vs PGTune (bench/TUNE_RESULTS.md)
	bench/status.sh
	bench/run.sh
	bench/check.sh
	bench/watch.sh
	bench/tune_vs_pgtune.sh
