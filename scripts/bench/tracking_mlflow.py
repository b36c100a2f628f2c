"""MLflow's Python client logging metric points to the server of MLFLOW_TRACKING_URI: the Python side
of scripts/bench-tracking.sh, beside `fairlab bench tracking`. Prints one JSON object.

- log_batch: R runs on R threads (one MlflowClient each), each logging N points with
  `MlflowClient.log_batch` in chunks of 1000 (MLflow's limit per request). The clients, runs and
  Metric objects are made before timing; the time runs from the first call until every thread's
  last call returned (log_batch is synchronous: its points are then stored).
- log_metric_async (--async-points M > 0): one run logging M points with
  `mlflow.log_metric(..., synchronous=False)`, one call per point, as a training loop would: every
  call timed, and the time until `mlflow.flush_async_logging()` returns.

The points are those of `fairlab bench tracking`: point i has key KEYS[i % 4], step i and value
1 / (1 + i). Every run is read back afterwards and must hold all its points.
"""

import argparse
import contextlib
import json
import math
import os
import sys
import threading
import time

KEYS = ["loss", "accuracy", "lr", "grad_norm"]
BATCH = 1000


def value(i):
    return 1.0 / (1.0 + i)


def call_cost(ns):
    """Median, 99th percentile and maximum of call durations in ns, in microseconds (nearest rank)."""
    ns = sorted(ns)
    at = lambda q: ns[min(len(ns), max(1, math.ceil(q * len(ns)))) - 1] / 1e3
    return {"median": at(0.5), "p99": at(0.99), "max": at(1.0)}


def check(client, run_id, points):
    stored = sum(len(client.get_metric_history(run_id, key)) for key in KEYS)
    if stored != points:
        sys.exit(f"tracking_mlflow.py: run {run_id} holds {stored} points, {points} were logged")


def log_batch_side(experiment_id, points, runs):
    from mlflow import MlflowClient
    from mlflow.entities import Metric

    clients = [MlflowClient() for _ in range(runs)]
    run_ids = [
        c.create_run(experiment_id, run_name=f"python-log-batch-{r}",
                     tags={"fairlab.bench": "tracking/python-log-batch"}).info.run_id
        for r, c in enumerate(clients)
    ]
    timestamp = int(time.time() * 1000)
    chunks = [
        [Metric(KEYS[i % len(KEYS)], value(i), timestamp, i) for i in range(start, min(start + BATCH, points))]
        for start in range(0, points, BATCH)
    ]
    start_together = threading.Barrier(runs + 1)
    errors = []

    def log(client, run_id):
        start_together.wait()
        try:
            for chunk in chunks:
                client.log_batch(run_id, metrics=chunk)
        except Exception as e:  # reported below, after every thread ended
            errors.append(e)

    threads = [threading.Thread(target=log, args=(c, r)) for c, r in zip(clients, run_ids)]
    for t in threads:
        t.start()
    start_together.wait()
    started = time.perf_counter()
    for t in threads:
        t.join()
    wall = time.perf_counter() - started
    if errors:
        raise errors[0]
    for c, run_id in zip(clients, run_ids):
        check(c, run_id, points)
        c.set_terminated(run_id)
    return {"points_per_s": runs * points / wall, "wall_s": wall}


def log_metric_async_side(experiment_id, points):
    import mlflow

    mlflow.set_experiment(experiment_id=experiment_id)
    with mlflow.start_run(run_name="python-log-metric-async",
                          tags={"fairlab.bench": "tracking/python-log-metric-async"}) as run:
        calls = []
        started = time.perf_counter()
        for i in range(points):
            t = time.perf_counter_ns()
            mlflow.log_metric(KEYS[i % len(KEYS)], value(i), step=i, synchronous=False)
            calls.append(time.perf_counter_ns() - t)
        mlflow.flush_async_logging()
        wall = time.perf_counter() - started
    check(mlflow.MlflowClient(), run.info.run_id, points)
    return {
        "points": points,
        "points_per_s": points / wall,
        "wall_s": wall,
        "call_us": call_cost(calls),
        "buffering_seconds": os.environ.get("MLFLOW_ASYNC_LOGGING_BUFFERING_SECONDS"),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--points", type=int, default=10_000, help="points per run (log_batch)")
    parser.add_argument("--runs", type=int, default=1, help="runs logging at once (log_batch)")
    parser.add_argument("--async-points", type=int, default=0,
                        help="points for per-point log_metric(synchronous=False); 0 skips it")
    parser.add_argument("--experiment", default="fairlab-bench-tracking")
    args = parser.parse_args()
    if not os.environ.get("MLFLOW_TRACKING_URI", "").startswith(("http://", "https://")):
        sys.exit("tracking_mlflow.py: set MLFLOW_TRACKING_URI to the server (http://HOST:PORT)")

    # MLflow prints "View run ..." lines on stdout; the JSON goes there alone.
    with contextlib.redirect_stdout(sys.stderr):
        import mlflow
        from mlflow import MlflowClient

        client = MlflowClient()
        experiment = client.get_experiment_by_name(args.experiment)
        experiment_id = experiment.experiment_id if experiment else client.create_experiment(args.experiment)
        result = {
            "side": "python",
            "mlflow_version": mlflow.__version__,
            "runs": args.runs,
            "points_per_run": args.points,
            "log_batch": log_batch_side(experiment_id, args.points, args.runs),
        }
        if args.async_points > 0:
            result["log_metric_async"] = log_metric_async_side(experiment_id, args.async_points)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
