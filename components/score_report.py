"""The scoring run's report: one self-contained HTML page summarising a ranked list.

:class:`ReportBuilder` is fed the ranked output chunk by chunk, in rank order, as pass 2 of
:mod:`components.score` writes it (so a 10M-row list is never in memory: per chunk it adds to a
fixed-bin histogram, a running profit sum sampled at fixed ranks, reason and segment counters and
the first ``top_k`` ids). :meth:`ReportBuilder.render` then draws:

- the score distribution (50 bins over [0, 1], the decision threshold marked);
- expected profit of calling the top ``k`` vs everyone flagged at the threshold vs the best number
  vs all vs none, and the cumulative profit curve by rank;
- the top reasons overall and per segment (contract type, tenure band): a reason is counted once
  per customer who has it among their top 3 (:func:`reason_key` groups e.g. every
  ``tenure = N months`` under ``tenure``; categories keep their value, ``Contract = Month-to-month``);
- the overlap of this run's top ``k`` with the previous run's (:func:`find_previous`): the ranked
  output given as ``previous``, else the file the new output replaces at the same URI.

Plots and tables reuse :mod:`components.report`'s embedding helpers.
"""

from __future__ import annotations

import html
import logging
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from components import schema, storage
from components.config import Settings
from components.features import TENURE_BAND_EDGES

# The evaluation report's figure/table helpers and style: one look for every report of the product.
from components.report import REPORT_CSS, embed_png, key_value_table, new_figure
from components.scored_output import DECISION, PROBABILITY, PROFIT, RANK, ScoreError, is_parquet

log = logging.getLogger(__name__)

HISTOGRAM_BINS = 50
PROFIT_CURVE_POINTS = 200
SEGMENTS = ("Contract", "tenure band")
_TENURE_BANDS = ("0-5 months", "6-11 months", "12-23 months", "24-47 months", "48+ months")
# Reason labels whose value is part of the reason (a category), not a number that varies per row.
_VALUED_TERMS = frozenset(schema.CATEGORICAL) | {"SeniorCitizen"}


def tenure_band(tenure) -> np.ndarray:
    """The band name of each tenure (months), on the model's own band edges (features.TENURE_BAND_EDGES)."""
    index = np.searchsorted(np.asarray(TENURE_BAND_EDGES), np.asarray(tenure, dtype=float), side="right")
    return np.asarray(_TENURE_BANDS, dtype=object)[index]


def reason_key(labels: pd.Series) -> pd.Series:
    """The reason each label (components.reasons' text) counts as: categories keep their value
    (``Contract = Month-to-month``), numbers are their term (``tenure = 2 months`` -> ``tenure``),
    ``charges up 30% vs average`` -> ``charges vs average``. Missing labels stay missing."""
    distinct = pd.Series(labels.dropna().unique(), dtype=object).astype(str)
    term = distinct.str.partition(" = ")[0]
    numeric = distinct.str.contains(" = ", regex=False) & ~term.isin(_VALUED_TERMS)
    keys = np.where(numeric, term, distinct)
    keys = np.where(distinct.str.startswith("charges "), "charges vs average", keys)
    return labels.map(dict(zip(distinct, keys, strict=True)))


@dataclass(frozen=True)
class PreviousList:
    """The previous run's top ids (``ids``: at most ``k``, rank order) or why there are none (``note``)."""

    uri: str
    ids: tuple[str, ...] = ()
    note: str = ""


def _top_ids(path: Path, k: int) -> tuple[str, ...]:
    """The ids of the first ``k`` ranks of a ranked output (Parquet or CSV) without reading the rest."""
    columns = [schema.ID_COLUMN, RANK]
    if is_parquet(path):
        batches = pq.ParquetFile(path).iter_batches(batch_size=k, columns=columns)
        head = next(batches, pa.table({c: [] for c in columns}))
        frame = head.to_pandas()
    else:
        frame = pd.read_csv(path, usecols=columns, dtype={schema.ID_COLUMN: str}, nrows=k)
    if not (frame[RANK].to_numpy() == np.arange(1, len(frame) + 1)).all():
        raise ValueError("its rank column does not start 1, 2, 3, ...")
    return tuple(frame[schema.ID_COLUMN].astype(str))


