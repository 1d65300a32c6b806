"""Triton Inference Server with the ONNX Runtime backend (C++), CPU only: the serving baseline.

What a KServe user would run for an ONNX model, started on loopback with the benchmark's own
``model.onnx``: one model instance, ONNX Runtime with one intra-op and one inter-op thread, the
same pre-encoded v2 JSON bodies as for our server.

Two parts, neither of which a package ships whole:

- the server: ``tritonserver`` 2.51 from the ``nvidia-pytriton`` wheel (PyPI), installed with
  ``--no-deps`` into ``.venv-triton`` on first use (its numpy pin clashes with the project's);
  only the C++ binary and its bundled libraries are used, no Python.
- the ONNX Runtime backend, ``libtriton_onnxruntime.so`` (Triton r24.10, built by
  ``benchmarks/build_triton_ort.py`` against this environment's onnxruntime wheel, whose
  ``libonnxruntime.so`` it loads at run time), looked up in ``$CHURN_BENCH_TRITON`` (default
  ``~/.cache/churn-bench/triton``) as ``backends/onnxruntime/libtriton_onnxruntime.so``.

Where either is missing, :func:`start_triton` raises :class:`TritonUnavailable` with one sentence
saying what is missing; the benchmark prints it and measures the other servers.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import onnxruntime

from tests.support.server_process import ServerProcess, free_port, http_ok

ROOT = Path(__file__).resolve().parents[1]
VENV = ROOT / ".venv-triton"
PYTRITON_PIN = "nvidia-pytriton==0.7.0"
BACKEND_FILE = Path("backends") / "onnxruntime" / "libtriton_onnxruntime.so"
MODEL_NAME = "churn"

# ONNX Runtime's type names -> Triton's model-config data types (those this model family uses).
TRITON_TYPES = {
    "tensor(string)": "TYPE_STRING",
    "tensor(float)": "TYPE_FP32",
    "tensor(double)": "TYPE_FP64",
    "tensor(int64)": "TYPE_INT64",
    "tensor(int32)": "TYPE_INT32",
    "tensor(bool)": "TYPE_BOOL",
}


class TritonUnavailable(RuntimeError):
    """Triton or its ONNX Runtime backend is not on this machine; the message says which."""


def triton_home() -> Path:
    """Where the locally built backend is looked for (``$CHURN_BENCH_TRITON``, else the user's cache)."""
    return Path(os.environ.get("CHURN_BENCH_TRITON", Path.home() / ".cache" / "churn-bench" / "triton"))


def find_backend(home: Path) -> Path:
    """The ONNX Runtime backend library under ``home``, or :class:`TritonUnavailable`."""
    backend = home / BACKEND_FILE
    if not backend.is_file():
        raise TritonUnavailable(
            f"Triton-ORT skipped: no ONNX Runtime backend at {backend} (build it: .venv/bin/python "
            "benchmarks/build_triton_ort.py; or set CHURN_BENCH_TRITON to the home of one)"
        )
    return backend


def ensure_tritonserver() -> Path:
    """pytriton's bundled ``tritonserver`` binary, installing the wheel into ``.venv-triton`` once."""
    python = VENV / "bin" / "python"
    binary = VENV / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}" / "site-packages"
    binary = binary / "pytriton" / "tritonserver" / "bin" / "tritonserver"
    if binary.is_file():
        return binary
    print(f"installing {PYTRITON_PIN} (tritonserver 2.51) into {VENV} ...", file=sys.stderr, flush=True)
    try:
        if not python.exists():
            subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
        subprocess.run(
            [str(VENV / "bin" / "pip"), "install", "-q", "--no-deps", PYTRITON_PIN],
            check=True,
            capture_output=True,
            text=True,
        )
    except subprocess.CalledProcessError as exc:
        tail = (exc.stderr or "").strip().splitlines()[-1:] or [str(exc)]
        raise TritonUnavailable(f"Triton-ORT skipped: installing {PYTRITON_PIN} failed: {tail[0]}") from exc
    if not binary.is_file():
        raise TritonUnavailable(f"Triton-ORT skipped: {PYTRITON_PIN} installed no tritonserver at {binary}")
    return binary


