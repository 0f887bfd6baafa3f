"""The batches of one training epoch: a random order, optionally grouped by length (``training.group_by_length``).

Grouping follows HF Trainer's ``group_by_length`` (transformers.trainer_pt_utils.get_length_grouped_indices):
a random permutation of the rows is cut into mega-batches of ``batch_size * mega_batch_mult`` rows
(default: as many as make four mega-batches, at most 50 batches per mega-batch, at least one), each
mega-batch is sorted by length, longest first (ties keep the permutation's order), and cut into
batches. Rows of similar length then share a batch, so dynamic padding pads far less on uneven posts,
while the mix across mega-batches stays random. One difference from HF: HF swaps the single longest row
into the first batch; here the whole batch holding the longest row moves to the front, so every batch
stays a slice of one sorted mega-batch. Either way an out-of-memory error comes at the first step.

Both orders draw exactly one ``torch.randperm(n, generator=generator)``, so the batches depend only on
the generator's state (saved with every training state: a resumed run gets the same batches), and the
generator advances the same way with or without grouping.
"""

from __future__ import annotations

import torch


def random_batches(n: int, batch_size: int, generator: torch.Generator) -> list[torch.Tensor]:
    """Row indices of each batch in a fresh random order (the last batch may be smaller)."""
    return list(torch.randperm(n, generator=generator).split(int(batch_size)))


def default_mega_batch_mult(n: int, batch_size: int) -> int:
    """HF's default: batches per mega-batch so that there are about four mega-batches, at most 50, at least 1."""
    return max(1, min(n // (batch_size * 4), 50))


def length_grouped_batches(
    lengths: torch.Tensor, batch_size: int, generator: torch.Generator, mega_batch_mult: int | None = None
) -> list[torch.Tensor]:
    """Row indices of each batch, grouped by ``lengths`` (1-D: one length per row), see the module docstring."""
    lengths = torch.as_tensor(lengths)
    if lengths.ndim != 1:
        raise ValueError(f"lengths must be 1-D (one length per row), got shape {tuple(lengths.shape)}")
    batch_size = int(batch_size)
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    n = int(lengths.shape[0])
    mult = default_mega_batch_mult(n, batch_size) if mega_batch_mult is None else int(mega_batch_mult)
    if mult < 1:
        raise ValueError(f"mega_batch_mult must be >= 1, got {mult}")
    order = torch.randperm(n, generator=generator)
    batches: list[torch.Tensor] = []
    for mega in order.split(batch_size * mult) if n else ():
        inner = torch.sort(lengths[mega], descending=True, stable=True).indices
        batches.extend(mega[inner].split(batch_size))
    if batches:
        longest = max(range(len(batches)), key=lambda i: int(lengths[batches[i][0]]))  # first of the maxima
        batches.insert(0, batches.pop(longest))
    return batches


def epoch_batches(
    lengths: torch.Tensor, batch_size: int, generator: torch.Generator, *, group_by_length: bool
) -> list[torch.Tensor]:
    """One epoch's batches: length-grouped, or the plain random order (``group_by_length`` false)."""
    if group_by_length:
        return length_grouped_batches(lengths, batch_size, generator)
    return random_batches(len(lengths), batch_size, generator)
