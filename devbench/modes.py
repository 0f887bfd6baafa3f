"""How the post decisions are made, compared on one data set with one budget: the main job (config/config.yaml)
run once per mode, each in its own results folder, every other setting equal (the same data key, so the same
splits and folds; the same search space and trial budget; the same refit and final rules).

Modes: ``post`` (windows over the post, window logits folded by max), ``reranker`` (post windows with the coupled
sentence_reranker evidence head), ``sentences-<aggregation>`` (criteria_from: sentences with each aggregation,
the main job's sentence_context), ``sentences-max-window`` (each sentence read in its post window, sentence loss
weight 1: the sentence model before sentence_context).
Both TF-IDF baselines come from the same runs (their CV on the same folds, their test scores in the final report).

    python -m devbench.modes --out /tmp/modes [--modes post,sentences-max] [--configfile config/config.yaml]

Prints one table (markdown) of CV macro-F1 (the selected trial's fold mean, cv heldout folds of the train split),
test macro-F1 with its 95% bootstrap interval, and the wall time of each run; writes it to ``OUT/modes.md`` and
the figures to ``OUT/modes.json``. Finished runs are reused (the pipeline's own keys), so an interrupted
comparison picks up where it stopped.
"""

from __future__ import annotations

import argparse
import glob
import json
import subprocess
import sys
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
AGGREGATIONS = ("max", "logsumexp", "noisy_or", "attention")
MODES: dict[str, dict] = {
    "post": {"criteria_from": "post", "long_posts": "windows", "window_aggregation": "max"},
    "reranker": {
        "criteria_from": "post",
        "evidence_task": True,
        "evidence_head": "sentence_reranker",
        "multitask": "coupled",
    },
    **{f"sentences-{a}": {"criteria_from": "sentences", "sentence_aggregation": a} for a in AGGREGATIONS},
    # the sentence model as it was before sentence_context: each sentence read in its post window, weight 1
    "sentences-max-window": {
        "criteria_from": "sentences",
        "sentence_aggregation": "max",
        "sentence_context": "window",
        "sentence_loss_weight": 1.0,
    },
}


def overlay(mode: str, results_dir: Path, generator: str) -> dict:
    """The config layered over the main job's for ``mode``."""
    return {
        "results_dir": str(results_dir),
        "data": {"embedded": {"generator": generator}},
        "training": MODES[mode],
    }


def run_mode(mode: str, out: Path, configfile: str, generator: str, cores: int) -> float:
    """Run the main job for ``mode`` under ``out/mode`` (reused when finished); its wall seconds."""
    folder = out / mode
    folder.mkdir(parents=True, exist_ok=True)
    over = folder / "overlay.yaml"
    over.write_text(yaml.safe_dump(overlay(mode, folder / "results", generator), sort_keys=False))
    cmd = [
        *("snakemake", "-s", str(REPO / "Snakefile"), "-d", str(folder)),  # one working folder (and run lock) per mode
        *("--profile", str(REPO / "profiles" / "local"), "--cores", str(cores)),
        *("--configfile", str(REPO / configfile), str(over)),
    ]
    t0 = time.perf_counter()
    with open(folder / "snakemake.log", "w") as log:
        done = subprocess.run(cmd, cwd=folder, stdout=log, stderr=subprocess.STDOUT, check=False)
    seconds = time.perf_counter() - t0
    if done.returncode:
        raise SystemExit(f"{mode}: snakemake failed (exit {done.returncode}); see {folder / 'snakemake.log'}")
    return seconds


def _one(pattern: str) -> dict:
    found = sorted(glob.glob(pattern))
    if len(found) != 1:
        raise SystemExit(f"expected one file matching {pattern}, found {len(found)}")
    return json.loads(Path(found[0]).read_text(encoding="utf-8"))


def figures(mode: str, out: Path, seconds: float) -> dict:
    """The mode's CV and test macro-F1 (with interval) from its evaluation report, and both baselines'."""
    results = out / mode / "results"
    report = _one(f"{results}/final/*/evaluation_report.json")
    iv = report["intervals"]["at_tuned_thresholds"]["macro_f1"]
    row = {
        "mode": mode,
        "cv_macro_f1": report["cv"]["mean"],
        "cv_folds": report["cv"]["fold_scores"],
        "test_macro_f1": report["metrics"]["test"]["macro_f1"],
        "test_interval": [iv["low"], iv["high"]],
        "test_micro_f1": report["metrics"]["test"]["micro_f1"],
        "params": report["selected"]["params"],
        "seconds": seconds,
        "baselines": {},
    }
    if "sentences" in report["metrics"]:
        row["test_sentence_micro_f1"] = report["metrics"]["sentences"]["micro_f1"]
    for b in report["baselines"]:
        cv = _one(f"{results}/baseline/*/{'baseline_sentences' if 'sentences' in b['name'] else 'baseline'}.json")
        biv = b["intervals"]["macro_f1"] if "intervals" in b else None
        row["baselines"][b["name"]] = {
            "cv_macro_f1": cv["mean"],
            "test_macro_f1": b["metrics"]["macro_f1"],
            "test_interval": [biv["low"], biv["high"]] if biv else None,
        }
    return row


def table(rows: list[dict]) -> str:
    def iv(x):
        return f"[{x[0]:.3f}, {x[1]:.3f}]" if x else ""

    lines = [
        "| model | CV macro-F1 (train-split folds) | test macro-F1 [95% CI] | run |",
        "|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['mode']} | {r['cv_macro_f1']:.3f} | {r['test_macro_f1']:.3f} {iv(r['test_interval'])} "
            f"| {r['seconds'] / 60:.1f} min |"
        )
    if rows:
        for name, b in rows[0]["baselines"].items():
            lines.append(f"| {name} | {b['cv_macro_f1']:.3f} | {b['test_macro_f1']:.3f} {iv(b['test_interval'])} | |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True, type=Path, help="folder of the runs (one results folder per mode)")
    ap.add_argument("--modes", default=",".join(MODES), help=f"comma-separated, of: {', '.join(MODES)}")
    ap.add_argument("--configfile", default="config/config.yaml", help="the main job's config (relative to the repo)")
    ap.add_argument("--generator", default="3", help="data.embedded.generator of every run")
    ap.add_argument("--cores", type=int, default=2)
    args = ap.parse_args(argv)
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    unknown = [m for m in modes if m not in MODES]
    if unknown:
        ap.error(f"unknown mode(s) {', '.join(unknown)}; choose from {', '.join(MODES)}")
    args.out.mkdir(parents=True, exist_ok=True)
    rows = []
    failed = []
    for mode in modes:
        try:
            seconds = run_mode(mode, args.out.resolve(), args.configfile, args.generator, args.cores)
        except SystemExit as exc:  # the next mode still runs; this one is reported, and reused when run again
            print(exc, file=sys.stderr)
            failed.append(mode)
            continue
        rows.append(figures(mode, args.out.resolve(), seconds))
        print(f"{mode}: CV {rows[-1]['cv_macro_f1']:.3f}, test {rows[-1]['test_macro_f1']:.3f}", file=sys.stderr)
    (args.out / "modes.json").write_text(json.dumps(rows, indent=2))
    text = table(rows)
    (args.out / "modes.md").write_text(text + "\n")
    print(text)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
