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


def test_a_finished_result_is_kept_when_its_file_cannot_be_written(tmp_path: Path) -> None:
    from localml_kit import errors
    from localml_kit.cli._common import write_text

    good = write_text(tmp_path / "out.json", '{"ok": 1}', "--json")
    assert good.read_text() == '{"ok": 1}' and not list(tmp_path.glob(".out.json.*"))
    gone = tmp_path / "removed-during-the-run" / "out.json"  # its folder vanished mid-run
    with pytest.raises(errors.ConfigError, match="the result is kept in") as info:
        write_text(gone, '{"rows": [1, 2, 3]}', "--json")
    kept = Path(str(info.value).rsplit("kept in ", 1)[1].rstrip("."))
    assert kept.read_text() == '{"rows": [1, 2, 3]}'
    kept.unlink()
