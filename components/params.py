"""The pipeline's parameters, declared once: name, type, default and help text per field.

Defaults come from the step configs and each step's config is derived from here by a method,
so the KFP pipeline, ``churn run`` / ``churn pipeline run|submit`` (whose options and ``--help``
are generated from these fields) and the in-process chain can never disagree with the steps.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from components.config import ConfigError
from components.evaluate import BusinessConfig
from components.gate import GateConfig
from components.ingest import IngestConfig, synthetic_uri
from components.train import TrainConfig

MIN_SYNTHETIC_ROWS = 200  # ~50 churners: 5 per class in the smallest (10%) split
DEFAULT_ROWS = 50_000


def _param(default, help: str, *aliases: str):
    """A parameter field: ``help`` is the CLI help text, ``aliases`` extra CLI spellings."""
    return field(default=default, metadata={"help": help, "aliases": aliases})


@dataclass(frozen=True)
class PipelineParams:
    """Everything a pipeline run can be given. ``data_uri`` empty = synthetic data of ``rows``."""

    data_uri: str = _param(
        "", "CSV/Parquet path or s3://bucket/key; empty = synthetic data of --rows", "--data"
    )
    rows: int = _param(DEFAULT_ROWS, "synthetic rows when no data is given")
    seed: int = _param(TrainConfig.seed, "seed for data generation, splits and search")
    model_type: str = _param(TrainConfig.model_type, "xgboost | logreg | random_forest")
    search_budget: int = _param(
        TrainConfig.search_budget, "hyperparameter sets tried by the randomized search", "--budget"
    )
    cv_folds: int = _param(TrainConfig.cv_folds, "stratified CV folds per candidate")
    search_shards: int = _param(
        1, "split the search's candidates over this many parallel tasks (1: searched in the train task)"
    )
    max_bad_share: float = _param(
        IngestConfig.max_bad_share, "fail ingest when more than this share of rows is bad"
    )
    offer_cost: float = _param(BusinessConfig.offer_cost, "cost of one retention offer")
    customer_value: float = _param(BusinessConfig.customer_value, "value of keeping a would-be churner")
    offer_success_rate: float = _param(
        BusinessConfig.offer_success_rate, "share of targeted churners an offer keeps"
    )
    min_roc_auc: float = _param(GateConfig.min_roc_auc, "quality gate: ROC AUC floor")
    min_pr_auc: float = _param(GateConfig.min_pr_auc, "quality gate: PR AUC floor")
    max_regression: float = _param(
        GateConfig.max_regression, "quality gate: largest AUC drop allowed vs the champion on the same rows"
    )
    min_disjoint_rows: int = _param(
        GateConfig.min_disjoint_rows,
        "quality gate: fewest test rows neither model trained on for a comparison (else 'refused')",
    )
    max_ece: float = _param(
        GateConfig.max_ece, "quality gate: largest expected calibration error allowed on the test split"
    )
    # A laptop run (`churn run`) promotes a passing challenger; a submitted run leaves "champion" alone.
    promote: bool = _param(False, "move 'champion' to a version that passes the gate")

    def __post_init__(self):
        """Fail before anything runs, naming the parameter: each step's config checks its own."""
        # Ingest checks the exact per-split class counts; this only fails the hopeless case early.
        if not self.data_uri and self.rows < MIN_SYNTHETIC_ROWS:
            raise ConfigError(f"rows must be >= {MIN_SYNTHETIC_ROWS} for synthetic data, got {self.rows}")
        if self.search_shards < 1:
            raise ConfigError(f"search_shards must be >= 1, got {self.search_shards}")
        self.ingest_config()
        self.train_config()
        self.business_config()
        self.gate_config()

    def source_uri(self) -> str:
        """What ingest reads: ``data_uri``, or the synthetic source of ``rows`` rows."""
        return self.data_uri or synthetic_uri(self.rows, self.seed)

    def ingest_config(self) -> IngestConfig:
        return IngestConfig(max_bad_share=self.max_bad_share, seed=self.seed)

    def train_config(self) -> TrainConfig:
        return TrainConfig(self.model_type, self.search_budget, self.cv_folds, self.seed)

    def business_config(self) -> BusinessConfig:
        return BusinessConfig(self.offer_cost, self.customer_value, self.offer_success_rate)

    def gate_config(self) -> GateConfig:
        return GateConfig(
            self.min_roc_auc, self.min_pr_auc, self.max_regression, self.min_disjoint_rows, self.max_ece
        )

    def as_arguments(self) -> dict:
        """The pipeline function's keyword arguments."""
        return asdict(self)
