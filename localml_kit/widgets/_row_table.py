"""RowTable: an HTML table whose rows can be clicked, the row index synced back to Python."""

from __future__ import annotations

import anywidget
import traitlets

__all__ = ["RowTable"]

# The table's HTML is built and escaped in Python (as for an ipywidgets HTML); the view
# draws it and reports a click on a body row as that row's index.
_ESM = """
function render({ model, el }) {
  const draw = () => {
    el.innerHTML = model.get("value");
    const selected = model.get("selected");
    el.querySelectorAll("tbody tr").forEach((row, index) => {
      row.classList.toggle("localml-row-selected", index === selected);
      row.title = "click to read its card";
      row.addEventListener("click", () => {
        model.set("selected", index);
        model.save_changes();
      });
    });
  };
  model.on("change:value", draw);
  model.on("change:selected", draw);
  draw();
}
export default { render };
"""

_CSS = """
.localml-row-table tbody tr { cursor: pointer; }
.localml-row-table tbody tr:hover { background: #f0f6ff; }
.localml-row-table tbody tr.localml-row-selected { background: #ddf4ff; font-weight: 600; }
"""


class RowTable(anywidget.AnyWidget):
    """A table (``value``: HTML, escaped by the caller) whose body rows select on click.

    ``selected`` is the clicked (or set) row's index, -1 for none.

    Example:
        >>> table = RowTable(value="<table><tbody><tr><td>a</td></tr></tbody></table>")
        >>> table.selected = 0; table.selected
        0
    """

    _esm = _ESM
    _css = _CSS
    value = traitlets.Unicode("").tag(sync=True)
    selected = traitlets.Int(-1).tag(sync=True)

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)
        self.add_class("localml-row-table")
