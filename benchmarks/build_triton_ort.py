"""Build Triton's ONNX Runtime backend (r24.10, CPU only) against this environment's onnxruntime wheel.

    .venv/bin/python benchmarks/build_triton_ort.py        # clones the sources from GitHub
    .venv/bin/python benchmarks/build_triton_ort.py --sources DIR --ort-include DIR   # offline

The serving benchmark's Triton-ORT baseline (``benchmarks/triton_ort.py``) needs
``libtriton_onnxruntime.so``, which no package ships. This script builds it into
``$CHURN_BENCH_TRITON/backends/onnxruntime/`` (default ``~/.cache/churn-bench/triton``), outside
the repository, where ``benchmarks/serving.py`` looks for it; nothing is installed system-wide. It
compiles for a few minutes on two cores, its output going to ``<home>/build.log``.

What it needs, each checked first (a missing one is one line saying how to get it, exit 2):
cmake >= 3.18, a C++17 compiler, make, RapidJSON's headers (Debian: ``apt-get install
rapidjson-dev``), and either network access to GitHub or the sources given: ``--sources DIR`` with
Triton's ``common``, ``core``, ``backend`` and ``onnxruntime_backend`` repositories checked out at
``r24.10`` as ``DIR/<name>``, and ``--ort-include DIR`` holding ONNX Runtime's C API header
``onnxruntime_c_api.h`` and the headers it includes, of an API version this wheel's library
serves (by default downloaded from the onnxruntime repository at this wheel's version tag).

Exit codes: 0 built (or already built: ``--force`` rebuilds), 1 the build failed (the end of its
log is printed, then one ``error:`` line), 2 a tool or a source is missing (one ``error:`` line).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import urllib.request
from pathlib import Path

import onnxruntime

# Appended, not put first: under pytest, tests/ comes first on the path and its packages
# (tests/serving) must keep shadowing the project's own (serving) there.
if str(Path(__file__).resolve().parents[1]) not in sys.path:
    sys.path.append(str(Path(__file__).resolve().parents[1]))

from benchmarks.triton_ort import BACKEND_FILE, triton_home

BRANCH = "r24.10"  # the Triton release of pytriton 0.7.0's tritonserver 2.51
REPOSITORIES = ("common", "core", "backend", "onnxruntime_backend")
GITHUB = "https://github.com/triton-inference-server/{name}.git"
ORT_HEADERS = (
    "https://raw.githubusercontent.com/microsoft/onnxruntime/v{version}/include/onnxruntime/core/session/"
)
C_API_HEADER = "onnxruntime_c_api.h"
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.MULTILINE)
API_VERSION = re.compile(r"^#define ORT_API_VERSION (\d+)", re.MULTILINE)


class Missing(RuntimeError):
    """A tool or a source the build needs is not here; the message says how to get it."""


def check_tools() -> None:
    """cmake >= 3.18, make, a C++ compiler and RapidJSON's headers, or :class:`Missing`."""
    for tool, hint in (("cmake", "cmake >= 3.18"), ("make", "make"), ("c++", "a C++17 compiler (g++)")):
        if shutil.which(tool) is None:
            raise Missing(f"{tool} is not on PATH: install {hint} (Debian: apt-get install cmake g++ make)")
    version = subprocess.run(["cmake", "--version"], capture_output=True, text=True).stdout
    found = re.search(r"(\d+)\.(\d+)", version)
    if found is None or (int(found[1]), int(found[2])) < (3, 18):
        raise Missing(f"cmake >= 3.18 is needed, found {version.splitlines()[0] if version else 'none'}")
    if not any(Path(d, "rapidjson", "document.h").is_file() for d in ("/usr/include", "/usr/local/include")):
        raise Missing("RapidJSON's headers are missing: apt-get install rapidjson-dev")


def sources(given: Path | None, home: Path) -> dict[str, Path]:
    """Each repository's checkout: under ``given``, else cloned at :data:`BRANCH` into ``home/src``."""
    found = {}
    for name in REPOSITORIES:
        if given is not None:
            found[name] = given / name
            if not (found[name] / "CMakeLists.txt").is_file():
                raise Missing(f"--sources {given}: no {name} checkout (a CMakeLists.txt) at {found[name]}")
            continue
        found[name] = home / "src" / name
        if not (found[name] / "CMakeLists.txt").is_file():
            if shutil.which("git") is None:
                raise Missing("git is not on PATH (needed to clone the sources; or pass --sources)")
            print(f"cloning {name} ({BRANCH}) ...", flush=True)
            shutil.rmtree(found[name], ignore_errors=True)
            done = subprocess.run(
                ["git", "clone", "-q", "--depth", "1", "--branch", BRANCH, GITHUB.format(name=name),
                 str(found[name])], capture_output=True, text=True,
            )  # fmt: skip
            if done.returncode != 0:
                raise Missing(f"cloning {GITHUB.format(name=name)} failed: {done.stderr.strip()[-300:]}")
    return found


