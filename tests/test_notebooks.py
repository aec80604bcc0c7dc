"""Every notebook under notebooks/ runs top to bottom headless, and follows the house rules."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from tests.conftest import REPO

NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))
ARTIFACTS = REPO / "test-artifacts" / "notebooks"


def test_there_are_notebooks() -> None:
    assert NOTEBOOKS, "notebooks/ is empty"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_is_committed_clean_and_well_formed(path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    assert path.stem[:2].isdigit() and path.stem[2] == "_" and path.stem == path.stem.lower()
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(not c.outputs and c.execution_count is None for c in code), (
        "strip outputs before committing"
    )
    assert len(nb.cells) <= 40, f"{len(nb.cells)} cells; keep notebooks under ~40"
    first = nb.cells[0]
    assert first.cell_type == "markdown" and first.source.startswith("# ")
    assert "**Goal.**" in first.source and "**Prerequisites.**" in first.source
    tail = "\n".join(c.source for c in nb.cells[-2:] if c.cell_type == "markdown")
    assert "## Summary" in tail and "## Exercises" in tail
    for cell in code:
        for line in cell.source.splitlines():
            if line.startswith(("import ", "from ")):
                top = line.split()[1].split(".")[0]
                assert top in {"localml_kit", "numpy", "onnxruntime", "pandas", "matplotlib"}, line


@pytest.mark.notebook
@pytest.mark.samples
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_headless(path: Path, real_home: Path, tmp_path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(
        nb,
        timeout=900,
        kernel_name="python3",
        resources={"metadata": {"path": str(tmp_path)}},
        store_widget_state=True,
    )
    try:
        client.execute()
    finally:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, ARTIFACTS / path.name)
    problems = []
    for index, cell in enumerate(nb.cells):
        for out in cell.get("outputs", []):
            if out.output_type == "error":
                problems.append(f"cell {index}: {out.ename}: {out.evalue}")
            if out.output_type == "stream" and out.name == "stderr" and _is_warning(out.text):
                problems.append(f"cell {index} wrote to stderr: {out.text[:300]}")
    assert not problems, "\n".join(problems)
    counts = [c.execution_count for c in nb.cells if c.cell_type == "code"]
    assert all(isinstance(n, int) for n in counts), "some code cells never ran"


def _is_warning(text: str) -> bool:
    """stderr that is a warning or an error, not a progress bar's redraw."""
    lowered = text.lower()
    return any(word in lowered for word in ("warning", "error", "traceback", "deprecat"))
