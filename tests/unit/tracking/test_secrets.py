"""Secret masking: one test per pattern (masked and left-alone cases), nested values, speed."""

import time

import pytest

from workflow_lib.tracking.secrets import is_secret_name, mask, mask_value

HF = "hf_" + "aB3" * 12
GHP = "ghp_" + "Zx9" * 12


@pytest.mark.parametrize(
    "text, expected",
    [
        (f"login with {HF} now", "login with hf_*** now"),
        ("hf_short123", "hf_short123"),  # fewer than 30 characters: not a token
        ("model_hf_config", "model_hf_config"),
    ],
)
def test_huggingface_tokens(text, expected):
    assert mask(text) == expected


@pytest.mark.parametrize(
    "text, expected",
    [
        ("key sk-" + "a1B2" * 8, "key sk-***"),
        ("sk-proj-" + "Q" * 30, "sk-***"),
        ("api_key=abc123&x=1", "api_key=***&x=1"),
        ("apikey: zzzz", "apikey: ***"),
        ("X-API-Key: 0123abcd", "X-API-Key: ***"),
        ("{'api_key': 'v v'}", "{'api_key': '***'}"),
        ("pip install sk-learn task-" + "a" * 30, "pip install sk-learn task-" + "a" * 30),
        ("api_version=2", "api_version=2"),
    ],
)
def test_generic_api_keys(text, expected):
    assert mask(text) == expected


@pytest.mark.parametrize(
    "text, expected",
    [
        ("id AKIAIOSFODNN7EXAMPLE.", "id AKIA***."),
        ("aws_access_key_id=AKIAIOSFODNN7EXAMPLE", "aws_access_key_id=***"),
        ("aws_secret_access_key=wJalrXUtnFEMI/K7MDENG", "aws_secret_access_key=***"),
        ("AKIA1234", "AKIA1234"),
        ("AKIAIOSFODNN7EXAMPLEXX", "AKIAIOSFODNN7EXAMPLEXX"),  # too long for an access key id
    ],
)
def test_aws_keys(text, expected):
    assert mask(text) == expected


@pytest.mark.parametrize(
    "text, expected",
    [
        (f"push {GHP}", "push ghp_***"),
        ("gho_" + "k" * 36, "gho_***"),
        ("github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuv", "github_pat_***"),
        ("ghp_short", "ghp_short"),
    ],
)
def test_github_tokens(text, expected):
    assert mask(text) == expected


@pytest.mark.parametrize(
    "text, expected",
    [
        ("Authorization: Bearer abc.DEF-123_xyz", "Authorization: Bearer ***"),
        ('{"authorization": "Basic dXNlcjpwYXNz"}', '{"authorization": "Basic ***"}'),
        ("header bearer eyJhbGciOiJIUzI1NiJ9.e30.sig", "header bearer ***"),
        ("the bearer of bad news", "the bearer of bad news"),
    ],
)
def test_bearer_tokens(text, expected):
    assert mask(text) == expected


@pytest.mark.parametrize(
    "text, expected",
    [
        ("password=hunter2 next", "password=*** next"),
        ("passwd: s3cr3t", "passwd: ***"),
        ('{"password": "correct horse", "user": "bob"}', '{"password": "***", "user": "bob"}'),
        ("MLFLOW_TRACKING_PASSWORD=abcd", "MLFLOW_TRACKING_PASSWORD=***"),
        ("test passed: 12 cases", "test passed: 12 cases"),
        ("password policy", "password policy"),
    ],
)
def test_passwords(text, expected):
    assert mask(text) == expected


@pytest.mark.parametrize(
    "text, expected",
    [
        ("mail john.doe+x@example.co.uk now", "mail ***@example.co.uk now"),
        ("pkg@1.2.3 and a@b", "pkg@1.2.3 and a@b"),
    ],
)
def test_email_addresses(text, expected):
    assert mask(text) == expected


@pytest.mark.parametrize(
    "text, expected",
    [
        ("https://user:p4ss@host.org/x", "https://user:***@host.org/x"),
        ("postgresql://u:p@h/db", "postgresql://u:***@h/db"),
        ("uri http://user:token@127.0.0.1:5000 ok", "uri http://user:***@127.0.0.1:5000 ok"),
        ("http://127.0.0.1:5000/api/2.0", "http://127.0.0.1:5000/api/2.0"),
        ("sqlite:////work/results/mlflow.db", "sqlite:////work/results/mlflow.db"),
    ],
)
def test_uri_credentials(text, expected):
    assert mask(text) == expected


