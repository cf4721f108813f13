# Voice to Ticket — developer entry points. `make help` lists them.
SHELL := /bin/bash
.DEFAULT_GOAL := help
# uv from PATH, else the one pip installs as a module (`make` installs it when missing).
UV ?= $(or $(shell command -v uv 2>/dev/null),python3 -m uv)
export UV_LINK_MODE ?= copy

.PHONY: help bootstrap demo demo-distributed run bench bench-full bench-small test test-unit test-integration chaos chaos-ci lint format schemas schemas-check \
        kafka-install kafka-start kafka-stop broker-status clean migration

help: ## list the targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-18s %s\n", $$1, $$2}'

.venv/.synced: pyproject.toml uv.lock $(wildcard libs/*/pyproject.toml services/*/pyproject.toml)
	@$(UV) --version >/dev/null 2>&1 || python3 -m pip install --quiet uv
	$(UV) sync --frozen --all-packages
	@touch $@

bootstrap: .venv/.synced kafka-install ## install Python packages and the Kafka broker's jars

demo: .venv/.synced ## play a sample call through all six services (embedded) and print the ticket
	$(UV) run --frozen voiceticket demo

demo-distributed: bootstrap ## the same call through six processes on a local Kafka broker
	$(UV) run --frozen voiceticket demo --distributed

run: .venv/.synced ## run all six services in one process (embedded bus, SQLite) on :8080/:8085
	$(UV) run --frozen voiceticket run

test: bootstrap ## run every test tier (unit, then integration on real Kafka and Postgres)
	$(UV) run --frozen pytest

test-unit: .venv/.synced ## unit tests only (no broker, no database server)
	$(UV) run --frozen pytest -m "not integration"

test-integration: bootstrap ## integration and end-to-end tests only
	$(UV) run --frozen pytest -m integration

chaos: bootstrap ## chaos suite (tests/chaos): 200 calls through replicated services under a seeded fault schedule; CHAOS_SEED=... replays
	$(UV) run --frozen pytest tests/chaos -m chaos

chaos-ci: bootstrap ## the chaos suite's small size: 40 calls, a kill of each service, one broker restart (~3-5 min)
	CHAOS_SIZE=ci $(UV) run --frozen pytest tests/chaos -m chaos

bench: bootstrap ## benchmark suite, both buses (~15 min): writes bench/results/<date>.md
	$(UV) run --frozen python bench/suite.py --size modest

bench-full: bootstrap ## the issue's sizes: 5 repeats, a 1,000-call burst on both buses (an hour or more)
	$(UV) run --frozen python bench/suite.py --size full

bench-repeat-matcher: .venv/.synced ## precision and recall of jira-writer's repeat-caller matchers, lexical and embedding (in-sample, cross-validated, fresh pairs), and the embedding model's load time, memory and latency: writes bench/results/repeat-matcher-<date>.md
	$(UV) run --frozen python bench/repeat_matcher.py

bench-small: bootstrap ## the CI variant: a few calls on both buses, correctness only, no report
	$(UV) run --frozen python bench/suite.py --size small --sections webhooks,pipeline,saturation,burst,profile --no-report

migration: .venv/.synced ## write the next schema revision by autogenerate: make migration SERVICE=config-api MSG="add x"
	@test -n "$(SERVICE)" -a -n "$(MSG)" || { echo 'usage: make migration SERVICE=<config-api|transcriber|analyzer|jira-writer|notifier> MSG="what changed"'; exit 2; }
	$(UV) run --frozen python -m voiceticket_common.migrations revision "$(SERVICE)" -m "$(MSG)"

lint: .venv/.synced ## ruff lint and format check, mypy strict over every src package
	$(UV) run --frozen ruff check .
	$(UV) run --frozen ruff format --check .
	$(UV) run --frozen mypy

format: .venv/.synced ## apply ruff's formatting and fixes
	$(UV) run --frozen ruff format .
	$(UV) run --frozen ruff check --fix .

schemas: .venv/.synced ## regenerate the committed event JSON Schemas (refuses breaking changes) and schemas/asyncapi.json
	$(UV) run --frozen python -m voiceticket_common.events.schemas write && $(UV) run --frozen python -m voiceticket_common.events.asyncapi write

schemas-check: .venv/.synced ## fail when models and committed schemas (or the AsyncAPI document) disagree
	$(UV) run --frozen python -m voiceticket_common.events.schemas check && $(UV) run --frozen python -m voiceticket_common.events.asyncapi check

kafka-install: ## fetch Apache Kafka 4.x from Maven Central into deploy/local/kafka/lib
	deploy/local/kafka/kafka.sh install

kafka-start: kafka-install ## start a local single-node KRaft broker on 127.0.0.1:9092
	deploy/local/kafka/kafka.sh start

kafka-stop: ## stop the local broker
	deploy/local/kafka/kafka.sh stop

clean: ## stop the local broker, remove its data (.local) and `voiceticket run`'s databases and secrets (.voiceticket)
	deploy/local/kafka/kafka.sh stop
	rm -rf .local .voiceticket
