#!/usr/bin/env python3
"""Compare metrics reports (the contract's JSON) key by key.

Usage: compare_reports.py BASE.json OTHER.json [OTHER.json]...

Every OTHER is compared with BASE: the same attributes, groups and keys; null exactly where BASE has
null; numbers within 1e-9 relative (or 1e-12 absolute, for values near 0). Keys starting with `_`
(notes in the golden fixtures) are skipped; `warnings` are compared as lists and a difference there
is only reported (their wording is free). Prints, for each OTHER, the number of values compared and
the largest relative deviation with its key; exits 1 if any OTHER disagrees.
"""
import json
import sys

REL, ABS = 1e-9, 1e-12


def walk(path, a, b, out):
    """Append (path, problem) for each disagreement; yield (path, rel deviation) for numbers."""
    if isinstance(a, dict) and isinstance(b, dict):
        for key in a:
            if key.startswith("_") or key == "warnings":
                continue
            if key not in b:
                out.append((f"{path}.{key}", "missing"))
            else:
                yield from walk(f"{path}.{key}", a[key], b[key], out)
        for key in b:
            if not key.startswith("_") and key not in a:
                out.append((f"{path}.{key}", "unexpected"))
    elif isinstance(a, bool) or isinstance(b, bool):
        if a != b:
            out.append((path, f"{a!r} vs {b!r}"))
    elif isinstance(a, (int, float)) and isinstance(b, (int, float)):
        diff = abs(a - b)
        scale = max(abs(a), abs(b))
        rel = diff / scale if scale else 0.0
        yield path, rel, a, b
        if diff > ABS and diff > REL * scale:
            out.append((path, f"{a!r} vs {b!r} (relative deviation {rel:.3g})"))
    elif a != b:
        out.append((path, f"{a!r} vs {b!r}"))


def compare(base, other):
    problems = []
    deviations = list(walk("", base, other, problems))
    return problems, deviations


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    with open(sys.argv[1], encoding="utf-8") as f:
        base = json.load(f)
    failed = False
    for name in sys.argv[2:]:
        with open(name, encoding="utf-8") as f:
            other = json.load(f)
        problems, deviations = compare(base, other)
        worst = max(deviations, key=lambda d: d[1], default=("-", 0.0, None, None))
        nulls = sum(1 for _ in _nulls(base))
        print(
            f"{name} vs {sys.argv[1]}: {len(deviations)} numbers and {nulls} nulls compared, "
            + (f"max relative deviation {worst[1]:.3g} at {worst[0]} ({worst[2]!r} vs {worst[3]!r})" if worst[1] else "all identical")
        )
        if base.get("warnings", []) != other.get("warnings", []):
            print(f"  note: warnings differ: {base.get('warnings')} vs {other.get('warnings')}")
        for path, problem in problems:
            print(f"  DISAGREE {path}: {problem}")
        failed |= bool(problems)
    sys.exit(1 if failed else 0)


def _nulls(x):
    if isinstance(x, dict):
        for k, v in x.items():
            if not k.startswith("_"):
                yield from _nulls(v)
    elif x is None:
        yield x


if __name__ == "__main__":
    main()
