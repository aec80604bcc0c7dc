"""ChatPanel: chat with a local language model; the reply streams in, Stop ends it."""

from __future__ import annotations

import html
import os

import ipywidgets as widgets

from localml_kit import errors, slm
from localml_kit.widgets._util import Background, Fallback, show_error

__all__ = ["ChatPanel"]


class ChatPanel(Fallback, widgets.VBox):
    """A prompt box, the reply streaming in, Stop, sampling controls and a stats line.

    Generation runs in a background thread so that Stop (and the rest of the
    notebook) stays responsive. ``.result`` holds the last ``slm.Reply``;
    ``.chat`` the ``slm.Chat`` with its history; ``wait()`` blocks until the
    reply being generated is done.

    Example:
        >>> from localml_kit.widgets import ChatPanel
        >>> panel = ChatPanel("smollm2-135m-instruct", threads=2)
        >>> panel.prompt.value = "What is an SLM?"
        >>> panel.max_tokens.value = 16
        >>> panel.send_button.click()  # generates in a background thread
        >>> reply = panel.wait()  # the Reply, once it is done
        >>> reply is panel.result, panel.result.new_tokens, panel.result.finish_reason
        (True, 16, 'length')
        >>> panel.result.text == panel.chat.history[-1]["content"]
        True
    """

    _fallback_panes = ("transcript", "stats")

    def __init__(
        self,
        model: str | os.PathLike[str] = "smollm2-135m-instruct",
        *,
        threads: int | None = None,
        chat: slm.Chat | None = None,
    ) -> None:
        self.chat = chat or slm.Chat(model, threads=threads)
        # A chat that already has a history (turns sent from code) starts the transcript.
        said = any(m["role"] == "assistant" for m in self.chat.history)
        self.result: slm.Reply | None = self.chat.last if said else None
        self._task = Background()
        self.transcript = widgets.HTML(
            "".join(
                f"<p><b>{'You' if m['role'] == 'user' else 'Model'}</b>: "
                f"{html.escape(m['content'])}</p>"
                for m in self.chat.history
                if m["role"] in {"user", "assistant"}
            ),
            layout=widgets.Layout(max_height="360px", overflow="auto"),
        )
        # The reply as plain text (kept for code and tests); people read it in ``live``, under
        # the transcript, as it streams.
        self.reply = widgets.Textarea(disabled=True, layout=widgets.Layout(display="none"))
        self.live = widgets.HTML()
        self.prompt = widgets.Textarea(
            placeholder="Ask something ...",
            # Stretched by the column rather than 100% wide: 100% plus the widget's margin
            # ran a few pixels past the panel's border.
            layout=widgets.Layout(width="auto", align_self="stretch", height="60px"),
        )
        self.send_button = widgets.Button(
            description="Send", button_style="primary", icon="paper-plane"
        )
        self.stop_button = widgets.Button(description="Stop", icon="stop", disabled=True)
        self.reset_button = widgets.Button(description="New chat", icon="refresh")
        self.max_tokens = widgets.IntSlider(
            128,
            min=8,
            max=1024,
            step=8,
            description="max tokens",
            style={"description_width": "initial"},
        )
        wide = {"description_width": "initial"}
        self.greedy = widgets.Checkbox(
            True,
            description="greedy (no sampling)",
            indent=False,
            style=wide,
            layout=widgets.Layout(width="auto", margin="0 16px 0 0"),
        )
        self.temperature = widgets.FloatSlider(
            0.7, min=0.05, max=2.0, step=0.05, description="temperature", style=wide
        )
        self.top_p = widgets.FloatSlider(
            0.9, min=0.05, max=1.0, step=0.05, description="top-p", style=wide
        )
        self.top_k = widgets.IntSlider(50, min=1, max=200, description="top-k", style=wide)
        self.stats = widgets.HTML(
            html.escape(self.result.stats_line()) if self.result is not None else ""
        )
        self.send_button.on_click(lambda _: self.send())
        self.stop_button.on_click(lambda _: self.chat.stop())
        self.reset_button.on_click(lambda _: self._reset())
        self.greedy.observe(lambda _: self._sync_sampling(), names="value")
        self._sync_sampling()
        sampling = widgets.HBox(
            [self.greedy, self.temperature, self.top_p, self.top_k],
            layout=widgets.Layout(flex_flow="row wrap", align_items="center"),
        )
        super().__init__(
            [
                widgets.HTML(f"<b>Model</b>: {html.escape(str(self.chat.path))}"),
                self.transcript,
                self.live,
                self.reply,
                self.prompt,
                widgets.HBox(
                    [self.send_button, self.stop_button, self.reset_button, self.max_tokens]
                ),
                sampling,
                self.stats,
            ]
        )
        self.add_class("localml-chat-panel")

    def _sync_sampling(self) -> None:
        for control in (self.temperature, self.top_p, self.top_k):
            control.disabled = self.greedy.value

    def _reset(self) -> None:
        self.chat.reset()
        self.transcript.value = ""
        self.live.value = ""
        self.reply.value = ""
        self.stats.value = ""

    @property
    def busy(self) -> bool:
        """Whether a reply is being generated."""
        return self._task.busy

    def send(self, prompt: str | None = None) -> None:
        """Start a reply to ``prompt`` (default: the prompt box) in the background."""
        text = self.prompt.value if prompt is None else prompt
        if self.busy:
            return
        self.send_button.disabled = True
        self.stop_button.disabled = False
        self.reply.value = ""
        self._task.start(self._generate, text)

    def wait(self, timeout: float | None = None) -> slm.Reply | None:
        """Block until the current reply is done; returns it."""
        self._task.join(timeout)
        return self.result

    def _fallback_text(self) -> str:
        last = self.result.stats_line() if self.result is not None else "no reply yet"
        return f"{self.chat.path}: {last}"

    def _generate(self, text: str) -> None:
        options = {
            "max_new_tokens": self.max_tokens.value,
            "greedy": self.greedy.value,
            "temperature": self.temperature.value,
            "top_p": self.top_p.value,
            "top_k": self.top_k.value,
        }
        try:
            shown = ""
            asked = f"<p><b>You</b>: {html.escape(text)}</p>"
            for piece in self.chat.stream(text, **options):
                shown += piece
                self.reply.value = shown
                self.live.value = f"{asked}<p><b>Model</b>: {html.escape(shown)}</p>"
            self.live.value = ""
            self.result = self.chat.last
            self.prompt.value = ""
            if self.result is not None:
                self.stats.value = html.escape(self.result.stats_line())
                self.transcript.value += (
                    f"<p><b>You</b>: {html.escape(text)}</p>"
                    f"<p><b>Model</b>: {html.escape(self.result.text)}</p>"
                )
        except errors.LocalMLError as exc:
            show_error(self.stats, exc)
        finally:
            self.live.value = ""
            self.send_button.disabled = False
            self.stop_button.disabled = True
