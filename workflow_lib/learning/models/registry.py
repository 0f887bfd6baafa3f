"""Name -> class registries for pooling, heads and losses (one decorator, one shape)."""

from __future__ import annotations

from collections.abc import Callable


def registrar(table: dict[str, type]) -> Callable[[str], Callable[[type], type]]:
    """Return a ``@register("name")`` decorator that adds a class to ``table`` and sets its ``name``."""

    def register(name: str) -> Callable[[type], type]:
        def deco(cls: type) -> type:
            if name in table:
                raise ValueError(f"{name!r} is registered twice")
            table[name] = cls
            cls.name = name
            return cls

        return deco

    return register
