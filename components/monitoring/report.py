"""The monitor's HTML report: one self-contained page (plots inlined as base64 PNG, like the
evaluation report in :mod:`components.report`, whose figure helpers it reuses)."""

from __future__ import annotations

import html
from pathlib import Path

import numpy as np

from components import storage
from components.monitoring.monitor import ALERT, CONCEPT_DRIFT_NOTE, NOT_ENOUGH, WARN, MonitorResult
from components.report import REPORT_CSS, embed_png, key_value_table, new_figure

_LEVEL_STYLE = {ALERT: "background:#f8d0d0", WARN: "background:#fbecc0", NOT_ENOUGH: "background:#e6e6e6"}
_MOST_PLOTS = 12  # per-feature plots: the drifted first, then the rest by PSI


def _feature_plot(name: str, values: dict) -> str:
    fig, ax = new_figure(f"{name}: PSI {values['psi']:.3f}, JS {values['js']:.3f}", "bin", "share of rows")
    x = np.arange(len(values["bins"]))
    ax.bar(x - 0.2, values["reference"], 0.4, label="reference")
    ax.bar(x + 0.2, values["current"], 0.4, label="window")
    ax.set_xticks(x, values["bins"], rotation=45, ha="right", fontsize=7)
    ax.legend()
    return embed_png(fig)


def _score_plot(result: MonitorResult) -> str:
    hist = result.prediction["histogram"]
    edges = np.linspace(0, 1, len(hist["reference"]) + 1)
    fig, ax = new_figure(
        f"Score distribution (JS {result.prediction['js']:.3f})", "predicted churn probability", "share"
    )
    for label, counts in (("reference", hist["reference"]), ("window", hist["current"])):
        counts = np.asarray(counts, dtype=float)
        ax.stairs(counts / max(counts.sum(), 1), edges, label=label)
    ax.legend()
    return embed_png(fig)


def _auc_plot(result: MonitorResult) -> str | None:
    periods = [p for p in result.estimate_over_time if "estimated_roc_auc" in p]
    if not periods:
        return None
    fig, ax = new_figure("Estimated (CBPE) vs realised ROC AUC over time", "period start (UTC)", "ROC AUC")
    x = np.arange(len(periods))
    est = np.array([p["estimated_roc_auc"] for p in periods])
    low, high = [p["low"] for p in periods], [p["high"] for p in periods]
    ax.fill_between(x, low, high, alpha=0.25, label="interval")
    ax.plot(x, est, "o-", label="estimated")
    realised = [(i, p["realised_roc_auc"]) for i, p in enumerate(periods) if "realised_roc_auc" in p]
    if realised:
        ax.plot(*zip(*realised, strict=True), "s--", label="realised")
    if result.estimate and "reference" in result.estimate:
        ax.axhline(result.estimate["reference"]["realised_roc_auc"], ls=":", color="grey", label="reference")
    ax.set_xticks(x, [p["start"][:13] for p in periods], rotation=45, ha="right", fontsize=7)
    ax.legend()
    return embed_png(fig)


def _checks_table(result: MonitorResult) -> str:
    rows = "".join(
        f'<tr style="{_LEVEL_STYLE.get(c.level, "")}"><td>{html.escape(c.check)}</td>'
        f"<td>{html.escape(c.feature or '')}</td><td>{c.level}</td>"
        f'<td style="text-align:left">{html.escape(c.reason)}</td></tr>'
        for c in sorted(result.checks, key=lambda c: (c.level not in (ALERT, WARN), c.check))
    )
    return f"<table><tr><th>check</th><th>feature</th><th>level</th><th>reason</th></tr>{rows}</table>"


def _reconciliation(result: MonitorResult) -> str:
    recon = result.reconciliation
    if not recon:
        return "<p>No labels given: performance is the label-free estimate only.</p>"
    rows = "".join(
        f"<tr><th>{m}</th><td>{v['estimated']:.4f}</td><td>[{v['low']:.4f}, {v['high']:.4f}]</td>"
        f"<td>{v['realised']:.4f}</td><td>{v['gap']:+.4f}</td><td>{'yes' if v['outside'] else 'no'}</td></tr>"
        for m, v in recon["metrics"].items()
    )
    verdict = (
        "<p><b>Concept drift:</b> realised performance left the estimate's interval; "
        f"{CONCEPT_DRIFT_NOTE}.</p>"
        if recon["concept_drift"]
        else "<p>Realised performance is within the estimate's interval.</p>"
    )
    return (
        f"<p>{recon['rows']:,} labelled rows; intervals at level {recon['level']:g}.</p>"
        "<table><tr><th>metric</th><th>estimated</th><th>interval</th><th>realised</th><th>gap</th>"
        f"<th>outside</th></tr>{rows}</table>{verdict}"
    )


def render(result: MonitorResult) -> str:
    """HTML text of the report for ``result``."""
    plots = []
    if result.prediction:
        plots.append(_score_plot(result))
    auc = _auc_plot(result) if result.estimate else None
    if auc:
        plots.append(auc)
    alerted = {c.feature for c in result.alerts}
    ranked = sorted(result.features, key=lambda n: (n not in alerted, -result.features[n]["psi"]))
    plots += [_feature_plot(n, result.features[n]) for n in ranked[:_MOST_PLOTS]]
    messages = "".join(f"<li>{html.escape(m)}</li>" for m in result.messages)
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>Churn monitor: {result.status}</title>
<style>{REPORT_CSS}</style></head><body>
<h1>Churn monitor: {html.escape(result.status)}</h1>
<ul>{messages}</ul>
<h2>Model version</h2>{key_value_table(result.model)}
<h2>Window ({result.rows:,} rows; compared with {html.escape(result.baseline)})</h2>
{key_value_table(result.window)}
<h2>Checks</h2>{_checks_table(result)}
<h2>Estimated vs realised performance</h2>{_reconciliation(result)}
<h2>Plots</h2><div class="grid">{"".join(plots)}</div>
</body></html>"""


def write_report(result: MonitorResult, path: Path) -> Path:
    """Render and write the report atomically."""
    with storage.atomic_path(Path(path)) as tmp:
        tmp.write_text(render(result), encoding="utf-8")
    return Path(path)
