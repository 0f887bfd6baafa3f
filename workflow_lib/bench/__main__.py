"""python -m workflow_lib.bench {training|pipeline|noop} [options] - benchmarks that print ratios."""
import sys


def main() -> None:
    if len(sys.argv) < 2 or sys.argv[1] not in ("training", "pipeline", "noop"):
        raise SystemExit("usage: python -m workflow_lib.bench {training|pipeline|noop} [options]\n"
                         "  training  train loop vs bare PyTorch loop and vs HF Trainer (throughput ratios)\n"
                         "  pipeline  wall time of the smoke preset (--preset main: the main job)\n"
                         "  noop      time of a no-op rerun after a finished run")
    what = sys.argv[1]
    if what == "training":
        from workflow_lib.bench.training import main as run

        sys.argv = [f"{sys.argv[0]} training"] + sys.argv[2:]
        run()
    else:
        from workflow_lib.bench.pipeline import main as run

        run(sys.argv[1:])


main()
