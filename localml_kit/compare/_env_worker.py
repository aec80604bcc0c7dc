"""Run an ONNX model in another Python environment: ``python _env_worker.py JOB.json``.

A standalone script (standard library, numpy and onnxruntime only), because it
runs inside provider environments (e.g. one with onnxruntime-openvino) where
localml_kit is not installed. The job names the model, the provider, an npz of
inputs (keys ``"<feed index>/<input name>"``) and where to write the outputs
(same key scheme) plus a small JSON record (output names, providers used).
"""

from __future__ import annotations

import json
import sys


def main(job_path: str) -> int:
    import numpy as np
    import onnxruntime as ort

    with open(job_path) as fh:
        job = json.load(fh)
    so = ort.SessionOptions()
    so.log_severity_level = 3
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    if job.get("threads"):
        so.intra_op_num_threads = int(job["threads"])
    providers = [(job["provider"], job.get("provider_options") or {})]
    if job["provider"] != "CPUExecutionProvider":
        providers.append(("CPUExecutionProvider", {}))
    session = ort.InferenceSession(job["model"], so, providers=providers)
    data = np.load(job["inputs"])
    feeds: dict[int, dict] = {}
    for key in data.files:
        index, _, name = key.partition("/")
        feeds.setdefault(int(index), {})[name] = data[key]
    names = [o.name for o in session.get_outputs()]
    out: dict = {}
    for index in sorted(feeds):
        for name, value in zip(names, session.run(names, feeds[index]), strict=True):
            out[f"{index}/{name}"] = np.asarray(value)
    np.savez(job["outputs"], **out)
    record = {
        "outputs": names,
        "providers": session.get_providers(),
        "onnxruntime": ort.__version__,
    }
    with open(job["record"], "w") as fh:
        json.dump(record, fh)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