def find_previous(explicit: str, default: str, k: int, settings: Settings, work: Path) -> PreviousList | None:
    """The previous run's list: ``explicit`` (must exist and be a ranked output, else
    :class:`~components.score.ScoreError`), else ``default`` (the URI this run's output replaces)
    when something is there; None when neither. A ``default`` file that is not a ranked output is
    not an error (the report says it was not compared)."""
    uri = explicit or default
    if not uri:
        return None
    try:
        local = _fetch_if_present(uri, settings, Path(work))
    except storage.StorageError:
        if explicit:
            raise
        log.warning("score report: previous output %s unreadable; no overlap computed", uri, exc_info=True)
        return PreviousList(uri, note="could not be read")
    if local is None:
        if explicit:
            raise ScoreError(f"previous run {uri}: no such file")
        return None
    try:
        return PreviousList(uri, _top_ids(local, k))
    except (ValueError, KeyError, OSError, pa.ArrowException) as exc:
        if explicit:
            raise ScoreError(f"previous run {uri}: not a ranked scoring output ({exc})") from exc
        return PreviousList(uri, note=f"is not a ranked scoring output ({exc})")


def _fetch_if_present(uri: str, settings: Settings, work: Path) -> Path | None:
    if not storage.is_s3(uri):
        path = Path(uri).expanduser()
        return path if path.is_file() else None
    from minio.error import S3Error

    loc = storage.parse_s3(uri)
    dest = work / "previous"
    dest.mkdir(parents=True, exist_ok=True)
    with storage.s3_errors(uri, settings):
        try:
            storage.s3_client(settings).fget_object(loc.bucket, loc.key, str(dest / "ranked"))
        except S3Error as exc:
            if exc.code == "NoSuchKey":
                return None
            raise
    return dest / "ranked"


@dataclass
class _Segment:
    customers: int = 0
    flagged: int = 0
    probability_sum: float = 0.0
    reasons: Counter = field(default_factory=Counter)


