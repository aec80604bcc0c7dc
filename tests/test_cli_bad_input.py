"""Every bad input ends in one ``error:`` line and exit status 2: never a traceback or a hang."""

from __future__ import annotations

from pathlib import Path

import pytest

from localml_kit import optimize
from localml_kit.cli import main
from tests.cli_cases import CASES, argv_for, make_files


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    return make_files(tmp_path)


@pytest.mark.parametrize(("argv", "needle"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_is_one_error_line(
    argv: list[str], needle: str, files: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(argv_for(argv, files))
    err = capsys.readouterr().err
    assert code == 2, err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err and needle in lines[0], err
    if argv[0] == "optimize":  # nothing written: no variant in the kit's folder or next to -o
        assert not optimize.variants_dir().exists() or not any(optimize.variants_dir().iterdir())
