"""Turn a pytest-benchmark JSON file from bench/ into the Markdown tables of
docs/benchmarks.md.

    python -m pytest bench/ --benchmark-only --benchmark-json=bench.json
    python bench/report.py bench.json > tables.md

Given several JSON files (repeated runs), each benchmark is reported from the run where
its median was lowest ("best of N runs", the same rule for every library): on a shared
machine this discards the runs other processes disturbed most.

Ratios are mx's time divided by the other library's (below 1: mx is faster), given on
medians and on minima (the least disturbed by other processes on a shared machine).
Targets are judged on medians.
"""
from __future__ import annotations

import json
import sys

ORDER = ["mx", "numpy", "torch", "mlx"]
# The rows print in ORDER; a library outside it (a benchmark's own baseline) comes last.
LABEL = {"mx": "mx", "numpy": "NumPy", "torch": "PyTorch", "mlx": "MLX"}

def _fmt_time(seconds: float) -> str:
    if seconds >= 1e-1:
        return f"{seconds * 1e3:,.0f} ms"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.2f} ms"
    return f"{seconds * 1e6:.1f} µs"


def _fmt_ratio(r: float | None) -> str:
    return "—" if r is None else f"{r:.2f}×"


def load(paths):
    """(first run's document, {group: {backend: benchmark}}, number of runs), keeping
    for each benchmark the run with the lowest median."""
    docs, groups = [], {}
    for path in paths:
        with open(path) as f:
            doc = json.load(f)
        docs.append(doc)
        for b in doc["benchmarks"]:
            backend = b["extra_info"].get("backend") or (b.get("params") or {}).get("backend")
            if backend is None:
                continue  # not a per-library benchmark
            slot = groups.setdefault(b["group"], {})
            if backend not in slot or _median(b) < _median(slot[backend]):
                slot[backend] = b
    first = dict(docs[0])
    dates = sorted(d.get("datetime", "?") for d in docs)
    first["datetime_range"] = (dates[0], dates[-1])
    return first, groups, len(docs)


def machine_section(doc) -> str:
    info = doc["machine_info"].get("mx_bench", {})
    versions = info.get("versions", {})
    lines = [
        f"- CPU: {info.get('cpu_model', '?')}, {info.get('cores', '?')} cores "
        f"(PyTorch set to {info.get('cores', '?')} threads)",
        f"- RAM: {info.get('ram_gib', '?')} GiB",
        f"- OS: {info.get('os', '?')}",
        f"- Python {info.get('python', '?')}; "
        + ", ".join(f"{LABEL[k]} {v}" for k, v in versions.items() if v and k in LABEL),
        f"- Date: {' to '.join(sorted(set(map(_date, doc['datetime_range']))))} UTC; "
        f"pytest-benchmark {doc.get('version', '?')}",
    ]
    return "\n".join(lines)


def _date(iso):
    return iso[:19].replace("T", " ")


def _median(b):
    return b["stats"]["median"]


def group_table(name, by_backend) -> str:
    ops = max(b["extra_info"].get("ops", 1) for b in by_backend.values())
    unit = _unit(next(iter(by_backend.values())))
    mx = by_backend.get("mx")
    head = "| library | mean | median | min | rounds |"
    rule = "|---|---:|---:|---:|---:|"
    if ops > 1:
        head += f" median per {unit} |"
        rule += "---:|"
    head += " mx ÷ this (median) | mx ÷ this (min) |"
    rule += "---:|---:|"
    rows = [f"**{name}**", "", head, rule]
    for key in ORDER + sorted(set(by_backend) - set(ORDER)):
        b = by_backend.get(key)
        if b is None:
            continue
        s = b["stats"]
        row = (f"| {LABEL.get(key, key)} | {_fmt_time(s['mean'])} | {_fmt_time(s['median'])} | "
               f"{_fmt_time(s['min'])} | {s['rounds']} |")
        if ops > 1:
            row += f" {_fmt_time(s['median'] / ops)} |"
        other = mx is None or key == "mx"
        ratio = None if other else _median(mx) / _median(b)
        ratio_min = None if other else mx["stats"]["min"] / s["min"]
        row += f" {_fmt_ratio(ratio)} | {_fmt_ratio(ratio_min)} |"
        rows.append(row)
    missing = [LABEL[k] for k in ORDER if k not in by_backend]
    if missing:
        rows.append("")
        rows.append(f"Not measured: {', '.join(missing)} (skipped: not importable, or the op "
                    "does not exist yet).")
    return "\n".join(rows)


