"""The training benchmark (python -m devbench training): realistic lengths, the four loops, its JSON line.

No timing assertions: the benchmark prints ratios, these tests check what it runs and reports.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from devbench import training as bench
from workflow_lib.learning.examples import Examples
from workflow_lib.learning.models.model import build_model


@pytest.fixture()
def threads():
    """The benchmark sets torch's threads; give the process its own number back afterwards."""
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def _json_line(out: str) -> dict:
    lines = [ln for ln in out.splitlines() if ln.startswith('{"bench": "training"')]
    assert len(lines) == 1, out
    return json.loads(lines[0])


def test_realistic_word_counts_follow_redsm5():
    counts = bench.realistic_word_counts(200_000, seed=3)
    assert counts.min() == 2 and counts.max() == 6990  # the real set's range, both ends reached
    assert abs(counts.mean() - 294.7) / 294.7 < 0.03  # its mean
    assert 120 < np.median(counts) < 170  # a long tail: the median far below the mean
    assert 0.005 < (counts < 10).mean() < 0.03  # a few very short posts
    assert 0.02 < (counts > 1000).mean() < 0.10
    assert np.array_equal(counts, bench.realistic_word_counts(200_000, seed=3))
    assert not np.array_equal(counts[:100], bench.realistic_word_counts(100, seed=4))


def test_realistic_posts_have_the_drawn_lengths_and_real_words():
    texts, labels = bench.realistic_posts(200, seed=0)
    assert [len(t.split()) for t in texts] == bench.realistic_word_counts(200, seed=0).tolist()
    assert labels.shape == (200, 9) and 0.1 < labels.mean() < 0.3
    _, tok = build_model(bench._spec("tiny", 128), bench.TRAIN_CFG)
    tokens = sum(len(ids) for ids in tok(texts, add_special_tokens=False, verbose=False)["input_ids"])
    assert 1.2 < tokens / sum(len(t.split()) for t in texts) < 1.45  # ~1.3 MiniLM tokens per word, like Reddit text
    for text, row in zip(texts, labels):  # a label is 1 only when its sentence is in the post
        for j in np.flatnonzero(row):
            assert any(p[0].upper() + p[1:] + "." in text for p in bench._PHRASES[bench.SYMPTOMS[j]])


