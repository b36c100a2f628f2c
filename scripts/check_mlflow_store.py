#!/usr/bin/env python3
"""Read one run of an MLflow file store with the real MLflow client and print a JSON summary.

Usage: check_mlflow_store.py STORE RUN_ID

STORE is a file store's root folder (the `mlruns` folder) or a tracking server's URL
(`http://127.0.0.1:5000`; credentials from MLFLOW_TRACKING_USERNAME/PASSWORD as usual). The summary holds the run's info,
params, tags, latest metrics, the full history of every metric, every artifact (recursively, with
its size and SHA-256 as downloaded through the client), the experiment, the runs the experiment
lists, and any warning MLflow logged while reading. The output is strict JSON: NaN and infinities
are written as the strings "NaN", "Infinity" and "-Infinity", as in MLflow's REST API.

Exits 1 (with the error on stderr) when anything cannot be read, 2 on bad usage.
fairlab's test `framework/tests/mlflow_python_reads_store.rs` runs it against a store the Rust
file store wrote, and against a server the Rust REST store logged to.
"""

import hashlib
import json
import logging
import math
import os
import pathlib
import sys
import tempfile


class WarningRecorder(logging.Handler):
    """Collects every warning or error MLflow logs (e.g. "Malformed run")."""

    def __init__(self):
        super().__init__(level=logging.WARNING)
        self.messages = []

    def emit(self, record):
        self.messages.append(f"{record.name}: {record.getMessage()}")


def encode_float(value):
    """A float as strict JSON: NaN and infinities as MLflow's REST strings."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return value


def list_artifacts(client, run_id, path, download_dir):
    """Every artifact under `path`, depth first, files with their size and SHA-256."""
    entries = []
    for info in client.list_artifacts(run_id, path):
        entry = {"path": info.path, "is_dir": info.is_dir}
        if info.is_dir:
            entries.append(entry)
            entries.extend(list_artifacts(client, run_id, info.path, download_dir))
        else:
            local = client.download_artifacts(run_id, info.path, download_dir)
            data = pathlib.Path(local).read_bytes()
            entry["file_size"] = info.file_size
            entry["sha256"] = hashlib.sha256(data).hexdigest()
            entries.append(entry)
    return entries


def summarize(store, run_id):
    """Read the run through MlflowClient and return the summary dictionary."""
    from mlflow.entities import ViewType
    from mlflow.tracking import MlflowClient

    if store.startswith(("http://", "https://")):
        uri = store
    else:
        uri = pathlib.Path(store).resolve().as_uri()
    client = MlflowClient(tracking_uri=uri)
    run = client.get_run(run_id)
    experiment = client.get_experiment(run.info.experiment_id)
    history = {
        key: [
            {"step": m.step, "timestamp": m.timestamp, "value": encode_float(m.value)}
            for m in client.get_metric_history(run_id, key)
        ]
        for key in sorted(run.data.metrics)
    }
    listed = client.search_runs([experiment.experiment_id], run_view_type=ViewType.ALL)
    with tempfile.TemporaryDirectory() as download_dir:
        artifacts = list_artifacts(client, run_id, None, download_dir)
    return {
        "tracking_uri": uri,
        "run_id": run.info.run_id,
        "run_name": run.info.run_name,
        "status": run.info.status,
        "start_time": run.info.start_time,
        "end_time": run.info.end_time,
        "lifecycle_stage": run.info.lifecycle_stage,
        "artifact_uri": run.info.artifact_uri,
        "user_id": run.info.user_id,
        "experiment": {
            "experiment_id": experiment.experiment_id,
            "name": experiment.name,
            "lifecycle_stage": experiment.lifecycle_stage,
            "artifact_location": experiment.artifact_location,
        },
        "experiment_runs": [{"run_id": r.info.run_id, "status": r.info.status} for r in listed],
        "params": dict(run.data.params),
        "tags": dict(run.data.tags),
        "metrics": {key: encode_float(value) for key, value in run.data.metrics.items()},
        "metric_history": history,
        "artifacts": artifacts,
    }


def main(argv):
    if len(argv) != 3:
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    os.environ["MLFLOW_ALLOW_FILE_STORE"] = "true"
    recorder = WarningRecorder()
    logging.getLogger().addHandler(recorder)
    logging.captureWarnings(True)
    try:
        summary = summarize(argv[1], argv[2])
    except Exception as error:  # any failure to read is the answer this script exists to give
        print(f"error: cannot read run {argv[2]} of {argv[1]}: {type(error).__name__}: {error}",
              file=sys.stderr)
        return 1
    summary["warnings"] = recorder.messages
    print(json.dumps(summary, indent=2, sort_keys=True, allow_nan=False))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
