"""workflow_lib.learning.augment in a fresh process: another checkout of the code, another hash seed, no
NLTK_DATA - the same augmentations (a process importing TextAttack: 10-15 s)."""

from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers.augment import HAND, PCT, REPO, SAMPLE, sample_records
from workflow_lib.learning import augment as A

_SUBPROCESS = """
import json, logging, sys
import flair  # imported before textattack: textattack's dictConfig would then disable existing loggers
mine = logging.getLogger("workflow_lib.some_module")
from workflow_lib.data.loader import load_folder
from workflow_lib.data.prepare import build_records
from workflow_lib.learning import augment as A
HAND, SAMPLE, PCT = json.loads(sys.argv[1])
records = build_records(load_folder(SAMPLE), 0.5)[0] + HAND
out = {r: A.augment_records(records, recipe=r, prob=0.5, seed=5, pct_words=PCT) for r in A.RECIPES}
import nltk
json.dump({"out": out, "logger_disabled": mine.disabled, "module": A.__file__, "nltk_path": nltk.data.path}, sys.stdout)
"""


@pytest.mark.integration  # a fresh process imports TextAttack: 10-15 s
def test_deterministic_in_a_fresh_process_with_another_hash_seed_from_another_checkout(tmp_path):
    # another checkout of the code (a second clone, a worktree) used with the same environment: its own
    # copy of workflow_lib, another working folder, no NLTK_DATA; the environment's NLTK data serves it
    clone = tmp_path / "clone"
    shutil.copytree(REPO / "workflow_lib", clone / "workflow_lib", ignore=shutil.ignore_patterns("__pycache__"))
    here = os.environ.get("PYTHONHASHSEED")
    env = {**os.environ, "PYTHONHASHSEED": "4242" if here != "4242" else "7", "PYTHONPATH": str(clone)}
    env.pop("NLTK_DATA", None)
    args = json.dumps([HAND, str(SAMPLE), PCT])
    proc = subprocess.run([sys.executable, "-c", _SUBPROCESS, args], cwd=clone, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    theirs = json.loads(proc.stdout)
    assert theirs["module"] == str(clone / "workflow_lib" / "learning" / "augment.py")
    assert theirs["nltk_path"][0] == str(Path(sys.prefix) / "nltk_data")
    assert not [p for p in theirs["nltk_path"] if p.startswith((str(REPO), str(clone)))]
    assert theirs["logger_disabled"] is False, "importing textattack disabled an existing logger"
    records = sample_records() + copy.deepcopy(HAND)
    for recipe in A.RECIPES:
        new, log = A.augment_records(records, recipe=recipe, prob=0.5, seed=5, pct_words=PCT)
        assert [new, log] == theirs["out"][recipe], recipe
        assert log
