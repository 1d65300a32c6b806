# Every target creates the virtualenv itself: on a fresh clone `make run` and `make test` are all
# the setup there is.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
DATA   ?=
OUT    ?=
ROWS   ?= 50000

.DEFAULT_GOAL := help
.PHONY: help venv run test lint format compile serve bench clean

help:  ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | sort

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[serving,dev]'
	@touch $@

venv: $(STAMP)  ## create .venv and install the project with its pinned ranges

run: $(STAMP)  ## train, evaluate, export and register end to end (DATA=path|s3://... OUT=dir)
	$(BIN)/churn run --rows $(ROWS) $(if $(DATA),--data $(DATA)) $(if $(OUT),--out $(OUT))

test: $(STAMP)  ## lint + the whole test suite
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/pytest

lint: $(STAMP)  ## ruff only
	$(BIN)/ruff check .

format: $(STAMP)  ## apply ruff's formatting and safe fixes
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

compile: $(STAMP)  ## write the pipeline IR YAML to build/churn_pipeline.yaml
	$(BIN)/churn pipeline compile --out build/churn_pipeline.yaml

bench: $(STAMP)  ## run the benchmarks
	$(BIN)/python benchmarks/pipeline.py

clean:  ## remove build outputs and local runs (keeps .venv)
	rm -rf build .churn .pytest_cache

# --- serving ---
MODEL_DIR  ?=
HTTP_PORT  ?= 8080
GRPC_PORT  ?= 8081
.PHONY: serve-dir bench-serving test-serving lint-serving image-lint

serve-dir: $(STAMP)  ## serve a bundle dir or URI (MODEL_DIR=dir|s3://...|models:/NAME@ALIAS) on HTTP_PORT
	@test -n "$(MODEL_DIR)" || { echo 'usage: make serve-dir MODEL_DIR=path|s3://...|models:/churn-classifier@champion'; exit 2; }
	$(BIN)/python -m serving --model_name churn --model_dir $(MODEL_DIR) --http_port $(HTTP_PORT) --grpc_port $(GRPC_PORT)

bench-serving: $(STAMP)  ## this server vs MLServer vs FastAPI+pandas (MLServer venv in .venv-mlserver)
	$(BIN)/python benchmarks/serving.py

test-serving: $(STAMP)  ## serving tests only (real server on 127.0.0.1)
	$(BIN)/pytest tests/serving

image-lint: $(STAMP)  ## hadolint the serving image
	$(BIN)/hadolint serving/Dockerfile
