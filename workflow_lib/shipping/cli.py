"""``redsm5-predict``: the command line of the predictor (workflow_lib/shipping/predictor.py).

    redsm5-predict MODEL INPUT -o OUTPUT [--threshold T] [--batch-size N] [--tracking-uri URI] [--threads N]
    python -m workflow_lib.shipping.cli MODEL INPUT -o OUTPUT ...     (the same command)

MODEL is a model folder, its stage folder or an MLflow model URI; INPUT a CSV or JSONL file of posts
(post_id, text) or ``-`` for one post per line on standard input; OUTPUT a ``.jsonl`` or ``.csv`` file
of one row per post (the shape: workflow_lib/shipping/predictor.py): probabilities, decisions and, for a model
that marks evidence, each predicted symptom's evidence (the sentence model's evidence sentences with their
scores and the evidence threshold the model carries).
Exit status 0 after writing the predictions, 2 with a one-line error on bad input.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence

from workflow_lib.config import ConfigError
from workflow_lib.data.loader import DataError
from workflow_lib.learning.checkpoint import CheckpointError
from workflow_lib.shipping.predictor import PredictError, predict_file
from workflow_lib.tracking.logs import setup_logging


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="redsm5-predict",
        description="Predict the nine DSM-5 symptoms (and their evidence) of posts with a trained model.",
    )
    p.add_argument(
        "model",
        help="model folder (results/final/<final_key>/model), its stage folder, or an MLflow "
        "model URI (models:/redsm5-symptoms@champion, models:/<name>/<version>, "
        "runs:/<run_id>/model)",
    )
    p.add_argument(
        "input",
        help="posts: CSV or JSONL with post_id and text (ReDSM5 posts.csv works), "
        "or - for one post per line on standard input",
    )
    p.add_argument("-o", "--output", required=True, help="predictions file: .jsonl or .csv")
    p.add_argument(
        "--threshold",
        type=float,
        default=None,
        help="one decision threshold for every symptom (default: the model's tuned thresholds)",
    )
    p.add_argument(
        "--batch-size", type=int, default=None, help="rows per model batch (default: the model's eval_batch_size)"
    )
    p.add_argument(
        "--tracking-uri",
        default=None,
        help="MLflow tracking store for a models:/ or runs:/ URI "
        "(default: $MLFLOW_TRACKING_URI, else results/mlflow.db)",
    )
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """``redsm5-predict``: exit 0 after writing the predictions, 2 with a one-line error on bad input."""
    args = _parser().parse_args(argv)
    setup_logging(None, level=logging.WARNING)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    if args.threads is not None and args.threads < 1:
        print(f"redsm5-predict: error: --threads {args.threads}: must be at least 1", file=sys.stderr)
        return 2
    try:
        summary = predict_file(
            args.model,
            args.input,
            args.output,
            threshold=args.threshold,
            batch_size=args.batch_size,
            tracking_uri=args.tracking_uri,
            threads=args.threads,
            progress=True,
        )
    except (PredictError, DataError, CheckpointError, ConfigError, OSError) as exc:
        print(f"redsm5-predict: error: {exc}", file=sys.stderr)
        return 2
    n, rate = summary["n_posts"], summary["posts_per_second"] or float("inf")
    print(
        f"redsm5-predict: {n} post{'' if n == 1 else 's'} in {summary['seconds']:.2f} s "
        f"({rate:.1f} posts/s, {summary['threads']} threads) -> {summary['output']}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
