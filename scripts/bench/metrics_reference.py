#!/usr/bin/env python3
"""The Python reference of `fairlab metrics`: every key of the metrics contract (docs/metrics.md)
for a predictions CSV, with pandas + scikit-learn + fairlearn + numpy, printed as the contract's
JSON document (the same as `fairlab metrics PREDS.csv --format json`).

Usage: metrics_reference.py PREDS.csv [--mode direct|metricframe] [--group-col COL]...
                            [--threshold T] [--out OUT.json]
       metrics_reference.py --check-fixtures tests/fixtures/metrics

--mode direct (default): pandas.read_csv, then the metric functions called directly on the
    samples of each set (all samples, and each group of each attribute, split with pandas groupby):
    sklearn roc_auc_score, accuracy_score and confusion_matrix, fairlearn selection_rate, numpy for
    BCE and ECE; the per-attribute keys are max/min/sums over the group values, which is what
    fairlearn's demographic_parity_difference / equalized_odds_difference compute (those two are
    not called: each builds a MetricFrame inside, the other mode's cost).
--mode metricframe: pandas.read_csv, then one fairlearn MetricFrame per attribute holding every
    per-set metric (the scores passed as a sample parameter), and the per-attribute keys from
    MetricFrame.difference() / group_min(). fairlearn converts each set's columns element by
    element before calling a metric, so this mode is about as slow per row at any size.

Both modes follow the contract where scikit-learn/fairlearn differ from it: an undefined value (AUC
of a one-class set, TPR without positives, TNR/FPR without negatives) is null, not 0 or NaN, and a
difference over fewer than two defined groups is null; BCE clips at 1e-15 (sklearn's log_loss clips
at float64 eps, so it is computed with numpy). On data where every group has both classes, as the
benchmark's, the fairlearn values are used unchanged. `--check-fixtures DIR` checks both modes
against the golden cases (the contract's expected JSON). The benchmark driver
(scripts/bench-metrics.sh) times this script from outside.
"""
import argparse
import json
import math
import os
import sys

import numpy as np
import pandas as pd
from fairlearn.metrics import MetricFrame, count, selection_rate
from sklearn.metrics import accuracy_score, confusion_matrix, roc_auc_score

SET_KEYS = ["n", "auc", "acc", "tpr", "tnr", "fpr", "selection_rate", "bce", "ece"]
ATTRIBUTE_KEYS = ["es_auc", "es_acc", "dpd", "eo_p", "eo_n", "deodds", "worst_auc", "auc_gap", "acc_gap"]
RESERVED = ("y_true", "y_score", "y_pred")
CLIP = 1e-15


# ---- reading -------------------------------------------------------------------------------------


def read(path, group_cols):
    """(y_true int8, y_score float64, y_pred int8 or None, {attribute: categorical Series})."""
    header = list(pd.read_csv(path, nrows=0).columns)
    for col in ("y_true", "y_score"):
        if col not in header:
            sys.exit(f"error: {path}: no `{col}` column")
    attrs = list(group_cols) if group_cols else [c for c in header if c not in RESERVED]
    for col in attrs:
        if col not in header:
            sys.exit(f"error: {path}: no `{col}` column")
    usecols = ["y_true", "y_score"] + (["y_pred"] if "y_pred" in header else []) + attrs
    dtype = {"y_true": np.int8, "y_score": np.float64, "y_pred": np.int8}
    dtype.update({c: "category" for c in attrs})
    # keep_default_na=False: a group named "NA" or "" is a group, not a missing value.
    df = pd.read_csv(path, usecols=usecols, dtype=dtype, keep_default_na=False)
    y = df["y_true"].to_numpy()
    s = df["y_score"].to_numpy()
    if len(y) == 0:
        sys.exit(f"error: {path}: no data rows")
    if y.min() < 0 or y.max() > 1:
        sys.exit(f"error: {path}: a label is not 0 or 1")
    if not (s.min() >= 0.0 and s.max() <= 1.0):  # false for NaN too
        sys.exit(f"error: {path}: a score is not in [0, 1]")
    p = df["y_pred"].to_numpy() if "y_pred" in df else None
    return y, s, p, {c: df[c] for c in attrs}


# ---- per-set metrics as plain functions (NaN where undefined) ------------------------------------


def auc_score(y_true, y_pred, y_score):
    """ROC AUC; NaN for a one-class set (sklearn warns and returns NaN there too)."""
    positives = int(np.count_nonzero(y_true))
    if positives == 0 or positives == len(y_true):
        return math.nan
    return roc_auc_score(y_true, y_score)


def _confusion(y_true, y_pred):
    return confusion_matrix(y_true, y_pred, labels=[0, 1]).ravel()  # tn, fp, fn, tp


def tpr_score(y_true, y_pred):
    tn, fp, fn, tp = _confusion(y_true, y_pred)
    return tp / (tp + fn) if tp + fn else math.nan


def tnr_score(y_true, y_pred):
    tn, fp, fn, tp = _confusion(y_true, y_pred)
    return tn / (tn + fp) if tn + fp else math.nan


