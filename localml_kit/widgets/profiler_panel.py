"""ProfilerPanel: choose a model, providers, threads and batch sizes; run, stop, read the results."""

from __future__ import annotations

import html
import io
import os
from collections.abc import Sequence
from typing import Any

import ipywidgets as widgets
import psutil
from matplotlib.figure import Figure

from localml_kit import errors, models, profile
from localml_kit.profile import Plan, ProfileResult
from localml_kit.widgets._util import Background, Fallback, dims_text, show_error

__all__ = ["ProfilerPanel"]

PLOTS = ("Latency", "Operators", "Memory", "Machines")
# The providers offered as checkboxes; the rest of ONNX Runtime's list stays in the core.
PANEL_PROVIDERS = (
    "CPUExecutionProvider",
    "OpenVINOExecutionProvider",
    "CUDAExecutionProvider",
    "TensorrtExecutionProvider",
    "DmlExecutionProvider",
    "CoreMLExecutionProvider",
)


def _png(result: ProfileResult, which: str) -> bytes:
    fig = Figure(figsize=(8, 0.4 * max(len(result.table), 2) + 1.6), dpi=90)
    if which == "Machines":  # one latency plot per cluster machine
        result.plot_machines(fig=fig)
    else:
        plot: Any = {
            "Latency": result.plot_latency,
            "Operators": result.plot_operators,
            "Memory": result.plot_memory,
        }[which]
        plot(ax=fig.subplots())
    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight")
    return buf.getvalue()


def _dims_html(result: ProfileResult) -> str:
    """One line per model: the dims chosen for its inputs (one per batch size) and the notes."""
    lines = []
    for model, rows in result.table.groupby("model", sort=False):
        dims = dict.fromkeys(str(d) for d in rows["dims"].dropna() if d)
        notes = dict.fromkeys(str(n) for n in rows["input_notes"].dropna() if n)
        text = dims_text(" | ".join(dims), notes)
        if text:
            lines.append(f"<b>{html.escape(str(model))}</b>: {html.escape(text)}")
    if not lines:
        return ""
    return f"<p class='localml-dims'>Inputs: {'; '.join(lines)}</p>"


