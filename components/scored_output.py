"""The ranked scoring output's format: its columns and the files beside it (one owner).

``churn score``, the churn-scoring pipeline's steps (:mod:`components.score`) and the report
(:mod:`components.score_report`) read and write these names; nobody spells them out again.
"""

from pathlib import Path

from components.errors import ChurnError

PROBABILITY = "churn_probability"
DECISION = "decision"  # 1 = make the offer: probability at or above the bundle's threshold
PROFIT = "expected_profit"  # of making the offer: p * success rate * customer value - offer cost
RANK = "rank"
REGISTRY_VERSION = "registry_version"
CONTENT_SHA = "content_sha256"
# Raw input columns carried into the output so the list can be segmented (the report's segments).
SEGMENT_COLUMNS = ("Contract", "tenure")
QUARANTINE_SUFFIX = ".quarantine.csv"
REPORT_SUFFIX = ".report.html"


class ScoreError(ChurnError, ValueError):
    """The input cannot be scored (missing columns, a chunk with no valid row, too many bad rows)."""


def quarantine_uri(out_uri: str) -> str:
    """Where the quarantine file of output ``out_uri`` goes: beside it, ``<out_uri>.quarantine.csv``."""
    return str(out_uri) + QUARANTINE_SUFFIX


def report_uri(out_uri: str) -> str:
    """Where the report of output ``out_uri`` goes: beside it, ``<out_uri>.report.html``."""
    return str(out_uri) + REPORT_SUFFIX


def is_parquet(path: Path) -> bool:
    """By suffix, else by Parquet's magic bytes (KFP artifact paths have no suffix)."""
    path = Path(path)
    if path.suffix in {".parquet", ".pq"}:
        return True
    with open(path, "rb") as handle:
        return handle.read(4) == b"PAR1"
