"""Retention: property-based invariants of the per-run policy, and the folder pruning."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from workflow_lib.learning.retention import keep_epochs, prune_run, release

scores_st = st.lists(st.one_of(st.none(), st.sampled_from([0.1, 0.25, 0.5, 0.75, 0.9])), min_size=1, max_size=12)
policy_st = st.tuples(st.integers(0, 4), st.integers(0, 4))


@settings(max_examples=200, deadline=None)
@given(scores_st, policy_st)
def test_per_run_policy_after_every_save(scores, policy):
    """Simulate a run: after each epoch's save the policy runs over what is on disk."""
    n, k = policy
    on_disk: dict[int, float | None] = {}
    for epoch, score in enumerate(scores, start=1):
        on_disk[epoch] = score
        keep = keep_epochs(on_disk, keep_last_n=n, keep_best_k=k, protected=[epoch])
        assert keep and keep <= set(on_disk)  # never zero, never invents epochs
        assert epoch in keep  # the state a resume needs
        assert set(sorted(on_disk)[-n:] if n else []) <= keep  # the newest n
        assert len(keep) <= max(n, 1) + k  # bounded disk use
        on_disk = {e: s for e, s in on_disk.items() if e in keep}
    # the best epochs of the whole run survive: each of the k best scores is still on disk
    seen = dict(enumerate(scores, start=1))
    best = sorted((e for e, s in seen.items() if s is not None), key=lambda e: (-seen[e], e))[:k]
    assert set(best) <= set(on_disk)


def test_per_run_policy_examples():
    scores = {1: 0.2, 2: 0.9, 3: 0.5, 4: 0.6}
    assert keep_epochs(scores, keep_last_n=1, keep_best_k=1) == {2, 4}
    assert keep_epochs(scores, keep_last_n=2, keep_best_k=0) == {3, 4}
    assert keep_epochs(scores, keep_last_n=0, keep_best_k=0) == {4}  # never zero
    assert keep_epochs({1: 0.5, 2: 0.5, 3: 0.1}, keep_last_n=0, keep_best_k=1) == {1, 3}  # tie: the earlier
    assert keep_epochs({1: None, 2: None}, keep_last_n=0, keep_best_k=3) == {2}
    assert keep_epochs({}, keep_last_n=1, keep_best_k=1) == set()


def test_prune_run_and_release_on_real_folders(tmp_path):
    state = tmp_path / "state"
    for e in (1, 2, 3, 4):
        (state / f"epoch_{e}").mkdir(parents=True)
        (state / f"epoch_{e}" / "model.safetensors").write_bytes(b"x" * e)
    (state / ".epoch_5.tmp-123-abcd").mkdir()  # a save killed half-way
    (state / ".lock").write_text("")
    deleted = prune_run(state, {1: 0.2, 2: 0.9, 3: 0.5, 4: 0.6}, keep_last_n=1, keep_best_k=1, protected=[4])
    assert sorted(p.name for p in deleted) == [".epoch_5.tmp-123-abcd", "epoch_1", "epoch_3"]
    assert sorted(p.name for p in state.iterdir()) == [".lock", "epoch_2", "epoch_4"]
    result = tmp_path / "metrics.json"
    assert not release(state, str(result)) and state.is_dir()  # the result is not written yet: keep
    result.write_text("{}")
    assert release(state, str(result)) and not state.exists()
    assert not release(state)
