"""The widgets' shared helpers: the error line, background work, and the fallback for static frontends."""

from __future__ import annotations

import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import ipywidgets as widgets
import pytest

from localml_kit import errors
from localml_kit.widgets import ChatPanel, GraphViewer, OutputComparator, ProfilerPanel, ZooBrowser
from localml_kit.widgets._util import WIDGET_VIEW, Background, dims_text, error_html, show_error
from tests.test_graph import XSS, save, tiny_model
from tests.test_profile import dense_model
from tests.test_zoo_browser import CARDS

IMG = "<img src=x onerror=alert(1)>"


def bundle(widget: widgets.Widget) -> dict[str, Any]:
    """What IPython sends to the frontend when the widget is the cell's value."""
    data = widget._repr_mimebundle_()
    assert data[WIDGET_VIEW]["model_id"] == widget.model_id
    return data


def test_error_html_escapes() -> None:
    page = error_html(XSS)
    assert page.startswith("<span class='localml-error'") and "<b>Error:</b>" in page
    assert "<img" not in page and "<script>" not in page and "&lt;script&gt;" in page
    pane = widgets.HTML()
    show_error(pane, errors.ConfigError(IMG))
    assert pane.value == error_html(IMG)


def test_dims_text() -> None:
    assert dims_text({"batch": 2, "seq": 16}) == "batch=2, seq=16"
    assert dims_text("batch=1", ["", "seq capped"]) == "batch=1 (seq capped)"
    assert dims_text({}, ["only a note"]) == "only a note" and dims_text("") == ""


def test_background_runs_once_at_a_time_and_stops() -> None:
    work = Background()
    started = threading.Event()

    def until_stopped(tag: str) -> None:
        started.set()
        assert work.stop_event.wait(30), tag

    assert work.join() and not work.busy
    assert work.start(until_stopped, "first")
    assert started.wait(30) and work.busy
    assert not work.start(until_stopped, "second")  # busy: nothing started
    assert not work.join(0.05)
    work.stop()
    assert work.join(30) and not work.busy and work.exception is None
    assert work.start(until_stopped, "again") and not work.stop_event.is_set()  # cleared
    work.stop()
    assert work.join(30)


def test_background_keeps_the_exception_and_still_reports_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    reported: list[Any] = []
    monkeypatch.setattr(threading, "excepthook", reported.append)
    work = Background()

    def fail() -> None:
        raise RuntimeError("boom")

    work.start(fail)
    assert work.join(30)
    assert isinstance(work.exception, RuntimeError) and str(work.exception) == "boom"
    assert [r.exc_value for r in reported] == [work.exception]


# ---- every widget carries a text fallback ------------------------------------------------------


class FakeReply:
    def __init__(self, text: str) -> None:
        self.text = text
        self.finish_reason = "length"

    def stats_line(self) -> str:
        return "3 tokens, 42.0 tok/s"


class FakeChat:
    """Enough of slm.Chat for ChatPanel: streams a reply in pieces, or fails."""

    path = Path("fake-model")

    def __init__(self, fail: bool = False, history: list[dict[str, str]] | None = None) -> None:
        self.fail = fail
        self.history = history or []
        self.last: FakeReply | None = FakeReply(self.history[-1]["content"]) if history else None

    def stream(self, prompt: str, **options: Any) -> Iterator[str]:
        if self.fail:
            raise errors.ConfigError(f"cannot chat: {IMG}")
        yield from ("Hello", " there", f" {IMG}")
        self.last = FakeReply(f"Hello there {IMG}")

    def reset(self) -> None:
        self.last = None

    def stop(self) -> None:
        pass


