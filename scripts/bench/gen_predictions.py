#!/usr/bin/env python3
"""Write a deterministic predictions CSV for the `fairlab metrics` benchmark.

Usage: gen_predictions.py ROWS OUT.csv [--seed S]

The file follows the metrics contract's input format (docs/metrics.md): a header
`y_true,y_score,sex,age_group,race`, a 0/1 label, a score with 6 decimals (`%.6f`), and three
sensitive attributes with 2, 4 and 5 groups (`F`/`M`, four age bands, five race codes as in EHR
extracts). There is no `y_pred` column, so the tools threshold the score (0.5).

The data look like a real screening model's output: each group has its own prevalence, its own
score shift (a miscalibration) and its own noise (so its AUC differs), the label is drawn first
and the score's logit is centred on +-1.1 by class. Every group has both classes at any size above
a few thousand rows. 10 million rows are about 228 MB (the issue's file: 231 MB). Needs only numpy;
the same ROWS and seed always give the same bytes.
"""
import argparse
import os
import sys

import numpy as np

# (name, probability, prevalence shift (logit), score shift (logit), noise scale)
ATTRIBUTES = {
    "sex": [("F", 0.52, 0.0, 0.0, 1.0), ("M", 0.48, 0.2, -0.15, 1.1)],
    "age_group": [
        ("18-39", 0.30, -0.6, 0.10, 0.9),
        ("40-59", 0.34, 0.0, 0.0, 1.0),
        ("60-79", 0.27, 0.4, -0.10, 1.2),
        ("80+", 0.09, 0.7, -0.35, 1.5),
    ],
    "race": [
        ("WHT", 0.60, 0.0, 0.0, 1.0),
        ("BLK", 0.13, 0.3, -0.30, 1.3),
        ("ASN", 0.06, -0.2, 0.20, 1.1),
        ("HIS", 0.17, 0.1, -0.10, 1.15),
        ("OTH", 0.04, 0.0, 0.25, 1.4),
    ],
}
BASE_PREVALENCE_LOGIT = -0.7  # about 33 % positives overall
CLASS_MEAN = 1.1  # score logit centred on -CLASS_MEAN (negatives) and +CLASS_MEAN (positives)
CHUNK = 1_000_000


def chunk_lines(rng, rows):
    """CSV text of `rows` rows drawn from `rng`."""
    codes = {}
    prev = np.full(rows, BASE_PREVALENCE_LOGIT)
    shift = np.zeros(rows)
    scale = np.ones(rows)
    for name, groups in ATTRIBUTES.items():
        p = np.array([g[1] for g in groups])
        c = rng.choice(len(groups), size=rows, p=p / p.sum())
        codes[name] = c
        prev += np.array([g[2] for g in groups])[c]
        shift += np.array([g[3] for g in groups])[c]
        scale *= np.array([g[4] for g in groups])[c]
    y = (rng.random(rows) < 1.0 / (1.0 + np.exp(-prev))).astype(np.int64)
    logit = (2 * y - 1) * CLASS_MEAN + shift + scale * rng.standard_normal(rows)
    micro = np.rint(1e6 / (1.0 + np.exp(-logit))).astype(np.int64)  # score in millionths
    whole, frac = np.divmod(micro, 1_000_000)
    labels = {name: np.array([g[0] for g in groups], dtype=object) for name, groups in ATTRIBUTES.items()}
    cols = [
        y.astype(str).astype(object),
        np.char.add(np.char.add(whole.astype(str), "."), np.char.zfill(frac.astype(str), 6)).astype(object),
    ] + [labels[name][codes[name]] for name in ATTRIBUTES]
    return "".join(",".join(row) + "\n" for row in zip(*cols))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("rows", type=int)
    parser.add_argument("out")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.rows < 1:
        sys.exit("gen_predictions.py: ROWS must be at least 1")
    tmp = f"{args.out}.tmp{os.getpid()}"
    with open(tmp, "w", encoding="utf-8", newline="") as f:
        f.write("y_true,y_score," + ",".join(ATTRIBUTES) + "\n")
        # One generator per chunk, seeded from (seed, chunk index): the bytes do not depend on
        # anything but ROWS and the seed.
        for i, start in enumerate(range(0, args.rows, CHUNK)):
            rng = np.random.default_rng([args.seed, i])
            f.write(chunk_lines(rng, min(CHUNK, args.rows - start)))
    os.replace(tmp, args.out)


if __name__ == "__main__":
    main()
