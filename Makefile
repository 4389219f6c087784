# Set-up is a stamp on the lock file: `make setup` does nothing when requirements.lock has not changed.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
SQUAD := ../shared/data/squad-v1.1-dev.json
LLM_STAMP := $(VENV)/.installed-llm
# axe-core, the accessibility checker the browser tests run in the page: pinned, installed from npm at test time only
# (never served by the app).
AXE_VERSION := 4.13.0
AXE := .axe/node_modules/axe-core/axe.min.js

.PHONY: setup setup-llm setup-axe ask ingest test unit eval lint bench bench-scale ui squad train-reader train-answerer \
	clean

setup: $(STAMP)

$(STAMP): requirements.lock
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.lock
	touch $@

# The `llm` extra (llama-index's OpenAI-compatible and Ollama integrations), for --llm and its tests; the base lock
# constrains it, so nothing already installed changes version. `make ask` and the extractive path never need it.
setup-llm: $(LLM_STAMP)

$(LLM_STAMP): requirements-llm.lock $(STAMP)
	$(PY) -m pip install --quiet --disable-pip-version-check -c requirements.lock -r requirements-llm.lock
	touch $@

setup-axe: $(AXE)

$(AXE):
	npm install --silent --no-audit --no-fund --no-save --no-package-lock --prefix .axe axe-core@$(AXE_VERSION)

# make ask Q="when did Mosul fall?"  (indexes seeds/ first when there is no index yet)
ask: setup
	@test -n "$$Q" || { echo 'usage: make ask Q="your question"' >&2; exit 2; }
	@$(PY) -m rag.ask "$$Q"

ingest: setup
	$(PY) -m rag.ingest

# Every test, then the quality gates: the seed questions (default answerer), the held-out evals/open.jsonl for the
# default and for each answerer alone, the news-quiz questions over Reuters wire copy (evals/quiz.jsonl, default),
# the questions typed about the seed articles (evals/typed.jsonl and evals/chat.jsonl, default) and the quiz-written and
# typed questions over 300 BBC and Reuters articles (evals/news.jsonl, default), with floors near the levels measured:
# regressions fail. The generated-answer tests talk to a scripted model server
# through the llm extra, so it is installed first.
test: setup setup-llm lint unit eval

unit: setup setup-llm setup-axe
	$(PY) -m pytest -q

eval: setup
	$(PY) -m rag.eval --questions evals/seeds.jsonl --min-answer.accuracy 0.9 --min-retrieval.recall@5 0.9 \
		--min-refusal.accuracy 0.9 --min-citation.precision 0.9 --min-answer.f1 0.85
	$(PY) -m rag.eval --questions evals/open.jsonl --min-answer.accuracy 0.60 --max-refusal.false_rate 0.12
	$(PY) -m rag.eval --questions evals/quiz.jsonl --min-answer.accuracy 0.75 --max-refusal.false_rate 0.07 \
		--min-refusal.accuracy 0.5
	$(PY) -m rag.eval --questions evals/typed.jsonl --min-answer.accuracy 0.62 --max-refusal.false_rate 0.16 \
		--min-refusal.accuracy 0.55
	$(PY) -m rag.eval --questions evals/chat.jsonl --min-answer.accuracy 0.50 --max-refusal.false_rate 0.17 \
		--min-refusal.accuracy 0.70
	$(PY) -m rag.eval --questions evals/news.jsonl --min-answer.accuracy 0.62 --max-refusal.false_rate 0.07 \
		--min-refusal.accuracy 0.25
	RAG_ANSWERER=rules $(PY) -m rag.eval --questions evals/open.jsonl --min-answer.accuracy 0.38 \
		--max-refusal.false_rate 0.27
	RAG_ANSWERER=reader $(PY) -m rag.eval --questions evals/open.jsonl --min-answer.accuracy 0.60 \
		--max-refusal.false_rate 0.09 --min-retrieval.recall@5 0.95

lint: setup
	$(VENV)/bin/ruff check rag benchmarks tests app.py
	$(VENV)/bin/mypy

bench: setup
	$(PY) -m benchmarks.speed
	$(PY) -m benchmarks.library

# Ingest, start-up and answering from 2 to 19,043 articles, embedded store and Chroma server (evals/SCALE.md); about
# half an hour on two cores, so neither `make test` nor `make bench` runs it. SCALE_FLAGS="--skip-server" and the like.
bench-scale: setup
	$(PY) -m benchmarks.scale $(SCALE_FLAGS)

# SQuAD v1.1 dev, open setting (all 2,067 paragraphs indexed), questions of the held-out half of the article split.
squad: setup
	RAG_ANSWERER=reader $(PY) -m rag.eval --squad $(SQUAD) --split heldout --report evals/SQUAD.md $(SQUAD_FLAGS)

# Learned components, trained from ../shared/data with fixed seeds (never part of CI): the reader in the two runs
# that made the shipped one (about 35-65 min each on 2 cores: a first epoch, then a second at a lower rate with
# other negatives sampled), then the sentence ranker, span selector and refusal model over its readings (~6 min).
READER_RUNS := /tmp/rag-reader-runs
train-reader: setup
	$(PY) -m rag.training.reader --squad $(SQUAD) --seed 0 --out $(READER_RUNS)/1
	$(PY) -m rag.training.reader --squad $(SQUAD) --seed 1 --lr 5e-5 --init $(READER_RUNS)/1

train-answerer: setup
	$(PY) -m rag.training.answerer --squad $(SQUAD) --seed 0

ui: setup
	$(PY) app.py

clean:
	rm -rf .rag
