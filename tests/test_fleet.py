"""Profiling on a Dask cluster: a real scheduler and two real worker processes on 127.0.0.1."""

from __future__ import annotations

import itertools
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import distributed
import psutil
import pytest

from localml_kit import errors, profile
from localml_kit.cli import main
from localml_kit.profile import _fleet
from tests.test_profile import FAST, dense_model

TWO = {
    "a": {"resources": {"CPU": 1}, "threads": 2},
    "b": {"resources": {"CPU": 1, "OPENVINO": 1}, "threads": 2},
}


@pytest.fixture
def cluster() -> Iterator[Any]:
    """Two worker processes, ``a`` (CPU) and ``b`` (CPU and OpenVINO), two Dask threads each."""
    made = profile.local_cluster(TWO)
    try:
        yield made
    finally:
        made.close()


@pytest.fixture
def model(tmp_path: Path) -> Path:
    return dense_model(tmp_path / "dense.onnx", width=16)


def test_two_configurations_on_all_machines_give_four_rows_on_two_workers(
    model: Path, tmp_path: Path
) -> None:
    # A plain Dask LocalCluster: its workers advertise nothing, so they serve the CPU provider.
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None
    ) as plain:
        plan = profile.Plan(model, threads=[1], batches=[1, 4], **FAST)
        result = profile.run(plan, cluster=plain.scheduler_address, machines="all", progress=False)
        pids = distributed.Client(plain).run(os.getpid)
    table = result.table
    assert len(table) == 4
    assert (table["status"] == "ok").all(), table[["label", "machine", "error"]]
    assert table["worker"].nunique() == 2 and set(table["worker"]) == set(pids)
    assert sorted(table.groupby("machine").size()) == [2, 2]
    assert (table["p50_ms"] > 0).all()
    # Each machine's hardware report is in the result, and the summary has the machine column.
    assert set(result.machines) == set(table["machine"])
    for report in result.machines.values():
        assert report["logical_cores"] >= 1 and "CPUExecutionProvider" in report["providers"]
        assert report["address"] in pids
    assert result.summary().columns[:2].tolist() == ["label", "machine"]
    # The same path with the same bytes exists on the workers: they used it, nothing was sent.
    assert set(table["model_path"]) == {str(model)}
    assert (
        result.plan["cluster"].startswith("tcp://127.0.0.1:") and len(result.plan["machines"]) == 2
    )
    again = profile.ProfileResult.from_json(result.to_json())
    assert (
        again.machines == result.machines
        and again.table["machine"].tolist() == table["machine"].tolist()
    )


def test_no_two_configurations_overlap_on_one_worker(model: Path) -> None:
    # Each worker has two Dask threads and gets two configurations at once: on b the scheduler
    # keeps them apart (b advertises CPU=1), on a (which advertises nothing) only the worker's lock.
    workers = {"a": {"resources": {}, "threads": 2}, "b": {"resources": {"CPU": 1}, "threads": 2}}
    plan = profile.Plan(model, threads=[1], batches=[1, 2, 4, 8], **{**FAST, "min_seconds": 0.3})
    cluster = profile.local_cluster(workers)
    try:
        result = profile.run(plan, cluster=cluster, progress=False)
    finally:
        cluster.close()
    table = result.table
    assert len(table) == 8 and (table["status"] == "ok").all()
    for _machine, rows in table.groupby("machine"):
        spans = sorted(zip(rows["started_at"], rows["ended_at"], strict=True))
        assert len(spans) == 4
        for (_, end), (start, _) in itertools.pairwise(spans):
            assert start >= end
    # The two machines did run at the same time: the plan is spread, not queued on one.
    a = table[table["machine"] == "a"]
    b = table[table["machine"] == "b"]
    assert (
        a["started_at"].min() < b["ended_at"].max() and b["started_at"].min() < a["ended_at"].max()
    )