def test_secret_environment_values(monkeypatch):
    monkeypatch.setenv("HF_TOKEN", "plainvalue42")
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "pw-777777")
    monkeypatch.setenv("TOKENIZERS_PARALLELISM", "parallel-ish")  # not a secret name
    monkeypatch.setenv("MY_API_KEY", "short")  # too short to mask safely
    text = "sent plainvalue42 and pw-777777; parallel-ish short"
    assert mask(text) == "sent <HF_TOKEN:***> and <MLFLOW_TRACKING_PASSWORD:***>; parallel-ish short"
    monkeypatch.setenv("HF_TOKEN", "changedvalue")  # a changed value is picked up
    assert mask("changedvalue plainvalue42") == "<HF_TOKEN:***> plainvalue42"


@pytest.mark.parametrize(
    "text",
    [
        "sha256 " + "0123456789abcdef" * 4,
        "trial_key=9c1e2f3a4b5d study_key: 0a1b2c3d4e5f",
        "/work/main/results/refit/9c1e2f3a4b5d/model/model.safetensors",
        "learning_rate=1e-3 batch_size=16 dropout: 0.1",
        "pad_token_id=0 pad_token: [PAD] eos_token=</s> unk_token=UNK max_tokens=512",
        "DEPRESSED_MOOD ANHEDONIA SUICIDAL_THOUGHTS PSYCHOMOTOR FATIGUE",
        "",
    ],
)
def test_ordinary_text_is_left_alone(text):
    assert mask(text) == text


def test_mask_is_idempotent():
    text = f"https://u:p@h {HF} password=x Authorization: Bearer abcdefgh12 a@b.io"
    once = mask(text)
    assert mask(once) == once and "p@h" not in once and HF not in once


def test_mask_value_nested():
    value = {
        "tracking": {"uri": "http://u:pw1@h:5000", "password": "pw2", "token": None},
        "hf_token": "plain",
        "pad_token": "[PAD]",
        "lr": 1e-3,
        "items": [f"a {HF}", ("b", "x-api-key: k1234")],
        "n": 3,
    }
    assert mask_value(value) == {
        "tracking": {"uri": "http://u:***@h:5000", "password": "***", "token": None},
        "hf_token": "***",
        "pad_token": "[PAD]",
        "lr": 1e-3,
        "items": ["a hf_***", ("b", "x-api-key: ***")],
        "n": 3,
    }
    assert is_secret_name("tracking.api_key") and not is_secret_name("trial_key")


def test_speed_per_log_line():
    line = (
        "2024-05-01 12:00:00,123 INFO workflow_lib.learning.training: epoch 3/5 fold 1 train_loss=0.4312 "
        "val_macro_f1=0.5521 lr=2.0e-05 (12.3s)"
    )
    n = 2000
    t0 = time.perf_counter()
    for _ in range(n):
        mask(line)
    per_line_ns = (time.perf_counter() - t0) / n * 1e9
    assert per_line_ns < 200_000, per_line_ns  # loose bound for a loaded CI machine; ~3 us on a laptop


def test_tracker_spool_holds_only_masked_params_tags_and_names(tmp_path, base_config, monkeypatch):
    import json

    from workflow_lib import config
    from workflow_lib.tracking.tracker import Tracker

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    tr = Tracker(config.resolve({**base_config, "results_dir": str(tmp_path / "results")}), start_replayer=False)
    run = tr.start(
        "refit",
        {"backbone": f"org/model?token={HF}", "trial_key": "9c1e2f3a4b5d"},
        params={
            "tracking": {"uri": "http://u:pw99@h:5000", "password": "pw98"},
            "hub": {"token": GHP},
            "lr": 1e-3,
            "note": "x" * 7000,
        },
    )
    tr.set_tags(run, {"source": f"https://user:pw97@host/repo {HF}", "pipeline.trial_key": "9c1e2f3a4b5d"})
    tr._fh.close()
    tr._fh = None
    spool = tr.spool.read_text()
    for secret in (HF, GHP, "pw99", "pw98", "pw97"):
        assert secret not in spool
    events = {e["op"]: e for e in map(json.loads, spool.splitlines())}
    assert events["start"]["name"] == "refit org/model?token=*** 9c1e2f3a4b5d"
    assert events["start"]["run"]["ids"] == {"backbone": "org/model?token=***", "trial_key": "9c1e2f3a4b5d"}
    assert events["params"]["params"] == {
        "tracking.uri": "http://u:***@h:5000",
        "tracking.password": "***",
        "hub.token": "***",
        "lr": "0.001",
        "note": "x" * 6000,
    }
    assert events["tags"]["tags"] == {
        "source": "https://user:***@host/repo hf_***",
        "pipeline.trial_key": "9c1e2f3a4b5d",
    }