class ReportBuilder:
    """Aggregates a ranked output chunk by chunk (:meth:`add`, rank order) for :meth:`render`.

    ``rows`` is the list's length (known before pass 2 starts), ``threshold`` the bundle's decision
    threshold, ``top_k`` the size of the call list the report prices and compares.
    """

    def __init__(self, rows: int, threshold: float, top_k: int):
        self.rows, self.threshold, self.top_k = rows, threshold, min(top_k, rows)
        self.histogram = np.zeros(HISTOGRAM_BINS, dtype=np.int64)
        grid = np.linspace(1, max(rows, 1), PROFIT_CURVE_POINTS)
        self.curve_ranks = np.unique(grid.round().astype(np.int64))
        self.curve = np.zeros(len(self.curve_ranks))
        self.seen = 0
        self.profit = 0.0  # running sum of expected profit, rank 1 .. seen
        self.best_profit, self.best_k = 0.0, 0  # calling nobody earns 0
        self.top_k_profit = 0.0
        self.flagged, self.flagged_profit = 0, 0.0
        self.top_ids: list[str] = []
        self.reasons: Counter = Counter()
        self.contribution: defaultdict[str, float] = defaultdict(float)
        self.segments: dict[str, defaultdict[str, _Segment]] = {s: defaultdict(_Segment) for s in SEGMENTS}
        self.has_reasons = False

    def add(self, chunk: pa.Table) -> None:
        """One chunk of the ranked output, the chunk after the previous one (rank order)."""
        # every column but the ids (a Python string per row): only the first top_k of them are kept
        frame = chunk.drop_columns([schema.ID_COLUMN]).to_pandas()
        n = len(frame)
        p = frame[PROBABILITY].to_numpy()
        self.histogram += np.histogram(p, bins=HISTOGRAM_BINS, range=(0.0, 1.0))[0]
        cumulative = self.profit + np.cumsum(frame[PROFIT].to_numpy(dtype=np.float64))
        at = (self.curve_ranks > self.seen) & (self.curve_ranks <= self.seen + n)
        self.curve[at] = cumulative[self.curve_ranks[at] - self.seen - 1]
        if n and cumulative.max() > self.best_profit:
            self.best_profit, self.best_k = float(cumulative.max()), self.seen + int(cumulative.argmax()) + 1
        if self.seen < self.top_k <= self.seen + n:
            self.top_k_profit = float(cumulative[self.top_k - self.seen - 1])
        flagged = frame[DECISION].to_numpy() == 1
        self.flagged += int(flagged.sum())
        self.flagged_profit += float(frame.loc[flagged, PROFIT].sum())
        wanted = max(0, self.top_k - len(self.top_ids))
        self.top_ids += [str(i) for i in chunk.column(schema.ID_COLUMN).slice(0, wanted).to_pylist()]
        self.profit, self.seen = float(cumulative[-1]) if n else self.profit, self.seen + n
        self._add_segments(frame, flagged)

    def _add_segments(self, frame: pd.DataFrame, flagged: np.ndarray) -> None:
        labels = [c for c in frame.columns if c.startswith("reason_") and not c.endswith("_contribution")]
        self.has_reasons = self.has_reasons or bool(labels)
        segments = {}
        if "Contract" in frame:
            segments["Contract"] = frame["Contract"].astype(str).to_numpy()
        if "tenure" in frame:
            segments["tenure band"] = tenure_band(frame["tenure"])
        long = pd.concat(
            [
                pd.DataFrame(
                    {
                        "row": np.arange(len(frame)),
                        "key": reason_key(frame[c]),
                        "contribution": frame[f"{c}_contribution"],
                    }
                )
                for c in labels
            ]
            or [pd.DataFrame({"row": [], "key": [], "contribution": []})]
        ).dropna(subset=["key"])
        self.reasons.update(long["key"].value_counts().to_dict())
        for key, total in long.groupby("key")["contribution"].sum().items():
            self.contribution[key] += float(total)
        p = frame[PROBABILITY].to_numpy()
        for name, values in segments.items():
            table = pd.DataFrame({"segment": values, "p": p, "flagged": flagged})
            for value, group in table.groupby("segment"):
                seg = self.segments[name][value]
                seg.customers += len(group)
                seg.flagged += int(group["flagged"].sum())
                seg.probability_sum += float(group["p"].sum())
            per = long.assign(segment=values[long["row"].to_numpy().astype(int)])
            for (value, key), count in per.groupby(["segment", "key"]).size().items():
                self.segments[name][value].reasons[key] += int(count)

    def summary(self, previous: PreviousList | None = None) -> dict:
        """The numbers the page shows (JSON-able): counts, profits, reasons, segments, overlap."""
        k = self.top_k
        out = {
            "rows": self.seen,
            "threshold": self.threshold,
            "top_k": k,
            "flagged": self.flagged,
            "profit": {
                "none": 0.0,
                f"top {k}": self.top_k_profit,
                f"flagged at threshold ({self.flagged})": self.flagged_profit,
                f"best number to call ({self.best_k})": self.best_profit,
                f"all ({self.seen})": self.profit,
            },
            "top_reasons": [
                {
                    "reason": key,
                    "customers": n,
                    "share": n / max(self.seen, 1),
                    "mean_contribution": self.contribution[key] / n,
                }
                for key, n in self.reasons.most_common(10)
            ],
            "segments": {
                name: {
                    value: {
                        "customers": seg.customers,
                        "mean_probability": seg.probability_sum / seg.customers,
                        "flagged_share": seg.flagged / seg.customers,
                        "top_reasons": [(key, n / seg.customers) for key, n in seg.reasons.most_common(3)],
                    }
                    for value, seg in sorted(values.items(), key=_segment_order)
                }
                for name, values in self.segments.items()
                if values
            },
        }
        if previous is not None:
            out["previous"] = {"uri": previous.uri, "note": previous.note}
            if previous.ids:
                both = len(set(self.top_ids) & set(previous.ids))
                out["previous"].update(
                    {
                        "top_k": len(previous.ids),
                        "overlap": both,
                        "overlap_share": both / max(k, 1),
                        "new": k - both,
                        "dropped": len(previous.ids) - both,
                    }
                )
        return out

    def render(self, title: str, context: dict, previous: PreviousList | None = None) -> str:
        """The report's HTML text (self-contained: plots are inlined PNGs)."""
        s = self.summary(previous)
        return f"""<!doctype html><html><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>{REPORT_CSS}</style></head><body>
<h1>{html.escape(title)}</h1>
<h2>Run</h2>{key_value_table(context)}
<h2>Expected profit of calling</h2>{key_value_table(s["profit"])}
<div class="grid">{self._distribution_plot()}{self._profit_plot()}</div>
<h2>Overlap with the previous run's top {s["top_k"]}</h2>{_previous_html(s.get("previous"))}
<h2>Top reasons (share of customers with it among their top 3)</h2>{_reasons_html(s)}
<h2>Segments</h2>{_segments_html(s["segments"])}
</body></html>"""

    def _distribution_plot(self) -> str:
        title = f"Churn probability of {self.seen:,} customers"
        fig, ax = new_figure(title, "churn probability", "customers")
        edges = np.linspace(0, 1, HISTOGRAM_BINS + 1)
        ax.bar(edges[:-1], self.histogram, width=1 / HISTOGRAM_BINS, align="edge")
        ax.axvline(self.threshold, ls="--", color="C3", label=f"threshold {self.threshold:.2f}")
        ax.legend()
        return embed_png(fig)

    def _profit_plot(self) -> str:
        fig, ax = new_figure("Cumulative expected profit by rank", "customers called", "expected profit")
        ax.plot(np.concatenate([[0], self.curve_ranks]), np.concatenate([[0.0], self.curve]))
        ax.axvline(self.top_k, ls="--", color="C1", label=f"top {self.top_k}")
        ax.axvline(self.best_k, ls=":", color="C2", label=f"best {self.best_k}")
        ax.legend()
        return embed_png(fig)


