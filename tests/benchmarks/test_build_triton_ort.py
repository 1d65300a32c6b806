"""benchmarks/build_triton_ort.py without compiling: what it refuses and how it says so, the one patch.

The build itself (a few minutes of C++) is run by hand (benchmarks/README.md); the suite checks the
parts that decide whether it starts and with what.
"""

from __future__ import annotations

import shutil

import pytest

from benchmarks import build_triton_ort as build


def test_a_missing_checkout_is_named(tmp_path):
    for name in ("common", "core", "backend"):
        (tmp_path / "src" / name).mkdir(parents=True)
        (tmp_path / "src" / name / "CMakeLists.txt").write_text("")
    with pytest.raises(
        build.Missing, match=r"--sources .*: no onnxruntime_backend checkout \(a CMakeLists.txt\)"
    ):
        build.sources(tmp_path / "src", tmp_path / "home")
    (tmp_path / "src" / "onnxruntime_backend").mkdir()
    (tmp_path / "src" / "onnxruntime_backend" / "CMakeLists.txt").write_text("")
    found = build.sources(tmp_path / "src", tmp_path / "home")
    assert found == {name: tmp_path / "src" / name for name in build.REPOSITORIES}


def test_given_ort_headers_must_hold_the_c_api_header(tmp_path):
    with pytest.raises(build.Missing, match=r"no onnxruntime_c_api\.h there"):
        build.ort_include(tmp_path, tmp_path / "home")
    (tmp_path / "onnxruntime_c_api.h").write_text("#define ORT_API_VERSION 29\n")
    assert build.ort_include(tmp_path, tmp_path / "home") == tmp_path


def test_a_missing_tool_is_named_with_how_to_get_it(monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda tool: None if tool == "cmake" else f"/usr/bin/{tool}")
    with pytest.raises(build.Missing, match=r"cmake is not on PATH: install cmake >= 3.18"):
        build.check_tools()


def test_commons_network_bound_tests_are_dropped_once(tmp_path):
    listing = tmp_path / "src" / "CMakeLists.txt"
    listing.parent.mkdir()
    listing.write_text("add_library(x)\nadd_subdirectory(test)\n")
    build.without_common_tests(tmp_path)
    build.without_common_tests(tmp_path)
    assert listing.read_text() == "add_library(x)\n# add_subdirectory(test)\n"


def test_the_library_folder_links_this_wheels_onnxruntime(tmp_path):
    folder = build.ort_library_dir(tmp_path)
    link = folder / "libonnxruntime.so"
    assert link.is_symlink() and link.resolve().name.startswith("libonnxruntime.so.")
    assert build.ort_library_dir(tmp_path) == folder  # a second run replaces the link
