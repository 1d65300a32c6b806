# Parameters of `make submit ENV=dev` (bare key=value arguments of `kfp run create`).
# dev trains on the synthetic generator (data_uri empty): no data has to be staged first.
PIPELINE_PARAMS = data_uri= rows=50000 model_type=xgboost search_budget=8 seed=42 \
  offer_cost=10 customer_value=500 offer_success_rate=0.3 \
  min_roc_auc=0.75 min_pr_auc=0.5 max_regression=0.02
