"""Epoch-level resume: same result as an uninterrupted run (after an exception; after a real SIGKILL:
tests/integration/test_resume_kill.py), fallback past corrupt states, refusal of another run's state,
retention wiring, the folder lock, storage preflight."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.helpers.resume import policy, without_timings
from tests.helpers.training import CFG, SCORED, TINY, toy
from workflow_lib.config import Checkpoints, Storage
from workflow_lib.learning import retention
from workflow_lib.learning.checkpoint import CheckpointError, load_checkpoint
from workflow_lib.learning.epoch_states import EpochStates, NoStates, StatePolicy
from workflow_lib.learning.inference import predict
from workflow_lib.learning.resume import BEST, OPTIMIZER, TRAINER, StateMismatch, locked
from workflow_lib.learning.training import train

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def data():
    return toy(160, 0), toy(48, 1)


@pytest.fixture(scope="module")
def reference(data):
    """An uninterrupted 4-epoch run with validation, no state."""
    tr, va = data
    return train(TINY, CFG, tr, va, epochs=4, **SCORED)


def _same(a, b, va):
    assert without_timings(a.history) == without_timings(b.history)
    assert (a.best_epoch, a.best_score) == (b.best_epoch, b.best_score)
    np.testing.assert_allclose(a.val_probs, b.val_probs, atol=1e-6)
    np.testing.assert_allclose(
        predict(a.model, a.tokenizer, va, CFG, max_length=32).probs,
        predict(b.model, b.tokenizer, va, CFG, max_length=32).probs,
        atol=1e-6,
    )


class Interrupt(Exception):
    pass


def test_interrupted_run_resumes_to_the_same_result(data, reference, tmp_path, caplog):
    tr, va = data
    state = tmp_path / "state"

    def stop_at_2(epoch, score):
        if epoch == 2:
            raise Interrupt

    with pytest.raises(Interrupt):
        train(
            TINY, CFG, tr, va, epochs=4, state_dir=str(state), state_policy=policy(state), on_epoch=stop_at_2, **SCORED
        )
    assert sorted(p.name for p in state.glob("epoch_*")) == ["epoch_2"]  # keep_last_n 1: epoch 1 pruned
    seen = []
    caplog.set_level("INFO")
    resumed = train(
        TINY,
        CFG,
        tr,
        va,
        epochs=4,
        state_dir=str(state),
        state_policy=policy(state),
        on_epoch=lambda e, s: seen.append(e),
        **SCORED,
    )
    assert resumed.resumed_from == 2 and seen == [3, 4]
    assert "resuming from" in caplog.text and "epoch_2" in caplog.text
    _same(reference, resumed, va)
    # a finished state: a rerun trains nothing and returns the same model
    again = train(
        TINY,
        CFG,
        tr,
        va,
        epochs=4,
        state_dir=str(state),
        state_policy=policy(state),
        on_epoch=lambda e, s: seen.append(e),
        **SCORED,
    )
    assert again.resumed_from == 4 and seen == [3, 4]
    _same(reference, again, va)


def _flip(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def test_corrupt_or_truncated_states_are_skipped_in_favour_of_older_ones(data, reference, tmp_path, caplog):
    tr, va = data
    state = tmp_path / "state"
    keep_all = policy(state, keep_last_n=10, keep_best_k=0)
    with pytest.raises(Interrupt):
        train(
            TINY,
            CFG,
            tr,
            va,
            epochs=4,
            state_dir=str(state),
            state_policy=keep_all,
            on_epoch=lambda e, s: (_ for _ in ()).throw(Interrupt) if e == 3 else None,
            **SCORED,
        )
    assert sorted(p.name for p in state.glob("epoch_*")) == ["epoch_1", "epoch_2", "epoch_3"]
    _flip(state / "epoch_3" / OPTIMIZER)  # corrupt
    with open(state / "epoch_2" / "model.safetensors", "r+b") as fh:  # truncated
        fh.truncate(100)
    caplog.set_level("INFO")
    res = train(TINY, CFG, tr, va, epochs=4, state_dir=str(state), state_policy=keep_all, **SCORED)
    assert res.resumed_from == 1
    assert f"{state / 'epoch_3'}" in caplog.text and "sha256 mismatch" in caplog.text and OPTIMIZER in caplog.text
    assert "size mismatch" in caplog.text and "model.safetensors" in caplog.text
    _same(reference, res, va)
    # none valid: start at epoch 1 (and say so)
    for p in state.glob("epoch_*"):
        (p / "manifest.json").unlink()
    caplog.clear()
    res = train(TINY, CFG, tr, va, epochs=4, state_dir=str(state), state_policy=policy(state), **SCORED)
    assert res.resumed_from == 0 and "manifest missing" in caplog.text and "no valid training state" in caplog.text
    _same(reference, res, va)


def test_unreadable_state_file_is_skipped(data, tmp_path, caplog):
    """A state whose files verify but cannot be read (written by a broken save) counts as invalid."""
    from workflow_lib.config.keys import file_sha256
    from workflow_lib.learning.checkpoint import MANIFEST

    tr, va = data
    state = tmp_path / "state"
    train(TINY, CFG, tr[:48], va, epochs=2, state_dir=str(state), state_policy=policy(state, keep_last_n=2), **SCORED)
    bad = state / "epoch_2" / TRAINER
    bad.write_text("{not json")
    manifest = json.loads((state / "epoch_2" / MANIFEST).read_text())
    manifest["files"][TRAINER] = {"sha256": file_sha256(bad), "bytes": bad.stat().st_size}
    (state / "epoch_2" / MANIFEST).write_text(json.dumps(manifest))
    caplog.set_level("INFO")
    res = train(
        TINY, CFG, tr[:48], va, epochs=2, state_dir=str(state), state_policy=policy(state, keep_last_n=2), **SCORED
    )
    assert res.resumed_from == 1 and "unreadable (JSONDecodeError" in caplog.text


def test_state_of_another_run_is_refused_with_the_fix(data, tmp_path):
    tr, va = data
    state = tmp_path / "state"
    pol = policy(state)
    train(TINY, CFG, tr[:48], va, epochs=2, state_dir=str(state), state_policy=pol, **SCORED)
    other = CFG.replace(learning_rate=1e-4)
    with pytest.raises(StateMismatch) as exc:
        train(TINY, other, tr[:48], va, epochs=2, state_dir=str(state), state_policy=pol, **SCORED)
    msg = str(exc.value)
    assert str(state / "epoch_2") in msg and "learning_rate: stored 0.003, now 0.0001" in msg
    assert f"delete the folder {str(state)!r}" in msg and "--forcerun" in msg
    with pytest.raises(StateMismatch, match="epochs: stored 2, now 3"):  # another run length
        train(TINY, CFG, tr[:48], va, epochs=3, state_dir=str(state), state_policy=pol, **SCORED)
    with pytest.raises(StateMismatch, match=r"data: stored"):  # another fold's rows
        train(TINY, CFG, tr[48:96], va, epochs=2, state_dir=str(state), state_policy=pol, **SCORED)
    with pytest.raises(StateMismatch, match="head_config.head: stored 'linear', now 'mlp'"):
        train(TINY, CFG.replace(head="mlp"), tr[:48], va, epochs=2, state_dir=str(state), state_policy=pol, **SCORED)
    # the model checkpoint inside loads; loading it as another trial's model is refused
    model, _, info = load_checkpoint(state, expect={"backbone_spec": TINY, "train_cfg": CFG})
    assert info["meta"] == {"kind": "training_state", "epoch": 2} and not model.training
    with pytest.raises(CheckpointError, match=r"another model configuration.*learning_rate: stored 0.003, now 0.0001"):
        load_checkpoint(state, expect={"train_cfg": other})


def test_retention_is_applied_after_every_save(data, tmp_path):
    tr, va = data
    state = tmp_path / "state"
    res = train(
        TINY,
        CFG,
        tr[:64],
        va,
        epochs=5,
        state_dir=str(state),
        state_policy=policy(state, keep_last_n=2, keep_best_k=1),
        **SCORED,
    )
    scores = {h["epoch"]: h["val_score"] for h in res.history}
    expected = retention.keep_epochs(scores, keep_last_n=2, keep_best_k=1)
    assert {int(p.name.split("_")[1]) for p in state.glob("epoch_*")} == expected
    best_file = (state / "epoch_5" / BEST).is_file()
    assert best_file == (res.best_epoch != 5)  # the best epoch's weights ride along when they are older
    # n = k = 0 still keeps the newest; disabled writes nothing
    zero = tmp_path / "zero"
    train(
        TINY, CFG, tr[:32], None, epochs=3, state_dir=str(zero), state_policy=policy(zero, keep_last_n=0, keep_best_k=0)
    )
    assert [p.name for p in zero.glob("epoch_*")] == ["epoch_3"]
    off = tmp_path / "off"
    train(TINY, CFG, tr[:32], None, epochs=1, state_dir=str(off), state_policy=policy(off, enabled=False))
    assert not off.exists()


def test_a_held_lock_means_no_state_and_a_stale_temp_folder_is_ignored(data, tmp_path, caplog):
    tr, _ = data
    state = tmp_path / "state"
    with locked(state) as first:
        assert first
        with locked(state) as second:
            assert not second
        caplog.set_level("INFO")
        train(TINY, CFG, tr[:32], None, epochs=1, state_dir=str(state), state_policy=policy(state))
        assert "in use by another process" in caplog.text and not list(state.glob("epoch_*"))
    (state / ".epoch_1.tmp-999-deadbeef").mkdir()  # a save killed before its rename
    (state / ".epoch_1.tmp-999-deadbeef" / "model.safetensors").write_bytes(b"half")
    res = train(TINY, CFG, tr[:32], None, epochs=1, state_dir=str(state), state_policy=policy(state))
    assert res.resumed_from == 0 and sorted(p.name for p in state.iterdir()) == [".lock", "epoch_1"]


def test_preflight_refuses_to_train_without_disk_space(data, tmp_path, monkeypatch):
    import shutil

    from workflow_lib.persistence.storage import StorageError

    tr, _ = data
    state = tmp_path / "state"
    usage = shutil.disk_usage(tmp_path)
    monkeypatch.setattr(shutil, "disk_usage", lambda p: usage._replace(free=1000))
    on = policy(state, storage={"preflight": True, "monitor": False}, keep_last_n=1, keep_best_k=1)
    with pytest.raises(StorageError, match="Not enough disk space to save the training state of train") as exc:
        train(TINY, CFG, tr[:32], None, epochs=1, state_dir=str(state), state_policy=on)
    assert "keep_last_n (now 1) -> 0" in str(exc.value) and f"results_dir (now {str(tmp_path)!r})" in str(exc.value)
    assert not list(state.glob("epoch_*"))
    train(
        TINY,
        CFG,
        tr[:32],
        None,
        epochs=1,
        state_dir=str(state),
        state_policy=policy(state, storage={"preflight": False, "monitor": False}, keep_last_n=1, keep_best_k=1),
    )
    assert [p.name for p in state.glob("epoch_*")] == ["epoch_1"]


def _weights_equal(a, b) -> bool:
    sa, sb = a.model.state_dict(), b.model.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_length_grouped_fp16_run_resumes_to_the_same_weights_and_scale(data, tmp_path, monkeypatch):
    """group_by_length batches and the fp16 GradScaler are resumable state. The scaler starts so high
    that steps overflow and are skipped, and grows every 3 steps: its scale shapes the weights (no
    validation, so the result is the last epoch's weights)."""
    from workflow_lib.learning.precision import _can_autocast

    if not _can_autocast(torch.device("cpu"), torch.float16):
        pytest.skip(f"torch {torch.__version__} has no float16 CPU autocast")

    class Jumpy(torch.amp.GradScaler):
        def __init__(self, device="cpu"):
            super().__init__(device, init_scale=2.0**40, growth_interval=3)

    monkeypatch.setattr(torch.amp, "GradScaler", Jumpy)
    tr, _ = data
    cfg = CFG.replace(precision="fp16", group_by_length=True)
    reference = train(TINY, cfg, tr, None, epochs=4)
    state = tmp_path / "state"
    with pytest.raises(Interrupt):
        train(
            TINY,
            cfg,
            tr,
            None,
            epochs=4,
            state_dir=str(state),
            state_policy=policy(state),
            on_epoch=lambda e, s: (_ for _ in ()).throw(Interrupt) if e == 2 else None,
        )
    saved = torch.load(state / "epoch_2" / OPTIMIZER, weights_only=True)["scaler"]
    assert saved is not None and saved["scale"] < 2.0**40  # steps were skipped and the scale backed off
    resumed = train(TINY, cfg, tr, None, epochs=4, state_dir=str(state), state_policy=policy(state))
    assert resumed.resumed_from == 2 and _weights_equal(reference, resumed)
    assert without_timings(reference.history) == without_timings(resumed.history)
    # the control: a resume that forgets the scale (starts again at 2**40) trains other weights
    state2 = tmp_path / "state2"
    with pytest.raises(Interrupt):
        train(
            TINY,
            cfg,
            tr,
            None,
            epochs=4,
            state_dir=str(state2),
            state_policy=policy(state2),
            on_epoch=lambda e, s: (_ for _ in ()).throw(Interrupt) if e == 2 else None,
        )
    monkeypatch.setattr(Jumpy, "load_state_dict", lambda self, state: None)
    forgetful = train(TINY, cfg, tr, None, epochs=4, state_dir=str(state2), state_policy=policy(state2))
    assert forgetful.resumed_from == 2 and not _weights_equal(reference, forgetful)


@pytest.mark.parametrize("precision", ["bf16", "fp32"])
def test_states_without_a_scaler_store_none_and_resume(data, tmp_path, precision):
    tr, va = data
    cfg = CFG.replace(precision=precision, group_by_length=True)
    state = tmp_path / "state"
    with pytest.raises(Interrupt):
        train(
            TINY,
            cfg,
            tr[:64],
            va,
            epochs=3,
            state_dir=str(state),
            state_policy=policy(state),
            on_epoch=lambda e, s: (_ for _ in ()).throw(Interrupt) if e == 1 else None,
            **SCORED,
        )
    assert torch.load(state / "epoch_1" / OPTIMIZER, weights_only=True)["scaler"] is None
    resumed = train(TINY, cfg, tr[:64], va, epochs=3, state_dir=str(state), state_policy=policy(state), **SCORED)
    assert resumed.resumed_from == 1 and _weights_equal(resumed, train(TINY, cfg, tr[:64], va, epochs=3, **SCORED))


# -- EpochStates and its StatePolicy, without a training loop ------------------------------------


def test_state_policy_of_a_resolved_config_picks_its_three_parts(tmp_path):
    import dataclasses

    from workflow_lib import config

    cfg = config.load(
        REPO / "config" / "config.yaml",
        overrides={
            "results_dir": str(tmp_path / "res"),
            "checkpoints": {"keep_last_n": 3},
            "storage": {"monitor": False},
        },
    )
    sp = StatePolicy.of(cfg)
    assert sp.checkpoints is cfg.checkpoints and sp.storage is cfg.storage and sp.results_dir == str(tmp_path / "res")
    assert (sp.checkpoints.keep_last_n, sp.checkpoints.keep_best_k, sp.storage.monitor) == (3, 1, False)
    assert isinstance(sp.checkpoints, Checkpoints) and isinstance(sp.storage, Storage)
    with pytest.raises(dataclasses.FrozenInstanceError):
        sp.results_dir = "elsewhere"


def _attached(states, tmp_path):
    """Attach a tiny model's run to ``states`` (as training.train does)."""
    from workflow_lib.learning.models.model import build_model

    torch.manual_seed(0)
    model, tok = build_model(TINY, CFG, n_labels=9)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: 1.0)
    states.attach(
        spec=TINY,
        train_cfg=CFG,
        model=model,
        tokenizer=tok,
        optimizer=opt,
        scheduler=sched,
        generator=torch.Generator().manual_seed(0),
        has_val=False,
        identity=dict(
            epochs=1, patience=None, metric=None, objective=None, train_records=[{"post_id": "p1"}], val_records=None
        ),
    )
    trainer = {
        "history": [{"epoch": 1, "val_score": None}],
        "best_score": None,
        "best_epoch": 1,
        "stale": 0,
        "finished": True,
    }
    return trainer


