"""The developer benchmarks (devbench/ at the repo root, not installed; the pipeline's own inference
benchmark stage is workflow_lib/pipeline/inference_benchmark.py):

    python -m devbench {training|heads|lora|augment|pipeline|noop|workers|modes} [options]

Each prints ratios or timings; run it from the repo root.
"""

import sys

USAGE = """usage: python -m devbench {training|heads|lora|augment|pipeline|noop|workers|modes} [options]
  training  train loop vs bare PyTorch loop and vs HF Trainer (throughput ratios); --modes post,sentences:
            the sentence model's training cost per post against post windows (ratio sentences / post)
  heads     forward+backward step time of every head and pooling vs linear/cls [--backbone minilm]
  lora      LoRA vs full fine-tuning: trainable parameters and step time [--backbone minilm]
  augment   TextAttack augmentation throughput (sentences per second) per recipe
  pipeline  wall time of the smoke preset (--preset main: the main job)
  noop      time of a no-op rerun after a finished run
  workers   HPO speed-up of 2 parallel workers over 1 on this machine [--trials N] [--backbone minilm-l6]
  modes     the main job once per way of deciding (post windows, reranker, sentence aggregations), each in its
            own results folder: CV and test macro-F1 beside both baselines --out DIR [--modes ...]"""


def main() -> None:
    commands = ("training", "heads", "lora", "augment", "pipeline", "noop", "workers", "modes")
    if len(sys.argv) < 2 or sys.argv[1] not in commands:
        raise SystemExit(USAGE)
    what, rest = sys.argv[1], sys.argv[2:]
    if what == "training":
        from devbench.training import main as run

        sys.argv = [f"{sys.argv[0]} training"] + rest
        run()
    elif what == "modes":
        from devbench.modes import main as run

        raise SystemExit(run(rest))
    elif what in ("heads", "lora", "augment"):
        import importlib

        importlib.import_module(f"devbench.{what}").main(rest)
    else:
        from devbench.pipeline import main as run

        run(sys.argv[1:])


main()
