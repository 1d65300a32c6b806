"""`make` / `make help` list every documented target by name, from every makefile make reads."""

import re
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DOCUMENTED = re.compile(r"^([a-zA-Z0-9_-]+):.*## (.*)$", re.MULTILINE)


def _make(*args: str) -> str:
    done = subprocess.run(["make", "-s", *args], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_help_lists_every_documented_target_of_every_included_makefile(tmp_path):
    extra = tmp_path / "extra.mk"  # stands for an included overlay (MAKEFILE_LIST grows by one)
    extra.write_text("extra-target:  ## a target from an included file\n\t@true\n")
    listed = dict(
        line.split("\t", 1) for line in _make("-f", "Makefile", "-f", str(extra), "help").splitlines()
    )
    expected = dict(DOCUMENTED.findall((REPO / "Makefile").read_text()))
    assert expected.keys() >= {"run", "serve", "test", "help"}
    # every target of every makefile read (platform/*.mk may be included too), names not file names
    assert expected.items() <= listed.items() and listed["extra-target"] == "a target from an included file"
    assert not [name for name in listed if "/" in name or "." in name]


def test_plain_make_prints_the_help():
    assert _make() == _make("help")
    assert any(line.startswith("run\t") for line in _make().splitlines())
