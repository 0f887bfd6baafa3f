"""Retention: property-based invariants of the per-run and per-study policies, and the folder pruning."""
from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from workflow_lib.retention import Stored, keep_epochs, keep_study, prune_run, release

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
        assert keep and keep <= set(on_disk)                     # never zero, never invents epochs
        assert epoch in keep                                     # the state a resume needs
        assert set(sorted(on_disk)[-n:] if n else []) <= keep    # the newest n
        assert len(keep) <= max(n, 1) + k                        # bounded disk use
        on_disk = {e: s for e, s in on_disk.items() if e in keep}
    # the best epochs of the whole run survive: each of the k best scores is still on disk
    seen = {e: s for e, s in enumerate(scores, start=1)}
    best = sorted((e for e, s in seen.items() if s is not None), key=lambda e: (-seen[e], e))[:k]
    assert set(best) <= set(on_disk)


def test_per_run_policy_examples():
    scores = {1: 0.2, 2: 0.9, 3: 0.5, 4: 0.6}
    assert keep_epochs(scores, keep_last_n=1, keep_best_k=1) == {2, 4}
    assert keep_epochs(scores, keep_last_n=2, keep_best_k=0) == {3, 4}
    assert keep_epochs(scores, keep_last_n=0, keep_best_k=0) == {4}           # never zero
    assert keep_epochs({1: 0.5, 2: 0.5, 3: 0.1}, keep_last_n=0, keep_best_k=1) == {1, 3}  # tie: the earlier
    assert keep_epochs({1: None, 2: None}, keep_last_n=0, keep_best_k=3) == {2}
    assert keep_epochs({}, keep_last_n=1, keep_best_k=1) == set()


stored_st = st.lists(st.tuples(st.integers(0, 5), st.one_of(st.none(), st.sampled_from([0.2, 0.5, 0.8])),
                               st.integers(1, 100)), min_size=1, max_size=14)


def _items(rows):
    items, trial_score = [], {}
    for i, (trial, score, size) in enumerate(rows):
        score = trial_score.setdefault(trial, score)  # one score per trial
        items.append(Stored(name=f"c{i}", trial=f"t{trial}", score=score, bytes=size, created=float(i)))
    return items


@settings(max_examples=150, deadline=None)
@given(stored_st, st.integers(0, 3), st.one_of(st.none(), st.integers(0, 400)), st.data())
def test_per_study_policy_invariants(rows, k, cap, data):
    items = _items(rows)
    names = [i.name for i in items]
    resume_needs = set(data.draw(st.lists(st.sampled_from(names), max_size=2)))
    keep = keep_study(items, keep_best_k=k, max_bytes=cap, protected=resume_needs)
    assert keep and keep <= set(names)                          # never zero
    assert resume_needs <= keep                                 # protected: a resume needs it
    scored = [i for i in items if i.score is not None]
    if scored:                                                  # co-best: every trial tied with the best
        top = max(i.score for i in scored)
        assert {i.name for i in scored if i.score == top} <= keep
    protected = resume_needs | ({i.name for i in scored if i.score == max(j.score for j in scored)} if scored else set())
    size = {i.name: i.bytes for i in items}
    by_trial_rank = sorted({i.trial for i in scored}, key=lambda t: (-next(i.score for i in scored if i.trial == t),
                                                                    min(i.created for i in items if i.trial == t)))
    best = set(by_trial_rank[:k])
    assert {i.name for i in items if i.trial not in best} - protected - keep == \
        {i.name for i in items if i.trial not in best} - protected or len(keep) == 1  # non-best pruned
    for name in keep - protected:                               # nothing else survives
        assert next(i.trial for i in items if i.name == name) in best or len(keep) == 1
    if cap is not None:
        over = sum(size[n] for n in keep) > cap
        assert not over or (keep - protected == set() or len(keep) == 1)
        dropped = [i for i in items if i.trial in best and i.name not in keep and i.name not in protected]
        kept_free = [i for i in items if i.name in keep - protected]
        if dropped and kept_free:                               # oldest first
            assert max(i.created for i in dropped) < min(i.created for i in kept_free)
    else:
        assert {i.name for i in items if i.trial in best} <= keep


def test_per_study_policy_examples():
    items = [Stored("a", "t1", 0.5, 10, 1), Stored("b", "t2", 0.8, 10, 2), Stored("c", "t3", 0.8, 10, 3),
             Stored("d", "t4", 0.6, 10, 4), Stored("e", "t5", None, 10, 5)]
    assert keep_study(items, keep_best_k=1) == {"b", "c"}                  # co-best t3 is protected
    assert keep_study(items, keep_best_k=3) == {"b", "c", "d"}
    assert keep_study(items, keep_best_k=3, max_bytes=25) == {"b", "c"}    # over the cap: oldest non-protected
    assert keep_study(items, keep_best_k=0, protected=["e"]) == {"b", "c", "e"}
    assert keep_study([Stored("x", "t1", None, 10, 1), Stored("y", "t2", None, 99, 2)], keep_best_k=0,
                      max_bytes=1) == {"y"}                                 # never zero: the newest


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
