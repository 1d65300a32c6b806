import subprocess
import sys

import yaml

from components.params import PipelineParams
from pipelines.remote import compile_pipeline


def test_compile_is_byte_identical_across_processes(tmp_path):
    first = compile_pipeline(tmp_path / "a.yaml")
    subprocess.run(
        [sys.executable, "-m", "pipelines.cli", "pipeline", "compile", "--out", str(tmp_path / "b.yaml")],
        check=True,
        capture_output=True,
    )
    assert first.read_bytes() == (tmp_path / "b.yaml").read_bytes()


def test_compiled_pipeline_has_every_step_and_parameter(tmp_path):
    spec = yaml.safe_load(compile_pipeline(tmp_path / "p.yaml").read_text())
    assert spec["pipelineInfo"]["name"] == "churn-training"
    params = spec["root"]["inputDefinitions"]["parameters"]
    assert set(params) == set(PipelineParams().as_arguments())
    assert params["rows"]["defaultValue"] == PipelineParams.rows
    tasks = spec["root"]["dag"]["tasks"]
    assert set(tasks) == {"ingest-op", "train-op", "evaluate-op", "export-op", "register-op"}
    images = {e["container"]["image"] for e in spec["deploymentSpec"]["executors"].values()}
    assert len(images) == 1 and images.pop().startswith("ghcr.io/churn-mlops/components:")
