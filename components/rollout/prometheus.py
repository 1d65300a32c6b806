"""A small client of the Prometheus HTTP API (``/api/v1/query``): instant queries at one time.

Standard library only. Every failure (unreachable, HTTP error, a query Prometheus refuses)
raises :class:`PrometheusError` naming the URL and the query: the analysis never turns an
outage into "no data".
"""

from __future__ import annotations

import json
import math
import urllib.error
import urllib.parse
import urllib.request

from components.errors import ChurnError


class PrometheusError(ChurnError, RuntimeError):
    """Prometheus could not be asked, or refused a query; the message names the URL and the query."""


class PrometheusClient:
    """Instant queries against ``url`` (``http://prometheus-operated.monitoring:9090``)."""

    def __init__(self, url: str, timeout_s: float = 10.0, headers: dict[str, str] | None = None):
        if not url.startswith(("http://", "https://")):
            raise PrometheusError(f"Prometheus URL must start with http:// or https://, got {url!r}")
        self.url = url.rstrip("/")
        self.timeout_s = timeout_s
        self.headers = dict(headers or {})

    def query(self, promql: str, at: float | None = None) -> list[dict]:
        """The ``result`` of an instant query (a list of ``{"metric": ..., "value": [t, "v"]}``)."""
        params = {"query": promql}
        if at is not None:
            params["time"] = f"{at:.3f}"
        request = urllib.request.Request(
            f"{self.url}/api/v1/query",
            data=urllib.parse.urlencode(params).encode(),
            headers={"Content-Type": "application/x-www-form-urlencoded", **self.headers},
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                answer = json.load(response)
        except urllib.error.HTTPError as exc:  # 400/422: a bad query; the body says why
            detail = exc.read()[:500].decode("utf-8", "replace")
            raise PrometheusError(
                f"Prometheus at {self.url} answered {exc.code} to {promql!r}: {detail}"
            ) from exc
        except (OSError, ValueError) as exc:
            raise PrometheusError(f"cannot query Prometheus at {self.url} ({promql!r}): {exc}") from exc
        if answer.get("status") != "success":
            why = answer.get("error", answer)
            raise PrometheusError(f"Prometheus at {self.url} refused {promql!r}: {why}")
        data = answer.get("data", {})
        if data.get("resultType") == "scalar":
            return [{"metric": {}, "value": data["result"]}]
        return data.get("result", [])

    def value(self, promql: str, at: float | None = None) -> float | None:
        """The single number a query gives (None when it gives nothing, or NaN as for 0/0; +Inf stays)."""
        result = self.query(promql, at)
        if not result:
            return None
        if len(result) > 1:
            labels = [r["metric"] for r in result]
            raise PrometheusError(f"{promql!r} gave {len(result)} series, expected one: {labels}")
        number = float(result[0]["value"][1])
        return None if math.isnan(number) else number

    def by_label(self, promql: str, label: str, at: float | None = None) -> dict[str, float]:
        """``{value of label: number}`` of a query aggregated ``by (label)``."""
        return {r["metric"].get(label, ""): float(r["value"][1]) for r in self.query(promql, at)}