def fpr_score(y_true, y_pred):
    return 1.0 - tnr_score(y_true, y_pred)


def bce_score(y_true, y_pred, y_score):
    """Mean binary cross-entropy, p clipped to [1e-15, 1 - 1e-15] (the contract's clip)."""
    p = np.clip(y_score, CLIP, 1.0 - CLIP)
    return float(-np.mean(np.where(y_true == 1, np.log(p), np.log1p(-p))))


def ece_score(y_true, y_pred, y_score):
    """Expected calibration error over 10 equal-width bins, bin = min(floor(10 s), 9)."""
    bins = np.minimum(np.floor(10.0 * y_score), 9).astype(np.int8)
    n = len(y_score)
    total = 0.0
    for b in range(10):
        mask = bins == b
        n_b = int(np.count_nonzero(mask))
        if n_b:
            # np.sum is pairwise: about log2(n) ulps, like fairlab's compensated sums.
            total += n_b / n * abs(np.sum(y_true[mask], dtype=np.float64) / n_b - np.sum(y_score[mask]) / n_b)
    return total


def set_metrics(y, s, p):
    """Every per-set key of the contract, calling the metric functions directly."""
    tn, fp, fn, tp = (int(v) for v in _confusion(y, p))
    tnr = tn / (tn + fp) if tn + fp else None
    return {
        "n": len(y),
        "auc": none_if_nan(auc_score(y, p, s)),
        "acc": float(accuracy_score(y, p)),
        "tpr": tp / (tp + fn) if tp + fn else None,
        "tnr": tnr,
        "fpr": 1.0 - tnr if tnr is not None else None,
        "selection_rate": float(selection_rate(y, p)),
        "bce": bce_score(y, p, s),
        "ece": ece_score(y, p, s),
    }


# ---- per-attribute keys ---------------------------------------------------------------------------


def none_if_nan(x):
    if x is None:
        return None
    x = float(x)
    return None if math.isnan(x) else x


def gap(values, single_group):
    """max - min over the defined values; 0 for a single-group attribute; null under two."""
    if single_group:
        return 0.0
    defined = [v for v in values if v is not None]
    return max(defined) - min(defined) if len(defined) >= 2 else None


def all_defined(groups, key):
    return all(g[key] is not None for g in groups.values())


def attribute_keys(overall, groups, fairlearn_values):
    """The contract's per-attribute keys from the per-set values. `fairlearn_values` holds the
    values fairlearn computed (dpd, eo_p, eo_n, deodds, worst_auc, auc_gap, acc_gap): used where
    fairlearn agrees with the contract, i.e. where every group's value is defined."""
    single = len(groups) == 1
    col = {k: [g[k] for g in groups.values()] for k in ("auc", "acc", "tpr", "tnr", "fpr", "selection_rate")}
    auc, acc = overall["auc"], overall["acc"]
    es_auc = None
    if auc is not None and all(v is not None for v in col["auc"]):
        es_auc = auc / (1.0 + sum(abs(v - auc) for v in col["auc"]))
    es_acc = acc / (1.0 + sum(abs(v - acc) for v in col["acc"]))

    def pick(key, own):
        value = fairlearn_values.get(key)
        return float(value) if value is not None and not single else own

    ok = {k: all_defined(groups, k) for k in ("auc", "tpr", "tnr")}
    eo_p = pick("eo_p", gap(col["tpr"], single)) if ok["tpr"] else gap(col["tpr"], single)
    eo_n = pick("eo_n", gap(col["tnr"], single)) if ok["tnr"] else gap(col["tnr"], single)
    fpr_gap = gap(col["fpr"], single)
    if ok["tpr"] and ok["tnr"]:
        deodds = pick("deodds", max(eo_p, fpr_gap))
    else:
        deodds = None if eo_p is None or fpr_gap is None else max(eo_p, fpr_gap)
    defined_auc = [v for v in col["auc"] if v is not None]
    if ok["auc"]:
        worst_auc = pick("worst_auc", min(defined_auc))
        auc_gap = pick("auc_gap", gap(col["auc"], single))
    else:
        worst_auc = min(defined_auc) if defined_auc else None
        auc_gap = gap(col["auc"], single)
    return {
        "es_auc": es_auc,
        "es_acc": es_acc,
        "dpd": pick("dpd", gap(col["selection_rate"], single)),
        "eo_p": eo_p,
        "eo_n": eo_n,
        "deodds": deodds,
        "worst_auc": worst_auc,
        "auc_gap": auc_gap,
        "acc_gap": pick("acc_gap", gap(col["acc"], single)),
    }


def warnings_for(overall, attributes):
    out = []

    def check(prefix, m):
        if m["tpr"] is None:
            out.append(f"{prefix} no positive sample; tpr undefined")
        if m["tnr"] is None:
            out.append(f"{prefix} no negative sample; tnr and fpr undefined")

    check("overall: there is", overall)
    for name, attr in attributes.items():
        for g, m in attr["groups"].items():
            check(f"attribute '{name}': group '{g}' has", m)
    return out


# ---- the two modes -----------------------------------------------------------------------------------