def test_a_configuration_goes_only_where_its_provider_is_advertised(
    cluster: Any, model: Path
) -> None:
    client = distributed.Client(cluster)
    try:
        plan = profile.Plan(model, providers=["cpu", "openvino"], threads=[1], batches=[1], **FAST)
        with distributed.get_task_stream(client) as stream:
            result = profile.run(plan, cluster=client, progress=False)
        ran = {(t["key"], t["worker"]) for t in stream.data}
        addresses = {m["address"]: name for name, m in profile.machines(client).items()}
    finally:
        client.close()
    table = result.table.set_index(["provider", "machine"])
    assert table.loc[("CPUExecutionProvider", "a"), "status"] == "ok"
    assert table.loc[("CPUExecutionProvider", "b"), "status"] == "ok"
    on_a = table.loc[("OpenVINOExecutionProvider", "a")]
    assert on_a["status"] == "unavailable" and "does not advertise OPENVINO" in on_a["error"]
    assert on_a["worker"] == ""
    # b advertises OpenVINO, so it got the configuration; its fresh kit home has no OpenVINO
    # environment, and the row says how to make one there.
    on_b = table.loc[("OpenVINOExecutionProvider", "b")]
    assert on_b["worker"] != "" and on_b["status"] == "unavailable"
    assert (
        "localml-kit envs create openvino" in on_b["error"] and "create_envs=True" in on_b["error"]
    )
    # What the scheduler ran: one OpenVINO task, on b; the CPU tasks on both.
    tasks = {(key.split("-c")[-1], addresses[worker]) for key, worker in ran}
    assert tasks == {("0-a", "a"), ("0-b", "b"), ("1-b", "b")}


def _measuring_children(pid: int) -> list[int]:
    try:
        kids = psutil.Process(pid).children(recursive=True)
        return [c.pid for c in kids if "_worker.py" in " ".join(c.cmdline())]
    except psutil.Error:
        return []


def test_a_worker_killed_mid_configuration_gives_a_lost_row_and_the_rest_complete(
    cluster: Any, model: Path
) -> None:
    client = distributed.Client(cluster)
    try:
        pids = client.run(os.getpid)
        names = {m["address"]: n for n, m in profile.machines(client).items()}
        victim = next(pid for addr, pid in pids.items() if names[addr] == "b")
        killed: list[float] = []
        measuring: list[int] = []

        def kill_b_while_it_measures() -> None:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and not measuring:
                measuring.extend(_measuring_children(victim))
                time.sleep(0.05)
            os.kill(victim, signal.SIGKILL)
            killed.append(time.time())

        killer = threading.Thread(target=kill_b_while_it_measures)
        killer.start()
        plan = profile.Plan(model, threads=[1], batches=[1, 2, 4], **{**FAST, "min_seconds": 1.0})
        result = profile.run(plan, cluster=client, progress=False)
        killer.join()
    finally:
        client.close()
    table = result.table
    assert killed and len(table) == 6
    lost = table[table["status"] == "lost"]
    assert len(lost) == 1 and lost.iloc[0]["machine"] == "b"
    assert "left the cluster during this configuration" in lost.iloc[0]["error"]
    rest = table[table["status"] != "lost"]
    assert (rest["status"] == "ok").all(), rest[["label", "machine", "status", "error"]]
    # The nanny restarted b under a new address, and b's remaining configurations ran there.
    on_b = rest[rest["machine"] == "b"]
    assert len(on_b) == 2 and lost.iloc[0]["worker"] not in set(on_b["worker"])
    # The killed worker's measuring process died with it.
    assert measuring and not any(_alive(p) for p in [victim, *measuring])


def test_an_unreachable_cluster_is_a_clear_error_within_seconds(model: Path) -> None:
    plan = profile.Plan(model, threads=[1], **FAST)
    started = time.monotonic()
    with pytest.raises(
        errors.ClusterError,
        match=r"cannot reach the Dask scheduler at tcp://127\.0\.0\.1:9 within 2 s",
    ):
        profile.run(plan, cluster="tcp://127.0.0.1:9", connect_timeout_s=2, progress=False)
    assert time.monotonic() - started < 6
    with pytest.raises(errors.ConfigError, match="not a scheduler address"):
        profile.run(plan, cluster="tcp://no-port", progress=False)


def test_unknown_machines_are_named_with_the_ones_there(cluster: Any, model: Path) -> None:
    plan = profile.Plan(model, threads=[1], **FAST)
    with pytest.raises(
        errors.ConfigError, match=r"machines \['c'\] are not in the cluster; it has a, b"
    ):
        profile.run(plan, cluster=cluster, machines=["a", "c"], progress=False)
    only_b = profile.run(plan, cluster=cluster, machines=["b"], progress=False)
    assert only_b.table["machine"].tolist() == ["b"] and only_b.table["status"].tolist() == ["ok"]


