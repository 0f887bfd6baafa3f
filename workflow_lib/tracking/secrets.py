"""Secret masking for log lines, exception text and tracking values.

``mask(text)`` replaces secrets by ``***`` and keeps the context needed to debug:

- credentials in URIs: scheme, user and host are kept, the password goes
  (``https://user:***@host``, ``postgresql://u:***@h/db``);
- tokens with a known prefix keep the prefix: ``hf_***``, ``ghp_***``, ``github_pat_***``,
  ``sk-***``, ``AKIA***``, ``Bearer ***``;
- ``name=value`` / ``name: value`` / ``"name": "value"`` with a secret-looking name
  (password, passwd, api_key, apikey, x-api-key, secret, token, ...) keep the name:
  ``password=***``;
- e-mail addresses keep the domain: ``***@example.com``;
- the literal values of environment variables whose name looks secret (``HF_TOKEN``,
  ``MLFLOW_TRACKING_PASSWORD``, ``AWS_SECRET_ACCESS_KEY``, ...) become ``<HF_TOKEN:***>``.

Ordinary text (hex digests, trial keys, paths, ``learning_rate=1e-3``, ``pad_token_id=0``) is left alone.
"""

from __future__ import annotations

import os
import re
from typing import Any

MASK = "***"
MIN_ENV_SECRET_LEN = 6  # shorter environment values are too likely to occur by chance

_VALUE = r"""(?:(?P<q>["'])(?P<qv>[^"'\n]*)|(?P<v>(?!\*\*\*)[^\s"',;&<>()\[\]{}]+))"""
_NAMES = (
    r"x-api-key|api[_-]?key|apikey|secret(?:[_-]access)?[_-]?key|client[_-]?secret|secret|password|passwd|"
    r"private[_-]?key|access[_-]?key(?:[_-]id)?|(?:access|auth|refresh|bearer)[_-]?token|token|"
    r"credentials?"
)
# a bare "token" preceded by one of these is a tokenizer setting, not a secret
_NOT_SECRET = re.compile(r"(?i)(?:^|[_.-])(?:pad|cls|sep|unk|mask|bos|eos|max|num|n|additional_special)[_-]token$")

# (needles, pattern, replacement): a pattern runs only if one of its needles is in the lower-cased text
_PATTERNS: list[tuple[tuple[str, ...], re.Pattern, Any]] = [
    # credentials in a URI: keep scheme and user, mask the password
    (("@",), re.compile(r"\b([a-zA-Z][a-zA-Z0-9+.\-]*://)([^\s:/@'\"]+):([^\s/@'\"]+)@"), rf"\1\2:{MASK}@"),
    (
        ("authorization",),
        re.compile(
            r"(?i)\b(authorization[\"']?\s*[:=]\s*[\"']?)(?>(?:(bearer|basic|token|digest)\s+)?)"
            r"(?!\*\*\*)[^\s\"',;]+"
        ),
        lambda m: f"{m[1]}{m[2] + ' ' if m[2] else ''}{MASK}",
    ),
    (("bearer",), re.compile(r"(?i)\b(bearer)\s+(?!\*\*\*)[A-Za-z0-9\-._~+/]{8,}=*"), rf"\1 {MASK}"),
    (("hf_",), re.compile(r"\bhf_[A-Za-z0-9]{30,}"), f"hf_{MASK}"),
    (("gh",), re.compile(r"\b(gh[pousr])_[A-Za-z0-9]{30,}"), rf"\1_{MASK}"),
    (("github_pat_",), re.compile(r"\bgithub_pat_[A-Za-z0-9_]{22,}"), f"github_pat_{MASK}"),
    (("sk-",), re.compile(r"\bsk-(?:proj-|ant-)?[A-Za-z0-9_\-]{20,}"), f"sk-{MASK}"),
    (("akia", "asia"), re.compile(r"\b(AKIA|ASIA)[A-Z0-9]{16}\b"), rf"\1{MASK}"),
    (
        ("api", "secret", "pass", "token", "private", "access", "credential"),
        re.compile(rf"(?i)(?<![A-Za-z0-9])(?P<name>(?:[a-z0-9]+[_.-])*(?:{_NAMES}))(?P<sep>[\"']?\s*[:=]\s*){_VALUE}"),
        lambda m: m[0] if _NOT_SECRET.search(m["name"]) else f"{m['name']}{m['sep']}{m['q'] or ''}{MASK}",
    ),
    (
        ("@",),
        re.compile(r"(?<![A-Za-z0-9._%+\-*])[A-Za-z0-9._%+\-]+@([A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,})\b"),
        rf"{MASK}@\1",
    ),
]
_SECRET_ENV_NAME = re.compile(r"(?i)(?:^|_)(?:TOKEN|SECRET|PASSWORD|PASSWD|KEY|APIKEY|CREDENTIALS?)(?:_|$)")
_SECRET_KEY_NAME = re.compile(rf"(?i)(?:^|[_.-])(?:{_NAMES})$")
_env = [-1, (), (), None, {}]  # len(os.environ), secret-named variables, their values, regex, value -> name


def _env_secrets() -> tuple[re.Pattern | None, dict[str, str]]:
    """Regex over the values of secret-named environment variables; rebuilt when the environment changes."""
    if len(os.environ) != _env[0] or (_env[1] and tuple(map(os.environ.get, _env[1])) != _env[2]):
        names = tuple(n for n in os.environ if _SECRET_ENV_NAME.search(n))
        found = {
            v: n
            for n in names
            if len(v := os.environ[n]) >= MIN_ENV_SECRET_LEN
            and v.lower() not in ("true", "false", "none", "null")
            and not os.path.exists(v)
        }
        rx = re.compile("|".join(map(re.escape, sorted(found, key=len, reverse=True)))) if found else None
        _env[:] = [len(os.environ), names, tuple(map(os.environ.get, names)), rx, found]
    return _env[3], _env[4]


def mask(text: str) -> str:
    """``text`` with every secret replaced (see the module docstring for what is kept)."""
    if not text:
        return text
    rx, names = _env_secrets()
    if rx is not None:
        text = rx.sub(lambda m: f"<{names[m[0]]}:{MASK}>", text)
    lower = text.lower()
    for needles, pattern, repl in _PATTERNS:
        for needle in needles:  # plain loops: any(...) costs more than the checks themselves
            if needle in lower:
                text = pattern.sub(repl, text)
                break
    return text


def is_secret_name(name: str) -> bool:
    """True for key names such as ``password``, ``tracking.api_key``, ``hf_token`` (not ``pad_token``)."""
    return bool(_SECRET_KEY_NAME.search(name)) and not _NOT_SECRET.search(name)


def mask_value(obj: Any) -> Any:
    """Mask strings inside dicts/lists/tuples recursively; a value under a secret-looking key becomes ``***``.

    Other types (numbers, None, objects) are returned unchanged.
    """
    if isinstance(obj, str):
        return mask(obj)
    if isinstance(obj, dict):
        return {
            k: MASK if isinstance(k, str) and v not in (None, "") and is_secret_name(k) else mask_value(v)
            for k, v in obj.items()
        }
    if isinstance(obj, list):
        return [mask_value(v) for v in obj]
    if isinstance(obj, tuple):
        return tuple(mask_value(v) for v in obj)
    return obj
