#!/usr/bin/env python3
"""Summarise a `fairlab metrics` benchmark run (scripts/bench-metrics.sh) as markdown.

Usage: report.py RUN_DIR --csv FILE --rows N --command CMD --fairlab BIN --python PY
                 [--agreement FILE] [--load-start LOADAVG]

RUN_DIR/times.tsv holds one line per timed run: `tool rep wall_s max_rss_kb`. Prints the results
(table, targets, agreement, machine) as markdown; the driver saves it next to the run.
"""
import argparse
import datetime
import os
import platform
import statistics
import subprocess

LABELS = {
    "fairlab": "`fairlab metrics`",
    "direct": "Python, metric functions called directly",
    "metricframe": "Python, fairlearn `MetricFrame`",
}
ONE_GB = 1e9  # the "less than 1 GB" (= 953.7 MiB)


def sh(*cmd):
    try:
        return subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "?"


def cpu_model():
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "?"


def mem_total_gib():
    try:
        with open("/proc/meminfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return f"{int(line.split()[1]) / 2**20:.1f} GiB"
    except OSError:
        pass
    return "?"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("run_dir")
    ap.add_argument("--csv", required=True)
    ap.add_argument("--rows", type=int, required=True)
    ap.add_argument("--command", required=True)
    ap.add_argument("--fairlab", required=True)
    ap.add_argument("--python", required=True)
    ap.add_argument("--agreement")
    ap.add_argument("--load-start", default="?", help="the load average before the timed runs")
    args = ap.parse_args()

    runs = {}
    with open(os.path.join(args.run_dir, "times.tsv"), encoding="utf-8") as f:
        for line in f:
            tool, _rep, wall, rss = line.split()
            runs.setdefault(tool, []).append((float(wall), int(rss)))
    base = statistics.median(w for w, _ in runs["fairlab"])
    size = os.path.getsize(args.csv)

    out = []
    out.append(f"### {args.rows:,} rows, {datetime.date.today().isoformat()}")
    out.append("")
    out.append(f"Command: `{args.command}`  ")
    out.append(
        f"Data: `{os.path.basename(args.csv)}`, {args.rows:,} rows, {size / 1e6:.1f} MB "
        "(3 attributes of 2, 4 and 5 groups; page cache warm)"
    )
    out.append("")
    out.append("| tool | runs | median wall (s) | min–max (s) | peak RSS (MiB) | time / fairlab's |")
    out.append("|---|---:|---:|---:|---:|---:|")
    for tool in ("fairlab", "direct", "metricframe"):
        if tool not in runs:
            continue
        walls = [w for w, _ in runs[tool]]
        med = statistics.median(walls)
        rss = max(r for _, r in runs[tool]) / 1024
        out.append(
            f"| {LABELS[tool]} | {len(walls)} | {med:.2f} | {min(walls):.2f}–{max(walls):.2f} "
            f"| {rss:.0f} | {med / base:.1f}× |"
        )
    out.append("")
    fl_rss = max(r for _, r in runs["fairlab"]) * 1024
    lines = [f"- fairlab throughput: {size / 1e6 / base:.0f} MB/s of CSV, end to end."]
    for tool, name in (("direct", "the direct-call Python"), ("metricframe", "the MetricFrame Python")):
        if tool in runs:
            ratio = statistics.median(w for w, _ in runs[tool]) / base
            verdict = "" if tool == "metricframe" else (" (target ≥ 10×: **met**)" if ratio >= 10 else " (target ≥ 10×: **NOT met**)")
            lines.append(f"- fairlab is {ratio:.1f}× faster than {name}{verdict}.")
    lines.append(
        f"- fairlab peak memory {fl_rss / 2**20:.0f} MiB "
        + ("(target < 1 GB: **met**)." if fl_rss < ONE_GB else "(target < 1 GB: **NOT met**).")
    )
    out.extend(lines)
    if args.agreement:
        with open(args.agreement, encoding="utf-8") as f:
            agreement = f.read().rstrip()
        out.append("")
        out.append("Agreement (every key within 1e-9 relative, nulls identical; each output against fairlab's first):")
        out.append("")
        out.append("```text")
        out.append(agreement)
        out.append("```")
    py = args.python
    versions = sh(
        py,
        "-c",
        "import sys, numpy, pandas, sklearn, scipy, fairlearn; "
        "print(f'Python {sys.version.split()[0]}, numpy {numpy.__version__}, pandas {pandas.__version__}, "
        "scikit-learn {sklearn.__version__}, scipy {scipy.__version__}, fairlearn {fairlearn.__version__}')",
    )
    commit = sh("git", "rev-parse", "--short=12", "HEAD")
    dirty = " (with uncommitted changes)" if sh("git", "status", "--porcelain", "--untracked-files=no") else ""
    out.append("")
    out.append("Machine and versions:")
    out.append("")
    out.append(f"- {os.cpu_count()} cores (`nproc`: {sh('nproc')}), {cpu_model()}, {mem_total_gib()} memory")
    out.append(f"- {platform.platform()}")
    binary = "release build" if args.fairlab == "release build" else f"binary `{args.fairlab}`"
    out.append(f"- fairlab {commit}{dirty}, {binary}, {sh('rustc', '--version')}")
    out.append(f"- {versions}")
    out.append(
        f"- load average (1, 5, 15 min) before the runs: {args.load_start}; after: "
        f"{' '.join(f'{x:.2f}' for x in os.getloadavg())} (a quiet 2-core machine reads below 1)"
    )
    out.append(f"- date: {datetime.datetime.now().astimezone().isoformat(timespec='seconds')}")
    print("\n".join(out))


if __name__ == "__main__":
    main()