def test_model_files_are_sent_once_per_worker_and_cached_by_sha256(
    cluster: Any, model: Path, tmp_path: Path
) -> None:
    client = distributed.Client(cluster)
    try:
        spec = _fleet._model_spec(profile.Plan(model).models["dense.onnx"])
        elsewhere = {**spec, "path": str(tmp_path / "only-on-the-client" / "dense.onnx")}
        first = client.run(_fleet._on_worker_probe, {"m": elsewhere})
        assert all(p["models"]["m"] is None for p in first.values())  # not there: send it
        blobs = {"dense.onnx": model.read_bytes()}
        kept = client.run(_fleet._on_worker_receive, elsewhere, blobs)
        for path in kept.values():
            assert (
                Path(path).parent.name == spec["sha256"]
                and Path(path).read_bytes() == blobs["dense.onnx"]
            )
        second = client.run(_fleet._on_worker_probe, {"m": elsewhere})
        assert {p["models"]["m"] for p in second.values()} == set(kept.values())
        same = client.run(_fleet._on_worker_probe, {"m": spec})
        assert {p["models"]["m"] for p in same.values()} == {str(model)}
        bad = client.run(
            _fleet._on_worker_receive,
            {**elsewhere, "sha256": "0" * 64},
            {"dense.onnx": b"not the model"},
            on_error="return",
        )
        assert all(isinstance(e, errors.ChecksumError) for e in bad.values())
    finally:
        client.close()


def test_cli_profile_on_a_cluster(cluster: Any, model: Path, tmp_path: Path, capsys: Any) -> None:
    out = tmp_path / "fleet.json"
    code = main(
        [
            "profile",
            str(model),
            "--cluster",
            cluster.scheduler_address,
            "--machines",
            "all",
            "--threads",
            "1",
            "--min-seconds",
            "0",
            "--min-iterations",
            "3",
            "--warmup",
            "1",
            "--quiet",
            "--json",
            str(out),
        ]
    )
    text = capsys.readouterr().out
    assert code == 0, text
    assert "machine a (tcp://127.0.0.1:" in text and "machine b (tcp://127.0.0.1:" in text
    header = next(line for line in text.splitlines() if line.lstrip().startswith("label"))
    assert header.split()[:3] == ["label", "machine", "status"]
    saved = profile.ProfileResult.from_json(out)
    assert sorted(saved.table["machine"]) == ["a", "b"]
    code = main(["profile", str(model), "--cluster", "tcp://127.0.0.1:9", "--connect-timeout", "1"])
    err = capsys.readouterr().err
    assert code == 2 and "cannot reach the Dask scheduler at tcp://127.0.0.1:9" in err


def test_profiler_panel_runs_on_a_cluster(cluster: Any, model: Path) -> None:
    from localml_kit.widgets import ProfilerPanel

    panel = ProfilerPanel(str(model), threads=[1], min_seconds=0, min_iterations=3, warmup=1)
    panel.providers["OpenVINOExecutionProvider"].value = False
    panel.cluster.value = cluster.scheduler_address
    panel.run_button.click()
    result = panel.wait(120)
    assert result is not None and panel.error is None
    assert sorted(result.table["machine"]) == ["a", "b"] and (result.table["status"] == "ok").all()
    assert panel.plots.titles[-1] == "Machines"  # a run on a cluster adds the Machines tab
    assert panel.plots.children[-1].value[:4] == b"\x89PNG"
    assert " on a: ok" in panel._fallback_text() and " on b: ok" in panel._fallback_text()
    fig = result.plot_machines()
    assert [ax.get_title() for ax in fig.axes] == ["Latency on a", "Latency on b"]
    import matplotlib.pyplot as plt

    plt.close(fig)


