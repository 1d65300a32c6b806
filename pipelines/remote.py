"""Compile the pipeline to IR YAML and submit it to a Kubeflow Pipelines server."""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

from components.params import PipelineParams

log = logging.getLogger(__name__)


def write_ir(pipeline, out: Path) -> Path:
    """Compile a ``@dsl.pipeline`` to IR YAML at ``out`` (folders made); every pipeline's compile
    goes through here."""
    from kfp import compiler

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    compiler.Compiler().compile(pipeline, package_path=str(out))
    return out


def compile_pipeline(out: Path, environment: str | None = None) -> Path:
    """Write the pipeline's IR YAML for ``environment`` (default: CHURN_ENV, else dev): the pipeline
    spec, then the Kubernetes platform spec. Byte-identical for the same code and kfp version."""
    from components.config import load_settings
    from pipelines.pipeline import build_pipeline

    return write_ir(build_pipeline(environment or load_settings().environment), out)


def submit(host: str, params: PipelineParams, experiment: str, run_name: str | None = None) -> str:
    """Compile and start a run on the KFP server at ``host``; return the run id.

    Equivalent CLI: ``kfp --endpoint HOST run create -e EXPERIMENT -r RUN -f pipeline.yaml k=v ...``.
    """
    import kfp

    with tempfile.TemporaryDirectory() as tmp:
        package = compile_pipeline(Path(tmp) / "churn_pipeline.yaml")
        try:  # kfp.Client itself calls the server (healthz): a dead host fails here
            client = kfp.Client(host=host)
            run = client.create_run_from_pipeline_package(
                str(package),
                arguments=params.as_arguments(),
                run_name=run_name,
                experiment_name=experiment,
            )
        except Exception as exc:  # urllib3 MaxRetryError, TimeoutError, ApiException...
            raise ConnectionError(f"KFP server {host}: {exc}") from exc
    log.info("submitted run %s to %s", run.run_id, host)
    return run.run_id
