"""``python -m fastconv bench --compare``: fastconv against torch, ONNX Runtime and OpenCV on the suite.

Each implementation runs in a process of its own (_bench_anchor.py), one process per implementation and
round: thread pools that spin after a call (OpenMP, ONNX Runtime) would steal cores from whatever runs
next in the same process or beside it. Rounds alternate the order of the implementations (forwards,
then backwards), so a drift in the machine's load or clock hits them all alike; a layer's time is the
best of its per-round medians. Anchors run with --anchor-python (default: this interpreter), which need
not have fastconv; anchors that are not installed there are skipped and said so.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time

from fastconv import _bench_anchor
from fastconv._bench import geomean, select_layers
from fastconv._layers import flops

ANCHORS = ("torch", "onnxruntime", "opencv")


def _worker(impl: str, python: str, layers: list, threads: int, min_time: float, progress: str):
    """Runs one worker; yields its JSON records as they come, with progress on stderr."""
    env = dict(os.environ)
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env[var] = str(threads)
    command = [python, _bench_anchor.__file__, "--impl", impl, "--threads", str(threads)]
    command += ["--min-time", str(min_time), *[layer.name for layer in layers]]
    with subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    ) as proc:
        done = 0
        for line in proc.stdout:
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue  # an implementation printing to stdout on its own
            if "layer" in record:
                done += 1
                result = f"{record['ms']:.3f} ms" if "ms" in record else record.get("skip") or record["error"]
                print(
                    f"{progress} {impl} [{done}/{len(layers)}] {record['layer']}: {result}",
                    file=sys.stderr,
                    flush=True,
                )
            yield record
        errors = proc.stderr.read()
    if proc.returncode != 0:
        last = errors.strip().splitlines()[-1:] or [f"exit status {proc.returncode}"]
        yield {"crashed": f"{impl} worker failed (exit status {proc.returncode}): {last[0][:200]}"}


def _agreement(reference: dict, record: dict) -> float | None:
    """max |sample - fastconv's sample| / max |fastconv's sample|: whether both computed the same layer."""
    if not reference or record.get("shape") != reference.get("shape"):
        return math.inf if reference else None
    a, b = reference["sample"], record["sample"]
    scale = max(map(abs, a), default=0.0) or 1.0
    return max((abs(x - y) for x, y in zip(a, b, strict=True)), default=0.0) / scale


def measure(layers, threads: int, min_time: float, rounds: int, anchor_python: str) -> dict:
    """{"versions", "skipped", "records": {impl: {layer: best record}}}."""
    impls = ["fastconv", *ANCHORS]
    versions, skipped = {}, {}
    records: dict[str, dict] = {impl: {} for impl in impls}
    for round_ in range(rounds):
        order = impls if round_ % 2 == 0 else impls[::-1]
        for impl in order:
            if impl in skipped:
                continue
            python = sys.executable if impl == "fastconv" else anchor_python
            progress = f"[round {round_ + 1}/{rounds}]"
            for record in _worker(impl, python, layers, threads, min_time, progress):
                if "unavailable" in record:
                    skipped[impl] = f"{record['unavailable']} (in {python}; see --anchor-python)"
                    print(
                        f"{progress} {impl}: skipped ({record['unavailable']})", file=sys.stderr, flush=True
                    )
                elif "crashed" in record:
                    skipped[impl] = record["crashed"]
                    print(f"{progress} {record['crashed']}", file=sys.stderr, flush=True)
                elif "version" in record:
                    versions[impl] = record["version"]
                else:
                    best = records[impl].get(record["layer"])
                    if best is None or "ms" not in best or record.get("ms", math.inf) < best["ms"]:
                        records[impl][record["layer"]] = record
    if "fastconv" in skipped:
        raise RuntimeError(f"fastconv itself could not run: {skipped['fastconv']}")
    return {"versions": versions, "skipped": skipped, "records": records}


def rows_of(layers, measured: dict) -> dict:
    """Per layer: each implementation's ms (or why not), the best anchor, fastconv / best anchor, and how
    far the anchors' outputs are from fastconv's."""
    records = measured["records"]
    rows = {}
    for layer in layers:
        own = records["fastconv"].get(layer.name, {})
        row = {"mflop": flops(layer) / 1e6, "ms": {}, "notes": {}}
        for impl, by_layer in records.items():
            record = by_layer.get(layer.name)
            if record is None:
                continue
            if "ms" in record:
                row["ms"][impl] = record["ms"]
            else:
                row["notes"][impl] = record.get("skip") or record.get("error")
        anchors = {impl: ms for impl, ms in row["ms"].items() if impl != "fastconv"}
        agree = [_agreement(own, records[impl][layer.name]) for impl in anchors]
        row["anchor_vs_fastconv_max_diff"] = max((a for a in agree if a is not None), default=None)
        if anchors and "fastconv" in row["ms"]:
            best = min(anchors, key=anchors.get)
            row["best_anchor"] = best
            row["ratio"] = row["ms"]["fastconv"] / anchors[best]
        rows[layer.name] = row
    return rows


def format_table(rows: dict, measured: dict, threads: int) -> list[str]:
    present = [impl for impl in ["fastconv", *ANCHORS] if impl not in measured["skipped"]]
    nw = max([22] + [len(name) for name in rows])
    lines = [
        f"{'layer':{nw}s} "
        + " ".join(f"{impl + ' ms':>14s}" for impl in present)
        + f" {'best anchor':>12s} {'fastconv/best':>13s} {'max diff':>9s}"
    ]
    for name, row in rows.items():
        cells = []
        for impl in present:
            ms = row["ms"].get(impl)
            note = row["notes"].get(impl)
            cells.append(f"{ms:14.3f}" if ms is not None else f"{'n/a' if note else '-':>14s}")
        ratio = f"{row['ratio']:12.2f}x" if "ratio" in row else f"{'-':>13s}"
        diff = row["anchor_vs_fastconv_max_diff"]
        lines.append(
            f"{name:{nw}s} {' '.join(cells)} {row.get('best_anchor', '-'):>12s} {ratio} "
            + (f"{diff:9.1e}" if diff is not None else f"{'-':>9s}")
        )
    ratios = [row["ratio"] for row in rows.values() if "ratio" in row]
    if ratios:
        label = f"geomean ({len(ratios)} layers)"
        pad = " " * (15 * len(present) + 13)
        lines.append(f"{label:{nw}s} {pad}{geomean(ratios):12.2f}x")
    for impl in present[1:]:
        per = [
            row["ms"]["fastconv"] / row["ms"][impl]
            for row in rows.values()
            if {impl, "fastconv"} <= set(row["ms"])
        ]
        if per:
            lines.append(f"fastconv / {impl}: geomean {geomean(per):.2f}x over {len(per)} layers")
    lines.append(
        f"threads={threads}; times are the best of each implementation's per-round medians; "
        "fastconv/best < 1 means fastconv is faster; max diff = the anchors' largest distance from "
        "fastconv's output, relative to its largest value (sampled)"
    )
    for name, row in rows.items():
        for impl, note in row["notes"].items():
            lines.append(f"  n/a: {impl} on {name}: {note}")
    for impl, why in measured["skipped"].items():
        lines.append(f"skipped {impl}: {why}")
    return lines


def plot(rows: dict, path: str, threads: int) -> str | None:
    """Writes a PNG bar chart of fastconv / best anchor per layer; returns why not, if it could not."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        import matplotlib.ticker
    except ImportError:
        return "matplotlib is not installed in this Python (pip install matplotlib); no plot written"
    named = [(name, row) for name, row in rows.items() if "ratio" in row]
    if not named:
        return "no layer has both a fastconv and an anchor time; no plot written"
    figure, axes = plt.subplots(figsize=(max(6.0, 0.5 * len(named) + 2), 4.5))
    ratios = [row["ratio"] for _, row in named]
    colors = ["tab:green" if r <= 1 else "tab:red" for r in ratios]
    # Bars grow from 1 (parity) up or down, on a log scale where 2x slower and 2x faster look alike.
    axes.bar(range(len(named)), [r - 1 for r in ratios], bottom=1, color=colors)
    axes.axhline(1.0, color="black", linewidth=0.8)
    axes.set_yscale("log")
    low, high = min(ratios + [1.0]), max(ratios + [1.0])
    axes.set_ylim(low / 1.15, high * 1.15)
    ticks = [t for t in (0.125, 0.25, 0.5, 0.7, 1, 1.4, 2, 4, 8) if low / 1.15 <= t <= high * 1.15]
    axes.set_yticks(ticks, [f"{t:g}x" for t in ticks])
    axes.yaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    axes.set_xticks(
        range(len(named)),
        [f"{name}\n({row['best_anchor']})" for name, row in named],
        rotation=60,
        ha="right",
        fontsize=7,
    )
    axes.set_ylabel("time: fastconv / best anchor")
    axes.set_title(
        f"fastconv / the best of torch, onnxruntime, opencv (below 1: fastconv faster), {threads} thread(s): "
        f"geomean {geomean(ratios):.2f}x"
    )
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return None


