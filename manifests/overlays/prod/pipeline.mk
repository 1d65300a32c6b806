# Parameters of `make submit ENV=prod` and of the scheduled retrain (bare key=value arguments of
# `kfp run create`). DATA_BUCKET comes from platform.env (terraform output).
PIPELINE_PARAMS = data_uri=s3://$(DATA_BUCKET)/churn/raw/telco.csv rows=200000 model_type=xgboost \
  search_budget=40 seed=42 offer_cost=10 customer_value=500 offer_success_rate=0.3 \
  min_roc_auc=0.80 min_pr_auc=0.55 max_regression=0.01
