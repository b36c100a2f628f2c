#!/usr/bin/env python3
"""The results table of docs/results.md from the runs of scripts/results.sh.

Reads the MLflow file store fairlab writes (MLFLOW_TRACKING_URI, default
target/results/mlruns) with the standard library only: for every FINISHED run of the
`nih1000-methods` experiment, its run name (`<method>-seed<N>`), test metrics and wall time.

  results_table.py METHOD...          print the markdown table (mean +- std over seeds)
  results_table.py --done METHOD SEED exit 0 when that run is already FINISHED
"""
import os
import statistics
import sys
from pathlib import Path

EXPERIMENT = "nih1000-methods"
FINISHED = "3"  # RunStatus.FINISHED in the file store's meta.yaml
COLUMNS = [
    ("AUC", "test_auc"),
    ("ES-AUC", "test_sex_es_auc"),
    ("EO_p", "test_sex_eo_p"),
    ("EO_n", "test_sex_eo_n"),
    ("DPD", "test_sex_dpd"),
    ("DEOdds", "test_sex_deodds"),
    ("worst AUC", "test_sex_worst_auc"),
    ("leakage AUC", "test_leakage_auc_sex"),
    ("SA clf AUC after noise", "dne_sa_test_auc_noised"),
]


def store() -> Path:
    uri = os.environ.get("MLFLOW_TRACKING_URI", "target/results/mlruns")
    return Path(uri.removeprefix("file://").removeprefix("file:"))


def meta(path: Path) -> dict:
    out = {}
    for line in path.read_text().splitlines():
        key, _, value = line.partition(":")
        out[key.strip()] = value.strip().strip('"')
    return out


def last_value(metric_file: Path) -> float:
    """The last logged value (each line: timestamp value step)."""
    return float(metric_file.read_text().split()[-2])


def runs():
    root = store()
    if not root.is_dir():
        return
    for experiment in root.iterdir():
        if not (experiment / "meta.yaml").is_file() or meta(experiment / "meta.yaml").get("name") != EXPERIMENT:
            continue
        for run in experiment.iterdir():
            if not (run / "meta.yaml").is_file():
                continue
            m = meta(run / "meta.yaml")
            if m.get("status") != FINISHED:
                continue
            method, _, seed = m.get("run_name", "").rpartition("-seed")
            metrics = {f.name: last_value(f) for f in (run / "metrics").iterdir()}
            metrics["wall_s"] = (int(m["end_time"]) - int(m["start_time"])) / 1000
            yield method, seed, metrics


def fmt(values: list) -> str:
    if not values:
        return "-"
    mean = statistics.fmean(values)
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{mean:.3f} ± {std:.3f}"


def table(methods: list) -> str:
    by_method = {}
    for method, seed, metrics in runs():
        by_method.setdefault(method, {})[seed] = metrics
    head = ["method", "seeds"] + [c for c, _ in COLUMNS] + ["image queries (noise)", "wall s"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for method in methods:
        seeds = by_method.get(method, {})
        cells = [method, str(len(seeds))]
        for _, key in COLUMNS:
            cells.append(fmt([m[key] for m in seeds.values() if key in m]))
        queries = [m.get("dne_noise_image_queries", 0.0) for m in seeds.values()]
        cells.append(f"{statistics.fmean(queries):,.0f}" if queries else "-")
        walls = [m["wall_s"] for m in seeds.values()]
        cells.append(f"{statistics.fmean(walls):.1f}" if walls else "-")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list) -> int:
    if argv[:1] == ["--done"]:
        method, seed = argv[1], argv[2]
        return 0 if any(m == method and s == seed for m, s, _ in runs()) else 1
    print(table(argv))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
