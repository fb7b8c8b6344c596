"""Tables and curves for benchmarks/repro_baselines.py (one function per sub-command)."""

from __future__ import annotations

import json
import time
from pathlib import Path

from benchmarks.baselines_setup import RESULTS, build_method, episode_set, load_splits, log
from metaloop.baselines.domains import domain_drop, to_common_format
from metaloop.curves import reliability_diagram, shots_curve, steps_curve
from metaloop.curves.plots import plot_curve, plot_reliability
from metaloop.curves.ranking import episode_ndcg
from metaloop.curves.reliability import collect_predictions
from metaloop.evaluate import evaluate
from metaloop.io import atomic_write_json
from metaloop.metrics import mean_ci95


def results_table(folder: Path) -> str:
    """Every ``eval`` result as one markdown table per (dataset, ways, shots)."""
    rows: dict[tuple, list[str]] = {}
    for path in sorted(folder.glob("*.json")):
        record = json.loads(path.read_text())
        if "preset" not in record or "result" not in record:
            continue
        p, r = record["preset"], record["result"]
        key = (p["dataset"], p.get("split", ""), p.get("ways", 5), p.get("shots", 1))
        per_ep = record["cpu_seconds"] / max(1, r["episodes"])
        tuned = record.get("info", {}).get("tuned", {}).get("best")
        note = p.get("label", p["algorithm"]) + (f" (meta-val: {tuned})" if tuned else "")
        ece = f"{r['extra'].get('ece', {}).get('mean', float('nan')) * 100:.1f}"
        if "calibration" in record:  # score_trained --calibrate: ECE at the meta-val temperature
            cal = record["calibration"]
            ece += f" ({cal['ece'] * 100:.1f} at T = {cal['temperature']:.2f})"
        rows.setdefault(key, []).append(
            f"| {note} | {r['mean'] * 100:.2f} ± {r['ci95'] * 100:.2f} | {r['episodes']} | "
            f"{record['cpu_seconds']:.0f} s ({per_ep * 1000:.0f} ms/episode) | {ece} | `{p['name']}` |")
    out = []
    for (ds, split, ways, shots), lines in sorted(rows.items()):
        out += [f"### {ds} ({split}) {ways}-way {shots}-shot", "",
                "| method | accuracy % (95 % CI) | episodes | CPU time (eval) | ECE % | preset |",
                "|---|---|---|---|---|---|", *lines, ""]
    return "\n".join(out)


def _methods(preset: dict, splits):
    methods = {}
    for spec in preset["methods"]:
        spec = {"dataset": preset["dataset"], **spec}
        if "tuned_from" in spec:  # reuse the hyper-parameters an eval preset chose on meta-val
            path = RESULTS / f"{spec['tuned_from']}.json"
            if not path.is_file():
                raise FileNotFoundError(f"{path} missing: run 'eval' on preset {spec['tuned_from']} first")
            best = json.loads(path.read_text())["info"]["tuned"]["best"]
            spec["params"] = {**spec.get("params", {}), **best}
            log(f"{spec['label']}: meta-val choice of {spec['tuned_from']}: {best}")
        algorithm, _ = build_method(spec, splits)
        methods[spec["label"]] = algorithm
    return methods


def run_curve(kind: str, preset: dict, episodes: int | None) -> int:
    splits = load_splits(preset["dataset"], preset.get("split", "vinyals"), preset.get("image_size", 28),
                         preset.get("channels", 1))
    n = episodes or preset.get("episodes", 100)
    name = preset["name"]
    start = time.perf_counter()
    if kind == "shots-curve":
        curve = shots_curve(_methods(preset, splits), splits.test, ways=preset.get("ways", 5),
                            shots=preset["shots"], queries=preset.get("queries", 5), episodes=n,
                            seed=preset.get("seed", 0), log=log)
    elif kind == "steps-curve":
        es = episode_set(splits.test, preset, preset.get("episode_pool", 600)).head(n)
        curve = steps_curve(_methods(preset, splits), es, steps=preset["steps"], log=log)
    elif kind == "reliability":
        return _reliability(preset, splits, n)
    elif kind == "cross-domain":
        return _cross_domain(preset, splits, n)
    else:
        raise ValueError(f"unknown curve {kind!r}")
    curve.meta.update(preset=name, seconds=time.perf_counter() - start)
    curve.save(RESULTS / f"{name}.json")
    plot_curve(curve, RESULTS / f"{name}.png", title=preset.get("title"))
    print(curve.table())
    return 0


def _reliability(preset: dict, splits, n: int) -> int:
    es = episode_set(splits.test, preset, preset.get("episode_pool", 600)).head(n)
    diagrams, record = {}, {}
    for label, algorithm in _methods(preset, splits).items():
        logits, targets = collect_predictions(algorithm, es)
        d = reliability_diagram(logits, targets, preset.get("bins", 15))
        per_episode = len(es[0].query_y)  # same query count in every episode: split the pooled logits
        chunks = list(zip(logits.split(per_episode), targets.split(per_episode), strict=True))
        ndcg = {k: mean_ci95([episode_ndcg(lg, t, k) for lg, t in chunks]) for k in preset.get("ndcg_k", [5])}
        diagrams[label] = d
        scores = {str(k): {"mean": m, "ci95": c} for k, (m, c) in ndcg.items()}
        record[label] = {**d.to_dict(), "ndcg": scores}
        log(f"{label}: ECE {d.ece * 100:.2f} %, " + ", ".join(
            f"nDCG@{k} {m:.3f} ± {c:.3f}" for k, (m, c) in ndcg.items()))
    atomic_write_json(RESULTS / f"{preset['name']}.json", {"preset": preset["name"], "episodes": n,
                                                           "methods": record})
    plot_reliability(diagrams, RESULTS / f"{preset['name']}.png")
    return 0


def _cross_domain(preset: dict, splits, n: int) -> int:
    methods = _methods(preset, splits)
    size, channels = preset.get("image_size", 28), preset.get("channels", 1)
    table: dict = {}
    for target in preset["targets"]:
        ts = load_splits(target["dataset"], target.get("split", "vinyals"), size, channels)
        test = to_common_format(ts[target.get("part", "test")], size, channels)
        es = episode_set(test, preset, n)
        for label, algorithm in methods.items():
            r = evaluate(algorithm, es)
            table.setdefault(label, {})[target["label"]] = {"mean": r.mean, "ci95": r.ci95,
                                                           "episodes": r.episodes}
            log(f"{label} on {target['label']}: {r.summary()}")
    first = preset["targets"][0]["label"]
    for row in table.values():
        for t, v in row.items():
            if t != first:
                v["drop_vs_" + first] = domain_drop(row[first]["mean"], v["mean"])["drop"]
    atomic_write_json(RESULTS / f"{preset['name']}.json", {"preset": preset["name"], "results": table})
    print(json.dumps(table, indent=1))
    return 0
