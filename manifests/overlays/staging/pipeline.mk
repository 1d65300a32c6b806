# Parameters of `make submit ENV=staging` (bare key=value arguments of
# `kfp run create`). DATA_URI is the content-addressed object `make data-upload DATA_FILE=...`
# printed (s3://<data bucket>/churn/raw/sha256=<hex>/<file>): a fixed key would be overwritten by
# the next upload and a registered version's data_hash could no longer be reproduced.
DATA_URI ?=
CONTENT_ADDRESSED_DATA_URI = $(if $(filter s3://$(DATA_BUCKET)/churn/raw/sha256=%,$(DATA_URI)),$(DATA_URI),$(error \
  DATA_URI=s3://$(DATA_BUCKET)/churn/raw/sha256=<hex>/<file> is required (make data-upload DATA_FILE=...); got '$(DATA_URI)'))
PIPELINE_PARAMS = data_uri=$(CONTENT_ADDRESSED_DATA_URI) rows=200000 model_type=xgboost \
  search_budget=20 seed=42 offer_cost=10 customer_value=500 offer_success_rate=0.3 \
  min_roc_auc=0.80 min_pr_auc=0.55 max_regression=0.01