def backend_directory(work: Path, backend: Path, tritonserver: Path) -> Path:
    """A ``--backend-directory`` holding the backend and the two libraries it links by soname.

    ``libtritonserver.so`` is pytriton's bundled ``libtritonserver-<hash>.so`` (the server the
    backend runs in) and ``libonnxruntime.so.1`` is this environment's onnxruntime wheel's library:
    the backend's RUNPATH is ``$ORIGIN``, so both must sit beside it.
    """
    libs = tritonserver.parents[2].parent / "nvidia_pytriton.libs"
    found = sorted(libs.glob("libtritonserver-*.so"))
    if not found:
        raise TritonUnavailable(f"Triton-ORT skipped: no libtritonserver-*.so in {libs}")
    ort_libs = sorted((Path(onnxruntime.__file__).parent / "capi").glob("libonnxruntime.so.*"))
    if not ort_libs:
        raise TritonUnavailable("Triton-ORT skipped: this onnxruntime wheel has no libonnxruntime.so.*")
    directory = work / "triton" / "backends" / "onnxruntime"
    directory.mkdir(parents=True, exist_ok=True)
    for name, target in (
        ("libtriton_onnxruntime.so", backend),
        ("libtritonserver.so", found[0]),
        ("libonnxruntime.so.1", ort_libs[0]),
    ):
        (directory / name).symlink_to(target)
    return directory.parent


def _tensor_config(name: str, ort_type: str, shape: list) -> str:
    if ort_type not in TRITON_TYPES:
        raise ValueError(f"model tensor {name!r}: type {ort_type} has no Triton data type here")
    dims = ", ".join(str(d) if isinstance(d, int) else "-1" for d in shape)
    return f'  {{ name: "{name}" data_type: {TRITON_TYPES[ort_type]} dims: [ {dims} ] }}'


def model_config(model_path: Path, name: str = MODEL_NAME) -> str:
    """Triton's ``config.pbtxt`` for ``model_path``, every input and output read from the graph itself.

    No batching by Triton (``max_batch_size: 0``: the graph's own dynamic first dimension carries
    the rows), one CPU instance, ORT on one intra-op and one inter-op thread, sequential execution.
    """
    session = onnxruntime.InferenceSession(str(model_path), providers=["CPUExecutionProvider"])
    inputs = ",\n".join(_tensor_config(t.name, t.type, t.shape) for t in session.get_inputs())
    outputs = ",\n".join(_tensor_config(t.name, t.type, t.shape) for t in session.get_outputs())
    params = {"intra_op_thread_count": "1", "inter_op_thread_count": "1", "execution_mode": "0"}
    parameters = "\n".join(
        f'parameters {{ key: "{k}" value: {{ string_value: "{v}" }} }}' for k, v in params.items()
    )
    return (
        f'name: "{name}"\nbackend: "onnxruntime"\nmax_batch_size: 0\n'
        f"input [\n{inputs}\n]\noutput [\n{outputs}\n]\n"
        f"instance_group [ {{ kind: KIND_CPU count: 1 }} ]\n{parameters}\n"
    )


def model_repository(work: Path, model_path: Path) -> Path:
    """``<work>/triton/models/churn/{config.pbtxt, 1/model.onnx}`` (the model file linked, not copied)."""
    repository = work / "triton" / "models"
    version = repository / MODEL_NAME / "1"
    version.mkdir(parents=True)
    (version / "model.onnx").symlink_to(Path(model_path).resolve())
    (repository / MODEL_NAME / "config.pbtxt").write_text(model_config(model_path))
    return repository


def start_triton(model_path: Path, work: Path) -> tuple[ServerProcess, int]:
    """Triton with the ONNX Runtime backend serving ``model_path`` as ``churn`` on a loopback port."""
    backend = find_backend(triton_home())
    tritonserver = ensure_tritonserver()
    backends = backend_directory(work, backend, tritonserver)
    repository = model_repository(work, model_path)
    port = free_port()
    server = ServerProcess("Triton-ORT", work / "triton.log")
    server.launch(
        [str(tritonserver), f"--model-repository={repository}", f"--backend-directory={backends}",
         "--disable-auto-complete-config", "--strict-readiness=true", "--log-verbose=0",
         "--http-address=127.0.0.1", f"--http-port={port}",
         "--grpc-address=127.0.0.1", f"--grpc-port={free_port()}",
         "--metrics-address=127.0.0.1", f"--metrics-port={free_port()}"],
        lambda: http_ok(f"http://127.0.0.1:{port}/v2/models/{MODEL_NAME}/ready"), timeout=90, cwd=work,
    )  # fmt: skip
    return server, port
