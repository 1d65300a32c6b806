"""The pipeline's parameters: names, types and defaults in one place.

Defaults come from the step configs, so the pipeline, `churn run` and `churn pipeline submit`
can never disagree with the steps about them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from components.evaluate import BusinessConfig
from components.gate import GateConfig
from components.ingest import IngestConfig
from components.train import TrainConfig

DEFAULT_ROWS = 50_000


@dataclass(frozen=True)
class PipelineParams:
    """Everything a pipeline run can be given. ``data_uri`` empty = synthetic data of ``rows``."""

    data_uri: str = ""
    rows: int = DEFAULT_ROWS
    seed: int = TrainConfig.seed
    model_type: str = TrainConfig.model_type
    search_budget: int = TrainConfig.search_budget
    cv_folds: int = TrainConfig.cv_folds
    max_bad_share: float = IngestConfig.max_bad_share
    offer_cost: float = BusinessConfig.offer_cost
    customer_value: float = BusinessConfig.customer_value
    offer_success_rate: float = BusinessConfig.offer_success_rate
    min_roc_auc: float = GateConfig.min_roc_auc
    min_pr_auc: float = GateConfig.min_pr_auc
    max_regression: float = GateConfig.max_regression
    # On a cluster the canary rollout earns "champion"; a laptop run promotes a passing challenger.
    promote: bool = False

    def __post_init__(self):
        """Fail before anything runs, naming the parameter: each step's config checks its own."""
        if not self.data_uri and self.rows < 100:
            raise ValueError(f"rows must be >= 100 for synthetic data, got {self.rows}")
        TrainConfig(self.model_type, self.search_budget, self.cv_folds, self.seed)
        IngestConfig(max_bad_share=self.max_bad_share, seed=self.seed)
        BusinessConfig(self.offer_cost, self.customer_value, self.offer_success_rate)
        GateConfig(self.min_roc_auc, self.min_pr_auc, self.max_regression)

    def as_arguments(self) -> dict:
        return asdict(self)
