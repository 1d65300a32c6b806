"""Id-only scoring: a KServe transformer that looks customers up in the Feast online store.

Its own small server (like KServe's python/ servers): ``python -m churn_transformer``, its own
dependency list (``requirements.txt``) and image (``Dockerfile``). The predictor (``serving/``)
never imports Feast; this package never imports the training stack.
"""