def run(args) -> int:
    try:
        layers = select_layers(args.layers, args.quick)
    except ValueError as exc:
        print(f"python -m fastconv bench: error: {exc}", file=sys.stderr)
        return 2
    min_time = args.min_time if args.min_time is not None else (0.2 if args.quick else 0.4)
    anchor_python = args.anchor_python or sys.executable
    print(
        f"fastconv bench --compare: {len(layers)} layers, threads={args.threads}, {args.rounds} round(s), "
        f"median of >= {_bench_anchor.MIN_CALLS} calls and >= {min_time:g} s per round",
        flush=True,
    )
    start = time.perf_counter()
    try:
        measured = measure(layers, args.threads, min_time, args.rounds, anchor_python)
    except RuntimeError as exc:
        print(f"python -m fastconv bench: error: {exc}", file=sys.stderr)
        return 1
    rows = rows_of(layers, measured)
    versions = ", ".join(f"{impl} {v}" for impl, v in measured["versions"].items())
    print(f"versions: {versions}")
    print("\n".join(format_table(rows, measured, args.threads)), flush=True)
    print(f"done in {time.perf_counter() - start:.1f} s", file=sys.stderr, flush=True)
    status = 0
    if args.json:
        ratios = [row["ratio"] for row in rows.values() if "ratio" in row]
        document = {
            "threads": args.threads,
            "rounds": args.rounds,
            "min_time": min_time,
            "versions": measured["versions"],
            "skipped": measured["skipped"],
            "rows": rows,
            "geomean_ratio": geomean(ratios),
        }
        try:
            with open(args.json, "w") as f:
                json.dump(document, f, indent=1)
        except OSError as exc:
            print(f"python -m fastconv bench: error: cannot write --json {args.json}: {exc}", file=sys.stderr)
            status = 1
    if args.plot:
        why_not = plot(rows, args.plot, args.threads)
        print(f"--plot: {why_not}" if why_not else f"plot written to {args.plot}", file=sys.stderr)
    return status
