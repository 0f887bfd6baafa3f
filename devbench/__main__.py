"""The developer benchmarks (devbench/ at the repo root, not installed; the pipeline's own inference
benchmark stage is workflow_lib/pipeline/inference_benchmark.py):

    python -m devbench {training|heads|lora|augment|pipeline|noop|workers} [options]

Each prints ratios or timings; run it from the repo root.
"""

import sys

USAGE = """usage: python -m devbench {training|heads|lora|augment|pipeline|noop|workers} [options]
  training  train loop vs bare PyTorch loop and vs HF Trainer (throughput ratios); --modes post,sentences:
            the sentence model's training cost per post against post windows (ratio sentences / post)
  heads     forward+backward step time of every head and pooling vs linear/cls [--backbone minilm]
  lora      LoRA vs full fine-tuning: trainable parameters and step time [--backbone minilm]
  augment   TextAttack augmentation throughput (sentences per second) per recipe
  pipeline  wall time of the smoke preset (--preset main: the main job)
  noop      time of a no-op rerun after a finished run
  workers   HPO speed-up of 2 parallel workers over 1 on this machine [--trials N] [--backbone minilm-l6]"""


def main() -> None:
    if len(sys.argv) < 2 or sys.argv[1] not in ("training", "heads", "lora", "augment", "pipeline", "noop", "workers"):
        raise SystemExit(USAGE)
    what, rest = sys.argv[1], sys.argv[2:]
    if what == "training":
        from devbench.training import main as run

        sys.argv = [f"{sys.argv[0]} training"] + rest
        run()
    elif what in ("heads", "lora", "augment"):
        import importlib

        importlib.import_module(f"devbench.{what}").main(rest)
    else:
        from devbench.pipeline import main as run

        run(sys.argv[1:])


main()
