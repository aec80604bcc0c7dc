"""Run one notebook top to bottom in a fresh kernel, keep its outputs and widget state.

The workshop build runs this module as a child process for each notebook (so a
hung or crashed kernel costs one notebook, not the build)::

    python -m localml_kit.workshop._execute IN.ipynb OUT.ipynb --cwd DIR --timeout S

It always writes ``OUT.ipynb`` (executed as far as it got) and prints one JSON
line: ``{"status": "ok" | "failed", "error": "...", "cell": N}``.
"""

from __future__ import annotations

import argparse
import json
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m localml_kit.workshop._execute")
    parser.add_argument("source")
    parser.add_argument("dest")
    parser.add_argument("--cwd", required=True)
    parser.add_argument("--timeout", type=float, required=True)
    parser.add_argument("--kernel", default="python3")
    args = parser.parse_args(argv)

    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

    nb = nbformat.read(args.source, as_version=4)
    client = NotebookClient(
        nb,
        timeout=args.timeout,
        kernel_name=args.kernel,
        resources={"metadata": {"path": args.cwd}},
        store_widget_state=True,
    )
    status: dict[str, object] = {"status": "ok", "error": "", "cell": None}
    try:
        client.execute()
    except CellExecutionError as exc:
        status = {"status": "failed", "error": f"{exc.ename}: {exc.evalue}", "cell": _cell(nb)}
    except CellTimeoutError:
        status = {
            "status": "failed",
            "error": f"a cell ran past {args.timeout:g} s and was stopped",
            "cell": _cell(nb),
        }
    except DeadKernelError as exc:
        status = {"status": "failed", "error": f"the kernel died: {exc}", "cell": _cell(nb)}
    finally:
        nbformat.write(nb, args.dest)
    sys.stdout.write(json.dumps(status) + "\n")
    return 0


def _cell(nb: object) -> int | None:
    """The number (from 1) of the last code cell that ran: where the run stopped."""
    ran = [
        i
        for i, cell in enumerate(getattr(nb, "cells", []), start=1)
        if cell.get("cell_type") == "code" and cell.get("execution_count") is not None
    ]
    return ran[-1] if ran else None


if __name__ == "__main__":
    sys.exit(main())
