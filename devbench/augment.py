"""Augmentation benchmark: evidence sentences per second for each recipe of workflow_lib.learning.augment.

    python -m devbench.augment [--posts 300] [--rounds 3] [--pct-words 0.1] [--recipes deletion,...]

The sentences are the aligned evidence sentences of the embedded (synthetic) data set. One-off
costs are reported apart: importing workflow_lib.learning.augment, importing TextAttack (flair and
transformers come with it), loading WordNet, and each recipe's first call (building its
Augmenter). Then, per recipe, one warm-up pass over a few sentences and ``--rounds`` timed passes
over all of them; the median pass gives sentences per wall-clock second and per process-CPU second
(the latter less disturbed by other processes on a shared machine). A last column times
augment_records on the posts at prob 0.5 (records per second, picked or not). This is a benchmark,
not a test: numbers depend on the machine and its load.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path


def _timed(fn, *args, **kwargs):
    t0, c0 = time.perf_counter(), time.process_time()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - t0, time.process_time() - c0


def _records(n_posts: int, seed: int) -> list[dict]:
    from workflow_lib.data.loader import load_folder
    from workflow_lib.data.prepare import build_records
    from workflow_lib.data.synthetic import generate

    with tempfile.TemporaryDirectory(prefix="bench_augment_") as tmp:
        generate(Path(tmp), n_posts=n_posts, seed=seed)
        records, _ = build_records(load_folder(Path(tmp)), 0.5)
    return records


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m devbench.augment", description=__doc__.splitlines()[0])
    parser.add_argument("--posts", type=int, default=300, help="embedded posts to take the sentences from")
    parser.add_argument("--rounds", type=int, default=3, help="timed passes per recipe (median reported)")
    parser.add_argument("--pct-words", type=float, default=0.1, help="share of words changed per sentence")
    parser.add_argument("--recipes", default=None, help="comma-separated subset of the recipes")
    parser.add_argument("--seed", type=int, default=13)
    args = parser.parse_args(argv)

    already = "textattack" in sys.modules
    mod, t_mod, _ = _timed(__import__, "workflow_lib.learning.augment", fromlist=["augment_sentence"])
    A = mod
    recipes = A.RECIPES if not args.recipes else tuple(r.strip() for r in args.recipes.split(",") if r.strip())
    for recipe in recipes:
        A.check_available(recipe)
    records = _records(args.posts, args.seed)
    spans = {(r["post_id"], ev["start"], ev["end"]) for r in records for ev in r["evidence"] if ev["start"] is not None}
    by_id = {r["post_id"]: r["text"] for r in records}
    sentences = [by_id[pid][s:e] for pid, s, e in sorted(spans)]

    _, t_ta, _ = _timed(A._textattack)
    t_wn = None
    if any(r in A.WORDNET_RECIPES for r in recipes):
        _, t_wn, _ = _timed(A._wordnet)
    print(
        f"augmentation benchmark: {len(sentences)} evidence sentences from {len(records)} embedded posts, "
        f"pct_words {args.pct_words}, {args.rounds} timed rounds"
    )
    print(f"import workflow_lib.learning.augment   {t_mod:7.3f} s  (imports neither nltk nor textattack)")
    print(
        f"import textattack             {t_ta:7.2f} s"
        + ("  (already imported before: not measured)" if already else "")
    )
    if t_wn is not None:
        print(f"load WordNet                  {t_wn:7.2f} s")
    print()
    header = (
        f"{'recipe':<15} {'first call s':>12} {'sent/s wall':>12} {'sent/s CPU':>11} {'changed':>8} "
        f"{'records/s @0.5':>15}"
    )
    print(header)
    print("-" * len(header))
    for recipe in recipes:
        _, t_first, _ = _timed(
            A.augment_sentence, sentences[0], recipe=recipe, seed=args.seed, key="first", pct_words=args.pct_words
        )
        for i, sent in enumerate(sentences[:20]):  # warm-up (caches, WordNet lookups of common words)
            A.augment_sentence(sent, recipe=recipe, seed=args.seed + 1, key=i, pct_words=args.pct_words)
        walls, cpus, changed = [], [], 0
        for rnd in range(args.rounds):
            t0, c0 = time.perf_counter(), time.process_time()
            outs = [
                A.augment_sentence(sent, recipe=recipe, seed=args.seed + 2 + rnd, key=i, pct_words=args.pct_words)
                for i, sent in enumerate(sentences)
            ]
            walls.append(time.perf_counter() - t0)
            cpus.append(time.process_time() - c0)
            changed = sum(o != s for o, s in zip(outs, sentences))
        _, t_rec, _ = _timed(
            A.augment_records, records, recipe=recipe, prob=0.5, seed=args.seed, pct_words=args.pct_words
        )
        wall, cpu = statistics.median(walls), statistics.median(cpus)
        print(
            f"{recipe:<15} {t_first:12.3f} {len(sentences) / wall:12.0f} {len(sentences) / max(cpu, 1e-9):11.0f} "
            f"{changed / len(sentences):8.0%} {len(records) / t_rec:15.0f}"
        )


if __name__ == "__main__":
    main()
