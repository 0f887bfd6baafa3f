"""Length-grouped batches (HF Trainer's group_by_length) and the plain random order of one epoch."""

from __future__ import annotations

import pytest
import torch

from workflow_lib.learning.batching import (
    default_mega_batch_mult,
    epoch_batches,
    length_grouped_batches,
    random_batches,
)


def _lengths(n=300, seed=0):
    """Skewed lengths like real posts: mostly short, a long tail (3-503)."""
    return (torch.rand(n, generator=torch.Generator().manual_seed(seed)) ** 3 * 500 + 3).long()


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


def test_random_order_is_todays_randperm_split():
    got = epoch_batches(torch.arange(37), 8, _gen(5), group_by_length=False)
    want = torch.randperm(37, generator=_gen(5)).split(8)
    assert len(got) == len(want) == 5 and all(torch.equal(a, b) for a, b in zip(got, want))
    assert [len(b) for b in random_batches(10, 4, _gen(0))] == [4, 4, 2]


@pytest.mark.parametrize("n,bs,mult", [(300, 16, None), (300, 16, 3), (17, 16, None), (5, 1, 2), (64, 16, 1)])
def test_grouped_batches_cover_every_row_once_sorted_inside_mega_batches(n, bs, mult):
    lengths = _lengths(n)
    batches = length_grouped_batches(lengths, bs, _gen(1), mega_batch_mult=mult)
    flat = torch.cat(batches)
    assert sorted(flat.tolist()) == list(range(n))
    assert len(batches) == -(-n // bs) and all(1 <= len(b) <= bs for b in batches)
    assert sum(len(b) < bs for b in batches) <= 1  # only the last batch of the last mega-batch is short
    # every batch is sorted longest first, and the first one holds the longest row
    for b in batches:
        assert (lengths[b][:-1] >= lengths[b][1:]).all()
    assert int(lengths[batches[0][0]]) == int(lengths.max())


def test_matches_hf_get_length_grouped_indices():
    """Same permutation, mega-batches and stable sort as transformers. HF swaps the longest row alone
    into the first batch (two batches change) where we move its whole batch to the front."""
    from transformers.trainer_pt_utils import get_length_grouped_indices

    lengths = _lengths(200, 3)
    bs, mult = 8, 5
    identical = 0
    for seed in range(12):
        ours = [b.tolist() for b in length_grouped_batches(lengths, bs, _gen(seed), mega_batch_mult=mult)]
        hf = get_length_grouped_indices(lengths.tolist(), bs, mega_batch_mult=mult, generator=_gen(seed))
        hf_batches = [hf[i : i + bs] for i in range(0, len(hf), bs)]
        if ours == hf_batches:  # the longest row already was in the first mega-batch: nothing moved
            identical += 1
            continue
        diff = {frozenset(b) for b in ours} ^ {frozenset(b) for b in hf_batches}
        assert len(diff) == 4, seed  # only the two batches of HF's swap differ
        kept = [b for b in hf_batches if frozenset(b) not in diff]
        assert [b for b in ours if frozenset(b) not in diff] == kept  # in HF's order
    assert 1 <= identical < 12  # both cases were exercised


def test_deterministic_for_the_generator_state_and_advances_it_like_randperm():
    lengths = _lengths(300)
    a = length_grouped_batches(lengths, 16, _gen(7))
    b = length_grouped_batches(lengths, 16, _gen(7))
    c = length_grouped_batches(lengths, 16, _gen(8))
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    assert not all(torch.equal(x, y) for x, y in zip(a, c))
    g1, g2 = _gen(7), _gen(7)
    length_grouped_batches(lengths, 16, g1)
    torch.randperm(300, generator=g2)
    assert torch.equal(g1.get_state(), g2.get_state())  # grouping on or off: the same stream afterwards


def test_grouping_cuts_padding_on_uneven_lengths():
    lengths = _lengths(640)

    def padded(batches):
        return sum(int(lengths[b].max()) * len(b) for b in batches)

    grouped = padded(length_grouped_batches(lengths, 16, _gen(0)))
    plain = padded(random_batches(640, 16, _gen(0)))
    assert grouped < 0.6 * plain, (grouped, plain, int(lengths.sum()))
    assert grouped >= int(lengths.sum())


def test_default_mega_batch_mult_follows_hf():
    assert default_mega_batch_mult(10, 16) == 1  # tiny data: at least one batch
    assert default_mega_batch_mult(640, 16) == 10  # four mega-batches
    assert default_mega_batch_mult(10**6, 16) == 50  # at most 50 batches per mega-batch


def test_bad_arguments_are_errors():
    with pytest.raises(ValueError, match="lengths must be 1-D"):
        length_grouped_batches(torch.ones(3, 2), 2, _gen())
    with pytest.raises(ValueError, match="batch_size must be >= 1"):
        length_grouped_batches(torch.ones(3), 0, _gen())
    with pytest.raises(ValueError, match="mega_batch_mult must be >= 1"):
        length_grouped_batches(torch.ones(3), 2, _gen(), mega_batch_mult=0)
    assert length_grouped_batches(torch.zeros(0, dtype=torch.long), 4, _gen()) == []
