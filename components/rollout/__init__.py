"""Canary rollout of a registry version: render, pre-flight replay, Prometheus analysis, the driver."""
