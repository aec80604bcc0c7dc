"""What every widget shares: the error line, background work, and a fallback for static frontends.

Private to :mod:`localml_kit.widgets`; the widgets are the public surface.

Example:
    >>> error_html("no model at x<y>")
    "<span class='localml-error' style='color:#b00020'><b>Error:</b> no model at x&lt;y&gt;</span>"
"""

from __future__ import annotations

import html
import threading
from collections.abc import Callable, Iterable, Mapping
from typing import Any

__all__ = ["Background", "Fallback", "dims_text", "error_html", "show_error"]

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


def error_html(message: object) -> str:
    """The message, escaped, as the red ``localml-error`` line every widget shows."""
    return (
        "<span class='localml-error' style='color:#b00020'>"
        f"<b>Error:</b> {html.escape(str(message))}</span>"
    )


def show_error(pane: Any, message: object) -> None:
    """Show ``message`` (text or an exception) as the error line in an HTML widget."""
    pane.value = error_html(message)


def dims_text(dims: Mapping[str, int] | str, notes: Iterable[str] = ()) -> str:
    """The dims chosen for a model's inputs, then the notes on them (plain text; escape it to show).

    Example:
        >>> dims_text({"batch": 1, "seq": 128}, ["seq capped at 128"])
        'batch=1, seq=128 (seq capped at 128)'
    """
    text = dims if isinstance(dims, str) else ", ".join(f"{k}={v}" for k, v in dims.items())
    said = "; ".join(n for n in notes if n)
    return f"{text} ({said})" if text and said else text or said


class Background:
    """One piece of work at a time in a daemon thread, with a stop flag and the exception it raised.

    The work reports back itself (it sets widget values); an exception it lets
    through is kept on ``.exception`` and raised again in the thread, so
    Python's thread hook still prints it.

    Example:
        >>> work = Background()
        >>> work.start(sum, [1, 2])
        True
        >>> work.join(5), work.busy, work.exception
        (True, False, None)
    """

    def __init__(self) -> None:
        self.stop_event = threading.Event()
        self.exception: BaseException | None = None
        self._thread: threading.Thread | None = None

    @property
    def busy(self) -> bool:
        """Whether the work is running."""
        return self._thread is not None and self._thread.is_alive()

    def start(self, target: Callable[..., object], *args: Any) -> bool:
        """Run ``target(*args)`` in a daemon thread; False (and nothing started) while busy."""
        if self.busy:
            return False
        self.stop_event.clear()
        self.exception = None
        self._thread = threading.Thread(target=self._run, args=(target, args), daemon=True)
        self._thread.start()
        return True

    def _run(self, target: Callable[..., object], args: tuple[Any, ...]) -> None:
        try:
            target(*args)
        except BaseException as exc:
            self.exception = exc
            raise

    def stop(self) -> None:
        """Ask the work to stop (it reads ``stop_event``)."""
        self.stop_event.set()

    def join(self, timeout: float | None = None) -> bool:
        """Wait up to ``timeout`` seconds for the work; True when none is running."""
        if self._thread is not None:
            self._thread.join(timeout)
        return not self.busy


class Fallback:
    """Mixin for a widget: its display also carries ``text/plain`` and ``text/html`` summaries.

    Frontends that run widgets show the widget view (JupyterLab ranks it first);
    those that do not (VS Code reopening a saved notebook, nbconvert without widget
    state, GitHub, a terminal) show the summary instead. A widget defines
    ``_fallback_text`` (one line on its ``.result``, for ``text/plain``) and
    ``_fallback_panes``: the names of its HTML widgets (their values are escaped
    already) that make up the ``text/html`` entry; the line stands in while those
    are empty. In a kernel the widget is displayed with a display id, and each
    change of a pane updates that display's summary, so the saved notebook holds
    the last result, not the state at display time.
    """

    _fallback_panes: tuple[str, ...] = ()

    def _fallback_text(self) -> str:
        raise NotImplementedError

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any]:
        data: dict[str, Any] = dict(super()._repr_mimebundle_(**kwargs))  # type: ignore[misc]
        title = type(self).__name__
        text = self._fallback_text()
        panes = "".join(str(getattr(self, name).value) for name in self._fallback_panes)
        data["text/plain"] = f"{title}: {text}"
        body = panes or f"<p>{html.escape(text)}</p>"
        data["text/html"] = f"<div class='localml-fallback'><p><b>{title}</b></p>{body}</div>"
        return data

    def _ipython_display_(self) -> None:
        from IPython import get_ipython
        from IPython.display import display

        bundle = self._repr_mimebundle_()
        if getattr(get_ipython(), "kernel", None) is None:  # a terminal: nothing to update later
            display(bundle, raw=True)
            return
        handle = display(bundle, raw=True, display_id=True)
        state = self.__dict__.setdefault("_fallback_displays", [])
        state.append([handle, bundle])
        if len(state) == 1:
            for name in self._fallback_panes:
                getattr(self, name).observe(self._update_fallback, names="value")

    def _update_fallback(self, change: object = None) -> None:
        """Send the summary again to every display of this widget whose summary changed."""
        bundle = self._repr_mimebundle_()
        for entry in self.__dict__.get("_fallback_displays", []):
            handle, sent = entry
            if {k: sent.get(k) for k in ("text/plain", "text/html")} != {
                k: bundle[k] for k in ("text/plain", "text/html")
            }:
                handle.update(bundle, raw=True)
                entry[1] = bundle
