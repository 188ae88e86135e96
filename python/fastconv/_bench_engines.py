"""``python -m fastconv bench --engines``: is "auto" ever much slower than the best engine forced by hand?

Per suite layer, in one process: a plan with algorithm="auto" (the cost model, or with --tune the
measured choice) and one plan forced to each engine that can run the layer, all called in turn round
after round (so drift hits them alike): CPU time of this thread at one thread, wall time at more. The
table has each plan's fastest call; auto/best is the median over the rounds of auto's time over the
fastest forced engine's in the same round. Then the geomean and the worst case (the criterion: at
most 1.1x on every layer). The opt-in engines (winograd_f4: faster and less exact) are timed and shown
but are not candidates for "best": auto never trades exactness for speed, so it is held to the engines
it may choose.
"""

from __future__ import annotations

import statistics
import sys

from fastconv import _core, _tuning
from fastconv._bench import fastconv_plan, geomean, select_layers
from fastconv._layers import make_inputs


def measure_layer(layer, threads: int, budget: float, tune: bool) -> dict:
    """{"ms": {"auto": ..., engine: ...}, "auto_engine", "best_forced", "ratio"}."""
    x, w = make_inputs(layer)
    plans = {"auto": fastconv_plan(layer, w, "auto", threads, tune=tune)}
    for engine in _core.ALGORITHMS:
        if engine == "auto":
            continue
        try:
            plans[engine] = fastconv_plan(layer, w, engine, threads)
        except ValueError:  # the engine cannot run this layer
            continue
    plans["auto"](x)  # with --tune, the measurement happens here, outside the timed rounds
    rounds = _tuning.time_rounds(
        {name: (lambda p=plan: p(x)) for name, plan in plans.items()},
        _tuning.clock_for(threads),
        budget=budget,
        max_rounds=1000,
    )
    fastest = {name: min(times) for name, times in rounds.items()}
    forced = {name: t for name, t in fastest.items() if name != "auto" and name not in _tuning.OPT_IN}
    best = min(forced, key=forced.get)
    # The median of the rounds' ratios: each compares two calls made one after the other, so a burst
    # of load that slows a few calls moves it less than it moves a ratio of two minima.
    ratios = [a / b for a, b in zip(rounds["auto"], rounds[best], strict=True)]
    return {
        "ms": {name: t * 1e3 for name, t in fastest.items()},
        "auto_engine": plans["auto"].algorithm,
        "best_forced": best,
        "ratio": statistics.median(ratios),
        "rounds": len(ratios),
    }


def run(args) -> int:
    try:
        layers = select_layers(args.layers, args.quick)
    except ValueError as exc:
        print(f"python -m fastconv bench: error: {exc}", file=sys.stderr)
        return 2
    budget = args.min_time if args.min_time is not None else (0.5 if args.quick else 1.0)
    engines = [a for a in _core.ALGORITHMS if a != "auto"]
    print(
        f"fastconv bench --engines: auto{' (tuned)' if args.tune else ''} against every engine forced, "
        f"threads={args.threads}, >= {_tuning.MIN_ROUNDS} rounds and >= {budget:g} s per layer; "
        "auto/best = median over rounds",
        flush=True,
    )
    rows = {}
    for i, layer in enumerate(layers, 1):
        print(f"[{i}/{len(layers)}] {layer.name} ...", end="", file=sys.stderr, flush=True)
        rows[layer.name] = measure_layer(layer, args.threads, budget, args.tune)
        print(f" auto/best {rows[layer.name]['ratio']:.2f}", file=sys.stderr, flush=True)
    nw = max([22] + [len(name) for name in rows])
    heads = ["auto ms", *(f"{e} ms" for e in engines)]
    lines = [
        f"{'layer':{nw}s} "
        + " ".join(f"{h:>13s}" for h in heads)
        + f" {'auto ran':>11s} {'best':>11s} {'auto/best':>9s}"
    ]
    for name, row in rows.items():
        cells = [row["ms"].get(h.removesuffix(" ms")) for h in heads]
        lines.append(
            f"{name:{nw}s} "
            + " ".join(f"{c:13.3f}" if c is not None else f"{'n/a':>13s}" for c in cells)
            + f" {row['auto_engine']:>11s} {row['best_forced']:>11s} {row['ratio']:8.2f}x"
        )
    ratios = {name: row["ratio"] for name, row in rows.items()}
    worst = max(ratios, key=ratios.get)
    lines.append(f"geomean auto/best: {geomean(ratios.values()):.3f}x; worst: {ratios[worst]:.2f}x ({worst})")
    over = [name for name, r in ratios.items() if r > 1.1]
    lines.append(f"layers over 1.1x: {', '.join(over) if over else 'none'}")
    # Where auto ran the best engine, its ratio is the same code timed twice: the noise of the machine.
    same = [name for name, row in rows.items() if row["auto_engine"] == row["best_forced"]]
    other = [name for name in over if name not in same]
    lines.append(
        f"auto ran the best forced engine on {len(same)}/{len(rows)} layers (their ratios are noise); "
        f"over 1.1x with another engine: {', '.join(other) if other else 'none'}"
    )
    print("\n".join(lines), flush=True)
    if args.json:
        import json

        with open(args.json, "w") as f:
            json.dump({"threads": args.threads, "tune": args.tune, "rows": rows}, f, indent=1)
    return 0