def run_direct(y, s, p, attrs):
    overall = set_metrics(y, s, p)
    attributes = {}
    for name, col in attrs.items():
        indices = col.groupby(col, observed=True).indices  # group value -> row positions
        groups = {str(g): set_metrics(y[i], s[i], p[i]) for g, i in sorted(indices.items(), key=lambda kv: str(kv[0]))}
        # fairlearn's demographic_parity_difference and equalized_odds_difference build a
        # MetricFrame inside (the other mode): their definitions are applied to the group values.
        attributes[name] = {"groups": groups, **attribute_keys(overall, groups, {})}
    return overall, attributes


METRICS = {
    "n": count,
    "auc": auc_score,
    "acc": accuracy_score,
    "tpr": tpr_score,
    "tnr": tnr_score,
    "fpr": fpr_score,
    "selection_rate": selection_rate,
    "bce": bce_score,
    "ece": ece_score,
}


def frame_values(row):
    return {k: (int(row[k]) if k == "n" else none_if_nan(row[k])) for k in SET_KEYS}


def run_metricframe(y, s, p, attrs):
    params = {k: {"y_score": s} for k in ("auc", "bce", "ece")}
    overall = None
    attributes = {}
    for name, col in attrs.items():
        mf = MetricFrame(metrics=METRICS, y_true=y, y_pred=p, sensitive_features=col, sample_params=params)
        if overall is None:
            overall = frame_values(mf.overall)
        by_group = mf.by_group
        groups = {str(g): frame_values(by_group.loc[g]) for g in sorted(by_group.index, key=str)}
        diff = mf.difference(method="between_groups")
        fl = {
            "dpd": diff["selection_rate"],
            "eo_p": diff["tpr"],
            "eo_n": diff["tnr"],
            "deodds": max(diff["tpr"], diff["fpr"]),
            "worst_auc": mf.group_min()["auc"],
            "auc_gap": diff["auc"],
            "acc_gap": diff["acc"],
        }
        attributes[name] = {"groups": groups, **attribute_keys(overall, groups, fl)}
    if overall is None:  # no attribute at all
        overall = frame_values(MetricFrame(metrics=METRICS, y_true=y, y_pred=p, sample_params=params).overall)
    return overall, attributes


def report(path, mode="direct", group_cols=(), threshold=0.5):
    """The contract's document for the predictions CSV at `path`."""
    y, s, p, attrs = read(path, group_cols)
    if p is None:
        p = (s >= threshold).astype(np.int8)
    run = run_direct if mode == "direct" else run_metricframe
    overall, attributes = run(y, s, p, attrs)
    return {
        "n": overall["n"],
        "threshold": threshold,
        "overall": overall,
        "attributes": attributes,
        "warnings": warnings_for(overall, attributes),
    }


def check_fixtures(directory):
    """Both modes against every golden case `case_NN.csv` of `directory` (with its `.args` and
    `.expected.json`); returns the number of disagreements."""
    from compare_reports import compare  # beside this script

    failures = 0
    cases = sorted(f for f in os.listdir(directory) if f.endswith(".csv"))
    for case in cases:
        stem = os.path.join(directory, case[: -len(".csv")])
        extra = open(stem + ".args").read().split() if os.path.exists(stem + ".args") else []
        opts = argparse.ArgumentParser()
        opts.add_argument("--group-col", action="append", default=[])
        opts.add_argument("--threshold", type=float, default=0.5)
        opts = opts.parse_args(extra)
        with open(stem + ".expected.json", encoding="utf-8") as f:
            expected = json.load(f)
        for mode in ("direct", "metricframe"):
            got = json.loads(json.dumps(report(stem + ".csv", mode, opts.group_col, opts.threshold)))
            problems, deviations = compare(expected, got)
            worst = max((d[1] for d in deviations), default=0.0)
            status = "agrees" if not problems else "DISAGREES"
            print(f"{case} --mode {mode}: {status} with the expected JSON (max relative deviation {worst:.2g})")
            for path, problem in problems:
                print(f"  {path}: {problem}")
            failures += bool(problems)
    if not cases:
        print(f"no case_*.csv in {directory}")
        failures += 1
    return failures


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("file", nargs="?")
    parser.add_argument("--mode", choices=["direct", "metricframe"], default="direct")
    parser.add_argument("--group-col", action="append", default=[])
    parser.add_argument("--threshold", type=float, default=0.5)
    parser.add_argument("--out", help="write the JSON here (default: standard output)")
    parser.add_argument(
        "--check-fixtures",
        metavar="DIR",
        help="instead: check both modes against the golden cases in DIR (tests/fixtures/metrics)",
    )
    args = parser.parse_args()
    if args.check_fixtures:
        sys.exit(1 if check_fixtures(args.check_fixtures) else 0)
    if not args.file:
        parser.error("the predictions CSV is required")

    doc = report(args.file, args.mode, args.group_col, args.threshold)
    text = json.dumps(doc, indent=2, allow_nan=False) + "\n"
    if args.out:
        with open(args.out, "w", encoding="utf-8") as f:
            f.write(text)
    else:
        sys.stdout.write(text)


if __name__ == "__main__":
    main()