def test_stop_ends_the_configuration_running_on_the_worker(cluster: Any, model: Path) -> None:
    stop = threading.Event()
    plan = profile.Plan(model, threads=[1], batches=[1, 2, 4], **{**FAST, "min_seconds": 20.0})

    stopper = threading.Timer(3.0, stop.set)  # the first configurations are 20 s long
    stopper.start()
    started = time.monotonic()
    try:
        result = profile.run(plan, cluster=cluster, stop=stop, progress=False)
    finally:
        stopper.cancel()
    assert time.monotonic() - started < 15
    assert set(result.table["status"]) == {"stopped"} and len(result.table) == 6
    running = result.table[result.table["error"].str.startswith("stopped by the user during")]
    assert sorted(running["machine"]) == ["a", "b"]  # each worker killed the one it measured


def test_cluster_flags_need_a_cluster(model: Path, capsys: Any) -> None:
    assert main(["profile", str(model), "--machines", "a"]) == 2
    assert "--machines and --create-envs need --cluster" in capsys.readouterr().err


def _unshare_works() -> bool:
    import shutil
    import subprocess

    if shutil.which("unshare") is None:
        return False
    probe = subprocess.run(["unshare", "-m", "true"], capture_output=True, check=False)
    return probe.returncode == 0


@pytest.mark.skipif(
    not _unshare_works(),
    reason="needs `unshare -m` (a mount namespace) to give a worker its own view of the disk",
)
def test_a_worker_without_the_model_file_gets_it_once(tmp_path: Path) -> None:
    from localml_kit import _proc

    # The model lives in a folder this worker cannot see (a tmpfs mounted over it in the
    # worker's own mount namespace), as on another machine; `dask worker` is the real command.
    hidden = tmp_path / "client-only"
    hidden.mkdir()
    model = dense_model(hidden / "dense.onnx", width=16)
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1]))
    script = (
        'mount -t tmpfs none "$1" && exec "$0" -m distributed.cli.dask_worker "$2" '
        "--name far --nthreads 1 --host 127.0.0.1 --no-dashboard --no-nanny --resources CPU=1"
    )
    with distributed.LocalCluster(
        n_workers=0, processes=True, host="127.0.0.1", dashboard_address=None
    ) as scheduler:
        worker = _proc.start(
            [
                "unshare",
                "-m",
                "sh",
                "-c",
                script,
                sys.executable,
                str(hidden),
                scheduler.scheduler_address,
            ],
            what="a dask worker in its own mount namespace",
            env=env,
        )
        try:
            with distributed.Client(scheduler) as client:
                client.wait_for_workers(1, timeout=60)
                sees = client.run(lambda: (hidden / "dense.onnx").exists())
            assert list(sees.values()) == [False]
            plan = profile.Plan(model, threads=[1], batches=[1, 2], **FAST)
            first = profile.run(plan, cluster=scheduler, progress=False)
            sha = _fleet._model_spec(plan.models["dense.onnx"])["sha256"]
            kept = Path(os.environ["LOCALML_HOME"]) / "fleet" / "models" / sha / "dense.onnx"
            written = kept.stat().st_mtime_ns
            second = profile.run(plan, cluster=scheduler, progress=False)
        finally:
            _proc.kill(worker)
    for result in (first, second):
        assert (result.table["status"] == "ok").all(), result.table[["label", "error"]]
        assert set(result.table["model_path"]) == {str(kept)}
    assert kept.read_bytes() == model.read_bytes()
    # Sent once: the second run found it in the worker's cache (the file was not written again).
    assert kept.stat().st_mtime_ns == written


