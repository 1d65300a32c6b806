"""``python -m churn_transformer --model_name churn --predictor_host HOST:PORT --feature_store_yaml F``

kserve's own argument parser (``--predictor_host``, ``--predictor_protocol``, ``--http_port``, ...)
plus the Feast configuration. The YAML's ``${CHURN_...}`` values come from the environment
(``CHURN_FEATURE_REGISTRY``, ``CHURN_REDIS_CONNECTION``, ...: docs/feature-store.md).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from kserve import model_server
from kserve.predictor_config import PredictorConfig

from churn_transformer.model import FeatureTransformer
from serving.bound_server import BoundModelServer

parser = argparse.ArgumentParser(parents=[model_server.parser], description=__doc__)
parser.add_argument("--feature_store_yaml", required=True, help="feature_repo YAML (embedded or production)")
parser.add_argument("--host", default="127.0.0.1", help="address the REST server binds (image: 0.0.0.0)")
parser.add_argument("--max_ids", type=int, default=1000, help="most customer ids per request")
parser.set_defaults(enable_latency_logging=False)


def main() -> None:
    args, _ = parser.parse_known_args()
    yaml_file = Path(args.feature_store_yaml).resolve()

    def store():
        from feast import FeatureStore

        return FeatureStore(repo_path=str(yaml_file.parent), fs_yaml_file=yaml_file)

    model = FeatureTransformer(args.model_name, store, max_ids=args.max_ids)
    model.load()
    # v2 to the predictor whatever --predictor_protocol says: serving/ takes named FP32/BYTES inputs.
    # Passed explicitly: kserve's ModelServer otherwise reads its own parse of sys.argv.
    predictor = PredictorConfig(
        args.predictor_host, "v2", args.predictor_use_ssl, args.predictor_request_timeout_seconds,
        args.predictor_request_retries, args.enable_predictor_health_check,
    )  # fmt: skip
    BoundModelServer(args.host, predictor_config=predictor).start([model])


if __name__ == "__main__":
    main()
