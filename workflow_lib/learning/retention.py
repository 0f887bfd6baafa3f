"""Which epoch states of a training run to keep (a pure decision), the function that applies it, and
the release of a finished run's state.

Per training run (``checkpoints.keep_last_n`` / ``keep_best_k``): the newest n epochs and the k
best-scoring ones (ties: the earlier epoch, as early stopping picks it) are kept; the newest epoch is
always kept (a resume needs it), so even n = k = 0 keeps one. train() applies this after every
successful epoch save, so an interruption leaves at most n + k + 1 folders.

After a stage's result exists the state is dead weight (the result is reused, never retrained):
refit and final delete their ``state/`` folder after writing their result file; an HPO fold deletes
its ``state/`` once its held-out scores are computed, just before returning them to be written
(a kill in the few milliseconds between the two costs that fold's retraining, never a wrong result).
So a finished main job keeps no training state, and a study none to prune: the shipped models are
refit/*/model and final/*/model. During training one run holds n + k + 1 epoch folders at most
(MiniLM: weights ~90 MB, AdamW moments of the trainable layers, the best epoch's weights when it is
not the newest).
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Iterable, Mapping
from pathlib import Path

log = logging.getLogger(__name__)


def keep_epochs(
    scores: Mapping[int, float | None], *, keep_last_n: int, keep_best_k: int, protected: Iterable[int] = ()
) -> set[int]:
    """Epochs to keep of one run; ``scores`` maps every saved epoch to its validation score (None: none)."""
    epochs = sorted(scores)
    if not epochs:
        return set()
    keep = set(epochs[-keep_last_n:]) if keep_last_n > 0 else set()
    scored = sorted((e for e in epochs if scores[e] is not None), key=lambda e: (-scores[e], e))
    keep |= set(scored[: max(0, keep_best_k)])
    keep |= set(protected) & set(epochs)
    keep.add(epochs[-1])  # the state a resume needs; never zero
    return keep


def folder_bytes(path) -> int:
    return sum(p.stat().st_size for p in Path(path).rglob("*") if p.is_file())


def prune_run(
    state_dir, scores: Mapping[int, float | None], *, keep_last_n: int, keep_best_k: int, protected: Iterable[int] = ()
) -> list[Path]:
    """Delete the epoch folders of ``state_dir`` the per-run policy does not keep (and left-over
    temporary folders); return the deleted paths. ``scores`` covers the epochs of this run."""
    from workflow_lib.learning.resume import epoch_dir

    root = Path(state_dir)
    keep = keep_epochs(scores, keep_last_n=keep_last_n, keep_best_k=keep_best_k, protected=protected)
    wanted = {epoch_dir(root, e).name for e in keep}
    deleted = []
    for p in sorted(root.iterdir()) if root.is_dir() else []:
        stale_tmp = p.name.startswith(".") and (".tmp-" in p.name or ".old-" in p.name)  # of a killed save
        if p.is_dir() and (stale_tmp or (p.name.startswith("epoch_") and p.name not in wanted)):
            shutil.rmtree(p, ignore_errors=True)
            deleted.append(p)
    if deleted:
        log.info("%s: removed %s (keeping %s)", root, ", ".join(p.name for p in deleted), ", ".join(sorted(wanted)))
    return deleted


def release(state_dir, result_path: str | None = None) -> bool:
    """Delete a finished run's ``state_dir``; with ``result_path`` only once that file exists."""
    root = Path(state_dir)
    if not root.is_dir() or (result_path is not None and not Path(result_path).is_file()):
        return False
    shutil.rmtree(root, ignore_errors=True)
    log.info("%s: training state removed (the run's result is written)", root)
    return True