def test_a_missing_provider_environment_is_created_on_the_worker_on_demand(
    tmp_path: Path, model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.pkgindex import serve_index
    from tests.test_samples import make_wheel

    # A local package index with a stand-in for the OpenVINO recipe's packages: an
    # `onnxruntime-openvino` whose onnxruntime offers OpenVINO (and runs nothing), and empty
    # numpy and psutil. The recipe itself, pip and the venv are the real ones.
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    fake_ort = (
        '__version__ = "1.24.1+stand-in"\n'
        "def get_available_providers():\n"
        '    return ["OpenVINOExecutionProvider", "CPUExecutionProvider"]\n'
    )
    make_wheel(
        wheels, "onnxruntime-openvino", "1.24.1", {"onnxruntime/__init__.py": fake_ort.encode()}
    )
    make_wheel(wheels, "numpy", "99.0", {"numpy/__init__.py": b""})
    make_wheel(wheels, "psutil", "99.0", {"psutil/__init__.py": b""})
    monkeypatch.setenv("PIP_CONFIG_FILE", "/dev/null")
    monkeypatch.delenv("PIP_FIND_LINKS", raising=False)
    monkeypatch.delenv("PIP_EXTRA_INDEX_URL", raising=False)
    with serve_index(wheels) as (url, requests):
        monkeypatch.setenv("LOCALML_PIP_INDEX_URL", url)  # the workers inherit it
        cluster = profile.local_cluster({"ov": {"resources": {"CPU": 1, "OPENVINO": 1}}})
        try:
            plan = profile.Plan(model, providers=["openvino"], threads=[1], **FAST)
            missing = profile.run(plan, cluster=cluster, progress=False).table.iloc[0]
            created = profile.run(plan, cluster=cluster, create_envs=True, progress=False)
        finally:
            cluster.close()
    assert missing["status"] == "unavailable" and "envs create openvino" in missing["error"]
    row = created.table.iloc[0]
    # The worker made the environment and ran the configuration with its Python; the stand-in
    # onnxruntime cannot make a session, and the row says so.
    env_python = Path(os.environ["LOCALML_HOME"]) / "envs" / "openvino" / "bin" / "python"
    assert row["environment"] == "openvino" and row["python"] == str(env_python)
    assert row["status"] in {"error", "crashed", "load-failed"} and row["machine"] == "ov"
    assert any("onnxruntime-openvino" in r for r in requests)


def test_the_kits_local_cluster_dies_with_the_process_that_started_it() -> None:
    from localml_kit import _proc

    code = (
        "import os, sys, time\n"
        "import distributed\n"
        "from localml_kit import profile\n"
        "if __name__ == '__main__':\n"
        "    cluster = profile.local_cluster(2)\n"
        "    with distributed.Client(cluster) as client:\n"
        "        pids = client.run(os.getpid)\n"
        "    print(' '.join(str(p) for p in pids.values()), flush=True)\n"
        "    time.sleep(600)\n"
    )
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1]))
    import subprocess

    parent = _proc.start(
        [sys.executable, "-c", code],
        what="a kernel with a cluster",
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert parent.stdout is not None
        line = parent.stdout.readline()
        workers = [int(p) for p in line.split()]
        assert len(workers) == 2 and all(psutil.pid_exists(p) for p in workers)
        os.kill(parent.pid, signal.SIGKILL)  # as a kernel killed from outside
        parent.wait(timeout=10)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and any(_alive(p) for p in workers):
            time.sleep(0.1)
        assert not any(_alive(p) for p in workers)
    finally:
        _proc.kill(parent)


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def test_a_machine_that_does_not_come_back_gives_lost_rows_for_the_rest(
    model: Path,
) -> None:
    from localml_kit import _proc

    # A plain `dask worker --no-nanny`: nothing restarts it once it is killed.
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1]))
    with distributed.LocalCluster(
        n_workers=0, processes=True, host="127.0.0.1", dashboard_address=None
    ) as scheduler:
        worker = _proc.start(
            [
                sys.executable,
                "-m",
                "distributed.cli.dask_worker",
                scheduler.scheduler_address,
                "--name",
                "once",
                "--nthreads",
                "1",
                "--host",
                "127.0.0.1",
                "--no-dashboard",
                "--no-nanny",
            ],
            what="a dask worker",
            env=env,
        )
        try:
            with distributed.Client(scheduler) as client:
                client.wait_for_workers(1, timeout=60)
            killer = threading.Thread(
                target=lambda: (
                    _wait_for(lambda: bool(_measuring_children(worker.pid))),
                    os.kill(worker.pid, signal.SIGKILL),
                )
            )
            killer.start()
            plan = profile.Plan(
                model, threads=[1], batches=[1, 2, 4], **{**FAST, "min_seconds": 2.0}
            )
            started = time.monotonic()
            result = _fleet.run(plan, scheduler, progress=False, rejoin_s=2.0)
            killer.join()
        finally:
            _proc.kill(worker)
    table = result.table
    assert table["status"].tolist() == ["lost", "lost", "lost"]
    assert "during this configuration" in table.iloc[0]["error"]
    assert all("did not come back within 2 s" in e for e in table["error"].iloc[1:])
    assert time.monotonic() - started < 30


def _wait_for(condition: Any, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and not condition():
        time.sleep(0.05)
