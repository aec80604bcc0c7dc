"""The runtime stays light: no torch or transformers to run, inspect or profile ONNX models."""

from __future__ import annotations

import subprocess
import sys
import tomllib

from tests.conftest import REPO

# The build stack. (`gguf` is not in it: a 1.4 MB pure-Python reader that `graph` needs at run
# time to summarise GGUF files.)
HEAVY = ("torch", "transformers", "accelerate", "safetensors", "skl2onnx", "scikit-learn")


def _name(requirement: str) -> str:
    for sep in "<>=!~[; ":
        requirement = requirement.split(sep)[0]
    return requirement.lower()


def test_base_dependencies_exclude_the_build_stack() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    base = {_name(r) for r in project["dependencies"]}
    assert not base & set(HEAVY), base & set(HEAVY)
    build = {_name(r) for r in project["optional-dependencies"]["build"]}
    assert {"torch", "transformers", "skl2onnx"} <= build
    assert project["scripts"]["localml-kit"] == "localml_kit.cli:main"


def test_runtime_modules_do_not_import_torch() -> None:
    code = (
        "import sys\n"
        "import localml_kit, localml_kit.cli, localml_kit.hardware, localml_kit.samples\n"
        "from localml_kit.cli import main\n"
        "main(['samples', 'list', '--json'])\n"
        f"heavy = [m for m in {HEAVY!r} if m.replace('-', '_') in sys.modules]\n"
        "sys.stderr.write(repr(heavy))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert proc.stderr.strip() == "[]"


def test_the_wheel_carries_the_graph_widget_bundle(tmp_path) -> None:
    """The built bundle is git-ignored, so only package data puts it in the wheel: check it does."""
    import zipfile

    bundle = REPO / "localml_kit" / "widgets" / "static" / "graph_view.js"
    assert bundle.is_file(), "the graph widget is not built: run `make setup`"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path), str(REPO)],
        check=True,
        timeout=600,
        capture_output=True,
    )
    (wheel,) = tmp_path.glob("localml_kit-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        carried = archive.read("localml_kit/widgets/static/graph_view.js")
    assert carried == bundle.read_bytes()
