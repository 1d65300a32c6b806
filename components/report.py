"""The evaluation report: one self-contained HTML page with plots (PNG inlined as base64)."""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless: no display on servers or in CI
import matplotlib.pyplot as plt

from components import storage

# Every report of the product shares this style (evaluation, monitoring, scoring).
REPORT_CSS = """
body{font-family:system-ui,sans-serif;margin:2rem auto;max-width:1100px;color:#222}
h1{font-size:1.5rem} table{border-collapse:collapse;margin:1rem 0}
td,th{border:1px solid #ccc;padding:.3rem .6rem;text-align:right} th{background:#f3f3f3}
.grid{display:grid;grid-template-columns:1fr 1fr;gap:1rem} img{width:100%}
"""


def embed_png(fig) -> str:
    """The figure as a captioned, inlined PNG (the report must be one self-contained file)."""
    title = fig.axes[0].get_title()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    data = base64.b64encode(buf.getvalue()).decode()
    return (
        f'<figure><img alt="{html.escape(title)}" src="data:image/png;base64,{data}">'
        f"<figcaption>{html.escape(title)}</figcaption></figure>"
    )


def new_figure(title: str, xlabel: str, ylabel: str):
    """A titled, labelled, gridded figure and its axes, in every report's size."""
    fig, ax = plt.subplots(figsize=(5.5, 4))
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
    ax.grid(alpha=0.3)
    return fig, ax


def _plots(result: dict) -> list[str]:
    fig, ax = new_figure(f"ROC (AUC {result['roc_auc']:.3f})", "false positive rate", "true positive rate")
    ax.plot(result["roc_curve"]["fpr"], result["roc_curve"]["tpr"])
    ax.plot([0, 1], [0, 1], "--", color="grey")
    plots = [embed_png(fig)]

    fig, ax = new_figure(f"Precision-recall (AP {result['pr_auc']:.3f})", "recall", "precision")
    ax.plot(result["pr_curve"]["recall"], result["pr_curve"]["precision"])
    ax.axhline(result["test_churn_rate"], ls="--", color="grey", label="base rate")
    ax.legend()
    plots.append(embed_png(fig))

    cal = result["calibration"]
    fig, ax = new_figure(
        f"Calibration (test, 10 quantile bins; ECE on {cal['ece_bins']} equal-width bins)",
        "predicted churn probability", "observed churn rate",
    )  # fmt: skip
    ax.plot(cal["uncalibrated"]["predicted"], cal["uncalibrated"]["observed"], "s--", color="C1",
            label=f"before calibration (ECE {result['ece_uncalibrated']:.3f})")  # fmt: skip
    ax.plot(cal["predicted"], cal["observed"], "o-", color="C0",
            label=f"{cal['method']} calibrated (ECE {result['ece']:.3f})")  # fmt: skip
    ax.plot([0, 1], [0, 1], ":", color="grey", label="perfect")
    ax.legend()
    plots.append(embed_png(fig))

    fig, ax = new_figure("Cumulative gains and lift by decile", "decile (highest scores first)", "share")
    d = result["deciles"]
    ax.plot([r["decile"] for r in d], [r["cumulative_gain"] for r in d], "o-", label="cumulative gain")
    ax.plot([r["decile"] for r in d], [r["decile"] / 10 for r in d], "--", color="grey", label="random")
    twin = ax.twinx()
    twin.bar([r["decile"] for r in d], [r["lift"] for r in d], alpha=0.25, color="C1", label="lift")
    twin.set_ylabel("lift")
    ax.legend(loc="center right")
    plots.append(embed_png(fig))

    fig, ax = new_figure("Expected profit per customer vs threshold", "threshold", "profit per customer")
    curve = result["profit_curve"]
    ax.plot(curve["thresholds"], curve["valid"], label="validation (chooses)")
    ax.plot(curve["thresholds"], curve["test"], label="test (reports)")
    ax.axvline(result["threshold"], ls="--", color="C3", label=f"chosen {result['threshold']:.2f}")
    ax.legend()
    plots.append(embed_png(fig))

    imp = result["feature_importance"][:15][::-1]
    fig, ax = new_figure("Permutation importance (ROC AUC drop)", "AUC drop", "")
    ax.barh([r["feature"] for r in imp], [r["roc_auc_drop"] for r in imp], xerr=[r["std"] for r in imp])
    plots.append(embed_png(fig))
    return plots


def key_value_table(rows: dict) -> str:
    """``{name: value}`` as a two-column HTML table (floats to 4 significant digits), escaped."""
    cells = "".join(
        f"<tr><th>{html.escape(str(k))}</th><td>{v:.4g}</td></tr>"
        if isinstance(v, float)
        else f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(str(v))}</td></tr>"
        for k, v in rows.items()
    )
    return f"<table>{cells}</table>"


def render(result: dict, title: str, context: dict) -> str:
    """HTML text of the report for an evaluation ``result`` (see :mod:`components.evaluate`)."""
    scalars = {k: v for k, v in result.items() if isinstance(v, int | float)}
    cm = result["confusion_matrix"]["matrix"]
    confusion = (
        "<table><tr><th></th><th>predicted stay</th><th>predicted churn</th></tr>"
        f"<tr><th>actual stay</th><td>{cm[0][0]}</td><td>{cm[0][1]}</td></tr>"
        f"<tr><th>actual churn</th><td>{cm[1][0]}</td><td>{cm[1][1]}</td></tr></table>"
    )
    deciles = "".join(
        f"<tr><td>{r['decile']}</td><td>{r['rows']}</td><td>{r['churn_rate']:.3f}</td>"
        f"<td>{r['lift']:.2f}</td><td>{r['cumulative_gain']:.3f}</td></tr>"
        for r in result["deciles"]
    )
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>{REPORT_CSS}</style></head><body>
<h1>{html.escape(title)}</h1>
<h2>Run</h2>{key_value_table(context)}
<h2>Metrics (test split; threshold chosen on validation)</h2>{key_value_table(scalars)}
<h2>Confusion matrix at threshold {result["threshold"]:.2f}</h2>{confusion}
<h2>Plots</h2><div class="grid">{"".join(_plots(result))}</div>
<h2>Lift and gains by decile</h2>
<table><tr><th>decile</th><th>rows</th><th>churn rate</th><th>lift</th><th>cumulative gain</th></tr>
{deciles}</table>
</body></html>"""


def write_report(result: dict, path: Path, title: str, context: dict) -> Path:
    """Render and write the report atomically."""
    with storage.atomic_path(Path(path)) as tmp:
        tmp.write_text(render(result, title, context), encoding="utf-8")
    return Path(path)