def _target(by_backend):
    for b in by_backend.values():
        if "target" in b["extra_info"]:
            return b["extra_info"]["target"]
    return None


def _per_op(b):
    return _median(b) / b["extra_info"].get("ops", 1)


def _unit(b):
    return b["extra_info"].get("unit", "op")


def target_row(name, by_backend):
    """(workload, target, mx, reference, verdict) for the summary table; targets come
    from the benchmarks' extra_info (see bench/conftest.py, Timed)."""
    mx = by_backend.get("mx")
    target = _target(by_backend)
    numpy = by_backend.get("numpy")
    if target is None:
        if mx is None:
            return (name, "none set", "not measured", "", "—")
        ops = mx["extra_info"].get("ops", 1)
        unit = _unit(mx)
        mx_txt = f"{_per_op(mx) * 1e6:.2f} µs/{unit}" if ops > 1 else _fmt_time(_median(mx))
        ref = ""
        if numpy is not None:
            ref = (f"NumPy {_per_op(numpy) * 1e6:.2f} µs/{unit}" if ops > 1 else
                   f"NumPy {_fmt_time(_median(numpy))} ({_median(mx) / _median(numpy):.2f}×)")
        return (name, "none set (reported)", mx_txt, ref, "—")
    if "max_us_per_op" in target:
        limit = target["max_us_per_op"]
        goal = f"≤ {limit:g} µs/op"
        if mx is None:
            return (name, goal, "not measured", "", "—")
        per_op = _per_op(mx) * 1e6
        ref = f"NumPy {_per_op(numpy) * 1e6:.2f} µs/op" if numpy is not None else ""
        return (name, goal, f"{per_op:.2f} µs/op", ref, "met" if per_op <= limit else "**missed**")
    vs, limit = target["vs"], target["max_ratio"]
    label = LABEL.get(vs, vs)
    goal = f"≤ {limit:.2f}× {label}"
    ref = by_backend.get(vs)
    if mx is None or ref is None:
        return (name, goal, "not measured" if mx is None else _fmt_time(_median(mx)),
                "" if ref is None else f"{label} {_fmt_time(_median(ref))}", "—")
    ratio = _median(mx) / _median(ref)
    ratio_min = mx["stats"]["min"] / ref["stats"]["min"]
    return (name, goal, _fmt_time(_median(mx)),
            f"{label} {_fmt_time(_median(ref))} ({ratio:.2f}×; on minima {ratio_min:.2f}×)",
            "met" if ratio <= limit else "**missed**")


def summary_table(groups) -> str:
    rows = ["| workload | target | mx (median) | reference (median, mx ÷ ref) | verdict |",
            "|---|---|---:|---|---|"]
    for name in sorted(groups):
        rows.append("| " + " | ".join(target_row(name, groups[name])) + " |")
    return "\n".join(rows)


def render(paths) -> str:
    doc, groups, runs = load(paths)
    note = (f"Each benchmark: best of {runs} runs (the run with its lowest median)."
            if runs > 1 else "One run.")
    parts = ["## Machine", "", machine_section(doc), "", note, "", "## Targets", "",
             summary_table(groups), "", "## All results", ""]
    for name in sorted(groups):
        parts += [group_table(name, groups[name]), ""]
    return "\n".join(parts)


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit("usage: python bench/report.py BENCH.json [MORE.json ...]")
    print(render(sys.argv[1:]))