class ProfilerPanel(Fallback, widgets.VBox):
    """Profile a model per provider, threads and batch size from a form; ``.result`` is the last run.

    Each configuration runs in its own process, in a background thread, so
    Stop works while it runs. Unavailable providers are marked on their
    checkbox; ticking one anyway gives an ``unavailable`` row saying why.
    Extra :class:`~localml_kit.profile.Plan` options (``dims``,
    ``optimizations``, ``warmup``...) pass through ``plan_options``. The Cluster
    field (``cluster=``) takes a Dask scheduler's address, ``tcp://HOST:8786``: the
    plan then runs on the Machines named (``all``, or worker names ``a,b``), one row
    per configuration per machine, and the Machines tab plots each machine.

    Example:
        >>> from localml_kit.widgets import ProfilerPanel
        >>> panel = ProfilerPanel("ppocr-v4-cls", threads=[1], min_seconds=0, min_iterations=5,
        ...                       warmup=1)
        >>> panel.providers["OpenVINOExecutionProvider"].value = False  # the CPU provider only
        >>> panel.run_button.click(); panel.wait().summary()[["label", "status"]]
                                     label status
        0  ppocr-v4-cls · cpu · 1t · b1 · all     ok
        >>> panel.result is panel.wait()
        True
    """

    _fallback_panes = ("status", "table")

    def __init__(
        self,
        model: str | os.PathLike[str] | None = None,
        *,
        threads: Sequence[int] | None = None,
        batches: Sequence[int] = (1,),
        min_seconds: float = 1.0,
        min_iterations: int = 20,
        cluster: str | None = None,
        **plan_options: Any,
    ) -> None:
        self.result: ProfileResult | None = None
        self.error: str | None = None
        self._options = plan_options
        self._min_iterations = min_iterations
        self._task = Background()
        choices = profile.model_choices()
        self.model = widgets.Combobox(
            options=choices,
            value=os.fspath(model) if model is not None else (choices[0] if choices else ""),
            placeholder="a sample name or a path to an .onnx file",
            description="Model",
            ensure_option=False,
            layout=widgets.Layout(width="420px"),
        )
        table = profile.providers_table().set_index("provider")
        self.providers: dict[str, widgets.Checkbox] = {}
        for name in PANEL_PROVIDERS:
            here = bool(table.loc[name, "available"]) if name in table.index else False
            package = str(table.loc[name, "package"]) if name in table.index else ""
            where = str(table.loc[name, "environment"]) if here else ""
            note = (
                (f"in env {where}" if where not in ("", "main") else "available")
                if here
                else f"needs {package}"
            )
            self.providers[name] = widgets.Checkbox(
                value=name == "CPUExecutionProvider"
                or (here and name == "OpenVINOExecutionProvider"),
                description=f"{profile.short_name(name)} ({note})",
                indent=False,
                layout=widgets.Layout(width="auto"),
            )
        cores = psutil.cpu_count(logical=True) or 1
        options = sorted({1, 2, 4, 8, 16, cores} & set(range(1, cores + 1))) or [1]
        default = list(threads) if threads else [profile.default_threads()]
        self.threads = widgets.SelectMultiple(
            options=options,
            value=[t for t in default if t in options] or [1],
            description="Threads",
            rows=4,
        )
        batch_options = sorted({1, 2, 4, 8, 16, 32, 64, *batches})
        self.batches = widgets.SelectMultiple(
            options=batch_options, value=list(batches), description="Batch", rows=4
        )
        self.min_seconds = widgets.BoundedFloatText(
            value=min_seconds,
            min=0.0,
            max=120.0,
            step=0.5,
            description="Seconds",
            layout=widgets.Layout(width="180px"),
        )
        self.cluster = widgets.Text(
            value=cluster or "",
            placeholder="empty: this machine; or a Dask scheduler, tcp://HOST:8786",
            description="Cluster",
            layout=widgets.Layout(width="420px"),
        )
        self.machines = widgets.Text(
            value="all",
            placeholder="all, or worker names: a,b",
            description="Machines",
            layout=widgets.Layout(width="260px"),
        )
        self.run_button = widgets.Button(description="Run", button_style="primary", icon="play")
        self.stop_button = widgets.Button(description="Stop", icon="stop", disabled=True)
        self.progress = widgets.IntProgress(value=0, min=0, max=1, description="0/0")
        self.status = widgets.HTML()
        self.table = widgets.HTML()
        self._images = {which: widgets.Image(format="png") for which in PLOTS}
        self.plots = widgets.Tab(
            children=[self._images[which] for which in PLOTS[:-1]],
            titles=PLOTS[:-1],  # the Machines tab joins for a run on a cluster
            layout=widgets.Layout(display="none"),  # no empty (broken) images before a run
        )
        self.run_button.on_click(lambda _: self.start())
        self.stop_button.on_click(lambda _: self.stop())
        super().__init__(
            [
                self.model,
                widgets.HBox(
                    list(self.providers.values()),
                    layout=widgets.Layout(flex_flow="row wrap", grid_gap="4px 16px"),
                ),
                widgets.HBox([self.threads, self.batches, self.min_seconds]),
                widgets.HBox([self.cluster, self.machines]),
                widgets.HBox([self.run_button, self.stop_button, self.progress]),
                self.status,
                self.table,
                self.plots,
            ],
            layout=widgets.Layout(width="100%"),
        )
        self.add_class("localml-profiler-panel")

    def plan(self) -> Plan:
        """The plan the form describes now."""
        chosen = [name for name, box in self.providers.items() if box.value]
        if not chosen:
            raise errors.ConfigError("tick at least one provider.")
        options = {"min_iterations": self._min_iterations, **self._options}
        return Plan(
            [models.resolve(self.model.value)],
            providers=chosen,
            threads=list(self.threads.value),
            batches=list(self.batches.value),
            min_seconds=float(self.min_seconds.value),
            **options,
        )

    def start(self) -> None:
        """Start a run in the background (what the Run button does)."""
        if self._task.busy:
            return
        self.error = None
        try:
            plan = self.plan()
            total = len(plan.configurations())
        except errors.LocalMLError as exc:
            self._fail(exc)
            return
        self.progress.max, self.progress.value, self.progress.description = total, 0, f"0/{total}"
        self.run_button.disabled, self.stop_button.disabled = True, False
        self.status.value = f"<p>Running {total} configurations, each in its own process...</p>"
        self._task.start(self._work, plan)

    def stop(self) -> None:
        """Kill the running configuration and skip the rest (what the Stop button does)."""
        self._task.stop()

    def wait(self, timeout: float | None = None) -> ProfileResult | None:
        """Block until the current run ends; returns ``.result``."""
        self._task.join(timeout)
        return self.result

    def _on_row(self, row: dict[str, Any], done: int, total: int) -> None:
        self.progress.value, self.progress.description = done, f"{done}/{total}"
        where = f" on {row['machine']}" if row.get("machine") else ""
        self.status.value = (
            f"<p>{html.escape(row['label'] + where)}: {html.escape(row['status'])}</p>"
        )

    def _fail(self, exc: BaseException) -> None:
        self.error = str(exc)
        show_error(self.status, exc)

    def _fallback_text(self) -> str:
        if self.error is not None:
            return f"error: {self.error}"
        if self.result is None:
            return "not run yet"
        return "; ".join(
            f"{row.label}{' on ' + str(row.machine) if row.machine else ''}: {row.status}"
            + (f", p50 {row.p50_ms:.2f} ms" if row.status == "ok" else "")
            for row in self.result.table.itertuples()
        )

    def _work(self, plan: Plan) -> None:
        try:
            where = self.cluster.value.strip()
            result = profile.run(
                plan,
                progress=False,
                stop=self._task.stop_event,
                on_result=self._on_row,
                cluster=where or None,
                machines=self.machines.value.strip() or "all",
            )
        except errors.LocalMLError as exc:
            self._fail(exc)
        else:
            self.result = result
            self.table.value = result._repr_html_()
            shown = PLOTS if where else PLOTS[:-1]
            for which in shown:
                self._images[which].value = _png(result, which)
            if len(self.plots.children) != len(shown):
                self.plots.children = [self._images[which] for which in shown]
                self.plots.titles = shown
            self.plots.layout.display = None
            stopped = (result.table["status"] == "stopped").any()
            self.status.value = ("<p>Stopped.</p>" if stopped else "<p>Done.</p>") + _dims_html(
                result
            )
        finally:
            self.run_button.disabled, self.stop_button.disabled = False, True
