"""Readable numbers in the notebooks' tables: units by column name, the data left as it is."""

from __future__ import annotations

import pandas as pd

from localml_kit.tables import formats, styled


def test_each_kind_of_column_gets_its_unit() -> None:
    frame = pd.DataFrame(
        {
            "id": ["a", "b"],
            "p50_ms": [2.853421, 10.0],
            "load_s": [0.41237, 1.5],
            "peak_mb": [812.77, 90.2],
            "size_bytes": pd.array([585_500, None], dtype="Int64"),
            "parameters": pd.array([22_713_216, None], dtype="Int64"),
            "agreement": [0.9213, 1.0],
            "cosine": [0.999912345, 0.5],
            "tokens_per_s": [223.71, 1.0],
            "score": [0.123456789, 2.0],
            "local": [True, False],
        }
    )
    shown = {name: [f(v) for v in frame[name]] for name, f in formats(frame).items()}
    assert shown == {
        "p50_ms": ["2.85", "10.00"],
        "load_s": ["0.41", "1.50"],
        "peak_mb": ["813", "90"],
        "size_bytes": ["585.5 KB", "-"],
        "parameters": ["22,713,216", "-"],
        "agreement": ["92.1%", "100.0%"],
        "cosine": ["0.9999", "0.5000"],
        "tokens_per_s": ["223.7", "1.0"],
        "score": ["0.1235", "2"],
    }
    html = styled(frame).to_html()
    assert "585.5 KB" in html and "812.77" not in html and "22713216" not in html
    assert frame.loc[0, "peak_mb"] == 812.77  # the data keeps its precision


def test_sizes_step_through_the_units_and_labels_need_not_be_strings() -> None:
    frame = pd.DataFrame({"bytes": [999, 1_500, 90_400_000, 3_200_000_000], 0: [1, 2, 3, 4]})
    chosen = formats(frame)
    assert [chosen["bytes"](v) for v in frame["bytes"]] == ["999 B", "1.5 KB", "90.4 MB", "3.2 GB"]
    assert chosen[0](1234) == "1,234"
    assert "1.5 KB" in styled(frame).to_html()