def test_chat_panel_background_and_fallback() -> None:
    panel = ChatPanel(chat=FakeChat())  # type: ignore[arg-type]
    assert bundle(panel)["text/plain"] == "ChatPanel: fake-model: no reply yet"
    panel.prompt.value = "Hi"
    panel.send_button.click()
    reply = panel.wait(30)
    assert reply is not None and panel.result is reply and not panel.busy
    assert panel.reply.value == reply.text and not panel.send_button.disabled
    data = bundle(panel)
    assert data["text/plain"] == "ChatPanel: fake-model: 3 tokens, 42.0 tok/s"
    assert "localml-fallback" in data["text/html"] and "<img" not in data["text/html"]
    assert "&lt;img" in data["text/html"] and "tok/s" in data["text/html"]

    # A chat with turns sent from code: the panel starts with that transcript and stats.
    turns = [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "Hi <b>"},
        {"role": "assistant", "content": "Hello"},
    ]
    earlier = ChatPanel(chat=FakeChat(history=turns))  # type: ignore[arg-type]
    assert earlier.result is not None and "tok/s" in earlier.stats.value
    assert earlier.transcript.value == "<p><b>You</b>: Hi &lt;b&gt;</p><p><b>Model</b>: Hello</p>"
    assert "Hi &lt;b&gt;" in bundle(earlier)["text/html"]

    failing = ChatPanel(chat=FakeChat(fail=True))  # type: ignore[arg-type]
    failing.send("Hi")
    assert failing.wait(30) is None
    assert "localml-error" in failing.stats.value and "&lt;img" in failing.stats.value
    assert failing.stop_button.disabled and not failing.send_button.disabled


def test_graph_viewer_fallback(tmp_path: Path) -> None:
    viewer = GraphViewer(netron=False)
    assert bundle(viewer)["text/plain"] == "GraphViewer: no model open"
    viewer.load(save(tiny_model(xss=True), tmp_path / "tiny.onnx"))
    data = bundle(viewer)
    assert data["text/plain"].startswith("GraphViewer: tiny.onnx: ONNX, ")
    assert "localml-model-summary" in data["text/html"] and "<script>" not in data["text/html"]
    viewer.load(tmp_path / f"{IMG}.onnx")
    assert viewer.result is None and "<img" not in viewer.status.value
    assert "localml-error" in bundle(viewer)["text/html"]
    viewer.close()


def test_output_comparator_shows_dims_and_fallback(tmp_path: Path) -> None:
    reference = dense_model(tmp_path / f"{IMG}.onnx")
    candidate = shutil.copy(reference, tmp_path / "copy.onnx")
    w = OutputComparator(str(reference), [str(candidate)])
    assert bundle(w)["text/plain"] == "OutputComparator: not compared yet"
    assert w.run() is not None and w.result is not None
    assert w.result.verdicts() == {str(candidate): True}
    assert w.result.dims and "dims: " + dims_text(w.result.dims) in w.status.value
    assert "batch=" in w.status.value
    assert "<img" not in w.status.value and "&lt;img" in w.status.value
    data = bundle(w)
    assert data["text/plain"].startswith(f"OutputComparator: reference {IMG}.onnx; ")
    assert f"{candidate} PASS; dims: batch=" in data["text/plain"]
    assert "PASS" in data["text/html"] and "<img" not in data["text/html"]


def test_profiler_panel_fallback_before_a_run(tmp_path: Path) -> None:
    panel = ProfilerPanel(dense_model(tmp_path / "dense.onnx"))
    data = bundle(panel)
    assert data["text/plain"] == "ProfilerPanel: not run yet"
    assert data["text/html"] == (
        "<div class='localml-fallback'><p><b>ProfilerPanel</b></p><p>not run yet</p></div>"
    )


def test_zoo_browser_fallback() -> None:
    browser = ZooBrowser(cards=CARDS, netron=False)
    data = bundle(browser)
    assert data["text/plain"] == "ZooBrowser: 4 models match; selected giant/too-big"
    assert "localml-zoo-card" in data["text/html"] and "4 of 4 models shown" in data["text/html"]
    browser.query.value = "no such model"
    assert bundle(browser)["text/plain"] == "ZooBrowser: 0 models match; none selected"
    browser.close()
