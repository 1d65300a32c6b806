"""``python -m churn_transformer --model_name churn --predictor_host HOST:PORT --feature_store_yaml F``

kserve's own argument parser (``--predictor_host``, ``--predictor_protocol``, ``--http_port``, ...)
plus the Feast configuration. The YAML's ``${CHURN_...}`` values come from the environment
(``CHURN_FEATURE_REGISTRY``, ``CHURN_REDIS_CONNECTION``, ...: docs/feature-store.md).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from kserve import model_server

from churn_transformer.model import FeatureTransformer
from serving.bound_server import BoundModelServer

parser = argparse.ArgumentParser(parents=[model_server.parser], description=__doc__)
parser.add_argument("--feature_store_yaml", required=True, help="feature_repo YAML (embedded or production)")
parser.add_argument("--host", default="127.0.0.1", help="address the REST server binds (image: 0.0.0.0)")
parser.add_argument("--max_ids", type=int, default=1000, help="most customer ids per request")
# The transformer speaks v2 to the predictor (serving/ answers v2 with named FP32/BYTES inputs).
parser.set_defaults(predictor_protocol="v2", enable_latency_logging=False)


def main() -> None:
    args, _ = parser.parse_known_args()
    yaml_file = Path(args.feature_store_yaml).resolve()

    def store():
        from feast import FeatureStore

        return FeatureStore(repo_path=str(yaml_file.parent), fs_yaml_file=yaml_file)

    model = FeatureTransformer(args.model_name, store, max_ids=args.max_ids)
    model.load()
    BoundModelServer(args.host).start([model])


if __name__ == "__main__":
    main()