def test_realistic_mode_prints_three_ratios_and_the_settings(capsys, threads):
    assert (
        bench.main(
            [
                "--lengths",
                "realistic",
                "--n-posts",
                "40",
                "--rounds",
                "1",
                "--threads",
                "1",
                "--max-length",
                "64",
                "--batch-size",
                "8",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    line = _json_line(out)
    assert (
        set(line["ratios"]) == set(line["ratios_cpu"]) == {"ours_vs_bare", "ours_vs_trainer", "ours_vs_trainer_grouped"}
    )
    assert all(v > 0 for v in line["ratios"].values())
    assert line["targets"] == {"ours_vs_bare": 0.95, "ours_vs_trainer": 1.2, "ours_vs_trainer_grouped": 1.0}
    assert set(line["median_samples_per_s"]) == {"ours", "bare", "trainer", "trainer_grouped"}
    s = line["settings"]
    assert (s["backbone"], s["lengths"], s["n_posts"], s["max_length"], s["batch_size"], s["threads"]) == (
        "tiny",
        "realistic",
        40,
        64,
        8,
        1,
    )
    assert s["tokens_per_row_after_truncation"]["max"] == 64 and s["share_of_posts_truncated"] > 0.5
    assert s["precision"]["ours"].startswith("fp32") and s["precision"]["trainer"].startswith("fp32")
    assert s["precision"]["bare"] == "fp32"
    assert "group_by_length true" in s["batches"]["ours"] and s["batches"]["bare"] == "the same batches as ours"
    for name in ("HF Trainer group_by_length", "RATIO ours / bare PyTorch", "RATIO ours / HF Trainer "):
        assert name in out


def test_bare_loop_trains_on_exactly_our_batches(monkeypatch):
    texts, labels = bench.realistic_posts(40, seed=2)
    seen: list[list[int]] = []
    original = Examples.batch

    def spy(self, idx, training=False):
        seen.append(idx.tolist())
        return original(self, idx, training)

    monkeypatch.setattr(Examples, "batch", spy)
    cfg = bench.TRAIN_CFG.replace(batch_size=8)
    spec = bench._spec("tiny", 64)
    bench.run_ours(spec, cfg, texts, labels)
    ours, seen[:] = list(seen), []
    bench.run_bare(spec, cfg, texts, labels)
    assert ours == seen and len(ours) == 5
    lengths = [min(64, len(ids)) for ids in build_model(spec, cfg)[1](texts, verbose=False)["input_ids"]]
    first = [lengths[i] for i in ours[0]]
    assert max(first) == max(lengths)  # grouped: the longest batch first, and its rows share a length bracket
    assert sorted(sum(ours, [])) == list(range(40))


@pytest.mark.parametrize("precision, autocast", [("bf16", True), ("fp32", False)])
def test_every_loop_runs_in_the_chosen_precision(precision, autocast, monkeypatch, threads):
    import workflow_lib.learning.training as training

    seen: dict[str, set] = {}
    current = {"loop": None}

    def recording_build_model(*args, **kwargs):
        model, tok = build_model(*args, **kwargs)
        model.register_forward_pre_hook(
            lambda m, a: seen.setdefault(current["loop"], set()).add(
                (m.training, torch.is_autocast_enabled("cpu") and torch.get_autocast_dtype("cpu") == torch.bfloat16)
            )
        )
        return model, tok

    monkeypatch.setattr(bench, "build_model", recording_build_model)
    monkeypatch.setattr(training, "build_model", recording_build_model)
    texts, labels = bench.realistic_posts(16, seed=1)
    cfg = bench.TRAIN_CFG.replace(batch_size=8, precision=precision)
    for name, loop in bench.LOOPS.items():
        current["loop"] = name
        loop(bench._spec("tiny", 32), cfg, texts, labels)
    assert seen == {name: {(True, autocast)} for name in bench.LOOPS}  # every training forward, bf16 autocast or not


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--lengths", "realistic", "--words", "50"], "--words 50 sets the length of --lengths fixed"),
        (["--n-posts", "0"], "--n-posts must be >= 1, got 0"),
        (["--lengths", "long"], "invalid choice: 'long'"),
        (["--precision", "fp16"], "invalid choice: 'fp16'"),
    ],
)
def test_bad_arguments_name_the_flag_and_the_fix(argv, message, capsys):
    with pytest.raises(SystemExit) as exc:
        bench.main(argv)
    assert exc.value.code == 2
    assert message in capsys.readouterr().err


# -- --modes: the sentence model against post windows -------------------------------------------


def test_sentence_records_carry_the_symptom_sentences_like_prepared_posts():
    from workflow_lib.data.align import split_sentences
    from workflow_lib.data.prepare import sentence_label_matrix

    texts, labels = bench.realistic_posts(30, seed=4)
    records = bench.sentence_records(texts, labels)
    assert [r["text"] for r in records] == texts and [r["labels"] for r in records] == labels.tolist()
    for rec in records:
        assert rec["sentences"] == [list(s) for s in split_sentences(rec["text"])]
        codes = sentence_label_matrix(rec)
        for k, (a, b) in enumerate(rec["sentences"]):
            sentence = rec["text"][a:b].rstrip(".").lower()
            for j, name in enumerate(bench.SYMPTOMS):
                # an evidence sentence exactly where a labelled symptom's sentence is
                assert codes[k, j] == int(bool(rec["labels"][j]) and sentence in bench._PHRASES[name])
        assert set(rec["sentence_labels"]) == {bench.SYMPTOMS[j] for j in np.flatnonzero(codes.any(axis=0))}
    assert sum(len(p) for r in records for p in r["sentence_labels"].values()) >= labels.sum()


def test_modes_compare_the_sentence_model_with_post_windows(capsys, threads, monkeypatch):
    import workflow_lib.learning.training as training

    built: dict[str, list] = {"post": [], "sentences": []}
    original = training.build_examples

    def spy(records, tokenizer, train_cfg, max_length):
        ex = original(records, tokenizer, train_cfg, max_length)
        built[train_cfg.criteria_from].append((train_cfg, ex))
        return ex

    monkeypatch.setattr(training, "build_examples", spy)
    argv = ["--lengths", "realistic", "--modes", "post,sentences", "--n-posts", "6", "--rounds", "1"]
    assert bench.main([*argv, "--threads", "1", "--max-length", "32", "--batch-size", "4"]) == 0
    out = capsys.readouterr().out
    lines = [ln for ln in out.splitlines() if ln.startswith('{"bench": "training_modes"')]
    assert len(lines) == 1, out
    line = json.loads(lines[0])
    figures = {"epoch", "epoch_cpu", "setup", "setup_cpu"}
    assert set(line["ratios"]) == set(line["ratios_best"]) == figures and line["target"] == 1.3
    assert all(0 < v < float("inf") for v in [*line["ratios"].values(), *line["ratios_best"].values()])
    assert set(line["ms_per_post"]) == {"post", "sentences"}
    for mode in ("post", "sentences"):
        assert set(line["ms_per_post"][mode]) == figures and all(v > 0 for v in line["ms_per_post"][mode].values())
    ratio = line["ms_per_post"]["sentences"]["epoch"] / line["ms_per_post"]["post"]["epoch"]
    assert line["ratios"]["epoch"] == pytest.approx(ratio, rel=1e-3)
    s = line["settings"]
    assert (s["modes"], s["long_posts"], s["n_posts"], s["max_length"], s["batch_size"]) == (
        ["post", "sentences"],
        "windows",
        6,
        32,
        4,
    )
    assert s["freeze_layers"] == 1  # the main job's 5, at most all but the top layer of the tiny BERT's 2
    assert s["sentences_per_post"]["mean"] > s["windows_per_post"] > 1
    assert "RATIO sentences / post, epoch, wall" in out
    # warm-up + one round per mode, each with the main job's settings and its own criteria_from
    assert len(built["post"]) == len(built["sentences"]) == 2
    for mode, runs in built.items():
        for cfg, ex in runs:
            assert (cfg.criteria_from, cfg.long_posts, cfg.freeze_layers, cfg.epochs) == (mode, "windows", 1, 1)
            assert (ex.units is not None) == (mode == "sentences")
    units = built["sentences"][-1][1].units
    assert len(units) > 6 and units.targets.sum() > 0  # many sentences per post, evidence sentences among them


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--modes", "post,post"], "give each of post, sentences at most once"),
        (["--modes", "words"], "give each of post, sentences at most once"),
        (["--freeze-layers", "2"], "--freeze-layers sets the modes' training.freeze_layers; add --modes"),
        (["--modes", "post", "--freeze-layers", "-1"], "--freeze-layers must be >= 0, got -1"),
    ],
)
def test_bad_mode_arguments_name_the_flag_and_the_fix(argv, message, capsys):
    with pytest.raises(SystemExit) as exc:
        bench.main(argv)
    assert exc.value.code == 2
    assert message in capsys.readouterr().err