@pytest.mark.parametrize("switch", [False, True])
def test_epoch_states_honour_storage_preflight_and_monitor(tmp_path, monkeypatch, switch):
    """storage.preflight / storage.monitor decide whether EpochStates runs the preflight and the monitor;
    storage.preflight itself always checks."""
    from workflow_lib.persistence import storage

    calls = []
    real = storage.preflight
    monkeypatch.setattr(storage, "preflight", lambda *a, **k: calls.append((a, k)) or real(*a, **k))
    state = tmp_path / "state"
    pol = policy(
        state, storage={"preflight": switch, "monitor": switch, "monitor_interval_s": 30}, keep_last_n=2, keep_best_k=1
    )
    with EpochStates.open(str(state), pol, "unit run") as states:
        assert type(states) is EpochStates and (states.keep_last_n, states.keep_best_k) == (2, 1)
        trainer = _attached(states, tmp_path)
        states.preflight_run()
        assert states.save(1, trainer=trainer, best_state=None) > 0
        monitor = states.monitor
        if switch:
            assert monitor._thread is not None and monitor.interval_s == 30.0 and monitor.path == str(state)
            assert monitor.checkpoints is pol.checkpoints and monitor.results_dir == str(tmp_path)
        else:
            assert monitor is None
    assert [p.name for p in state.glob("epoch_*")] == ["epoch_1"]
    if not switch:
        assert calls == []
        return
    assert monitor._thread is None  # stopped with the block
    (run_args, run_kw), (save_args, save_kw) = calls
    assert run_args[0] == save_args[0] == state and run_args[1] == 3 * save_args[1] > 0  # 2 + 1 states, then 1
    assert run_kw == dict(
        what="the training state of unit run (policy: keep_last_n 2, keep_best_k 1)",
        results_dir=str(tmp_path),
        checkpoints=pol.checkpoints,
    )
    assert save_kw["what"] == "the epoch 1 training state of unit run"


def test_epoch_states_off_without_a_folder_or_when_disabled_and_a_policy_is_required(tmp_path):
    with EpochStates.open(None, None, "unit run") as states:
        assert type(states) is NoStates and states.save(1, trainer={}, best_state=None) is None
    off = tmp_path / "off"
    with EpochStates.open(str(off), policy(off, enabled=False), "unit run") as states:
        assert type(states) is NoStates
    assert not off.exists()
    with (
        pytest.raises(
            TypeError,
            match=r"unit run: saving training states in .* needs a StatePolicy "
            r"\(StatePolicy.of\(cfg\) of the resolved config\), got dict",
        ),
        EpochStates.open(str(off), {"checkpoints": {}}, "unit run"),
    ):
        pass