def _segment_order(item) -> tuple:
    value = item[0]
    return (_TENURE_BANDS.index(value), "") if value in _TENURE_BANDS else (len(_TENURE_BANDS), str(value))


def _previous_html(previous: dict | None) -> str:
    if previous is None:
        return "<p>No previous run: none given and nothing at the output's location.</p>"
    if not previous.get("top_k"):
        return f"<p>{html.escape(previous['uri'])} {html.escape(previous['note'])}: not compared.</p>"
    return key_value_table(
        {
            "previous run": previous["uri"],
            "its list": previous["top_k"],
            "in both lists": previous["overlap"],
            "overlap (share of this list)": previous["overlap_share"],
            "new in this list": previous["new"],
            "dropped since": previous["dropped"],
        }
    )


def _reasons_plot(top: list[dict]) -> str:
    fig, ax = new_figure("Top reasons", "share of customers", "")
    ax.barh([r["reason"] for r in top][::-1], [r["share"] for r in top][::-1])
    return embed_png(fig)


def _reasons_html(summary: dict) -> str:
    top = summary["top_reasons"]
    if not top:
        return "<p>No reason codes in this output (scored with <code>--no-reasons</code>).</p>"
    rows = "".join(
        f"<tr><th>{html.escape(r['reason'])}</th><td>{r['customers']:,}</td><td>{r['share']:.1%}</td>"
        f"<td>{r['mean_contribution']:.3f}</td></tr>"
        for r in top
    )
    head = "<tr><th>reason</th><th>customers</th><th>share</th><th>mean log-odds</th></tr>"
    return f'<div class="grid"><div><table>{head}{rows}</table></div>{_reasons_plot(top)}</div>'


def _segments_html(segments: dict) -> str:
    parts = []
    for name, values in segments.items():
        rows = "".join(
            f"<tr><th>{html.escape(str(value))}</th><td>{v['customers']:,}</td>"
            f"<td>{v['mean_probability']:.3f}</td><td>{v['flagged_share']:.1%}</td><td>"
            + html.escape("; ".join(f"{key} ({share:.0%})" for key, share in v["top_reasons"]) or "-")
            + "</td></tr>"
            for value, v in values.items()
        )
        parts.append(
            f"<h3>By {html.escape(name)}</h3><table><tr><th>{html.escape(name)}</th><th>customers</th>"
            "<th>mean probability</th><th>flagged</th><th>top reasons (share of segment)</th></tr>"
            f"{rows}</table>"
        )
    return "".join(parts) or "<p>The output has no segment columns.</p>"


def write_report(html_text: str, path: Path) -> Path:
    """Write the report text to ``path`` atomically."""
    with storage.atomic_path(Path(path)) as tmp:
        tmp.write_text(html_text, encoding="utf-8")
    return Path(path)