def ort_include(given: Path | None, home: Path) -> Path:
    """A folder with ``onnxruntime_c_api.h`` and the headers it includes (downloaded when not given)."""
    if given is not None:
        if not (given / C_API_HEADER).is_file():
            raise Missing(f"--ort-include {given}: no {C_API_HEADER} there")
        return given
    folder = home / f"onnxruntime-{onnxruntime.__version__}-include"
    base = ORT_HEADERS.format(version=onnxruntime.__version__)
    wanted, seen = [C_API_HEADER], set()
    while wanted:
        name = wanted.pop()
        if name in seen:
            continue
        seen.add(name)
        target = folder / name
        if not target.is_file():
            folder.mkdir(parents=True, exist_ok=True)
            try:
                with urllib.request.urlopen(base + name, timeout=30) as answer:
                    target.write_bytes(answer.read())
            except OSError as exc:
                raise Missing(f"downloading {base + name} failed ({exc}); pass --ort-include") from exc
        wanted += [n for n in INCLUDE.findall(target.read_text()) if (n not in seen)]
    return folder


def ort_library_dir(home: Path) -> Path:
    """A folder where cmake's ``find_library(onnxruntime)`` finds this wheel's ``libonnxruntime.so``."""
    libraries = sorted((Path(onnxruntime.__file__).parent / "capi").glob("libonnxruntime.so.*"))
    if not libraries:
        raise Missing("this onnxruntime wheel has no capi/libonnxruntime.so.*")
    folder = home / f"onnxruntime-{onnxruntime.__version__}-lib"
    folder.mkdir(parents=True, exist_ok=True)
    link = folder / "libonnxruntime.so"
    if link.is_symlink() or link.exists():
        link.unlink()
    link.symlink_to(libraries[0])
    return folder


def without_common_tests(common: Path) -> None:
    """Drop common's ``add_subdirectory(test)``: its googletest download needs the network."""
    listing = common / "src" / "CMakeLists.txt"
    text = listing.read_text()
    patched = re.sub(
        r"^(\s*)add_subdirectory\(test\)", r"\1# add_subdirectory(test)", text, flags=re.MULTILINE
    )
    if patched != text:
        listing.write_text(patched)


def build(repos: dict[str, Path], include: Path, library: Path, home: Path, jobs: int) -> Path:
    """Configure and compile the backend in ``home/build``; the built library."""
    without_common_tests(repos["common"])
    work, log = home / "build", home / "build.log"
    options = [
        "-DCMAKE_BUILD_TYPE=Release", "-DTRITON_ENABLE_GPU=OFF", "-DTRITON_ENABLE_STATS=ON",
        "-DTRITON_ENABLE_ONNXRUNTIME_TENSORRT=OFF", "-DTRITON_ENABLE_ONNXRUNTIME_OPENVINO=OFF",
        f"-DTRITON_ONNXRUNTIME_INCLUDE_PATHS={include}", f"-DTRITON_ONNXRUNTIME_LIB_PATHS={library}",
        "-DFETCHCONTENT_FULLY_DISCONNECTED=ON",
        *(f"-DFETCHCONTENT_SOURCE_DIR_REPO-{n.upper()}={repos[n]}" for n in ("common", "core", "backend")),
    ]  # fmt: skip
    with open(log, "w") as out:
        for step in (
            ["cmake", "-S", str(repos["onnxruntime_backend"]), "-B", str(work), *options],
            ["cmake", "--build", str(work), "--parallel", str(jobs)],
        ):
            print(f"{step[0]} {step[1]} ... (output: {log})", flush=True)
            out.write(f"$ {' '.join(step)}\n")
            out.flush()
            if subprocess.run(step, stdout=out, stderr=subprocess.STDOUT).returncode != 0:
                print("\n".join(log.read_text().strip().splitlines()[-15:]), file=sys.stderr)
                raise RuntimeError(
                    f"{step[0]} {step[1]} failed: the end of its output is above, all of it in {log}"
                )
    built = sorted(work.rglob("libtriton_onnxruntime.so"))
    if not built:
        raise RuntimeError(f"the build finished without a libtriton_onnxruntime.so under {work}")
    return built[0]


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--home", type=Path, default=triton_home(), help="where the backend goes")
    parser.add_argument("--sources", type=Path, help=f"folder of the four repositories at {BRANCH}")
    parser.add_argument("--ort-include", type=Path, help=f"folder holding {C_API_HEADER} and its includes")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="parallel compile jobs")
    parser.add_argument("--force", action="store_true", help="rebuild even if the backend is there")
    args = parser.parse_args()
    target = args.home / BACKEND_FILE
    if target.is_file() and not args.force:
        print(f"already built: {target} (--force rebuilds)")
        return 0
    try:
        check_tools()
        args.home.mkdir(parents=True, exist_ok=True)
        repos = sources(args.sources, args.home)
        include = ort_include(args.ort_include, args.home)
        api = API_VERSION.search((include / C_API_HEADER).read_text())
        print(f"ONNX Runtime {onnxruntime.__version__}'s library, C API headers of API "
              f"{api[1] if api else '?'} from {include}", flush=True)  # fmt: skip
        built = build(repos, include, ort_library_dir(args.home), args.home, args.jobs)
    except Missing as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except RuntimeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(built, target)
    print(f"built {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
