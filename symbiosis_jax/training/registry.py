"""A tiny name -> object registry whose lookup error lists what exists."""

from __future__ import annotations

from typing import Any, TypeVar

__all__ = ["Registry"]

T = TypeVar("T")


class Registry:
    """Maps names to objects (functions, classes, modules) of one kind.

    Example::

        LOSSES = Registry("loss")

        @LOSSES.register("grpo")
        def grpo_loss(...): ...

        LOSSES.register("dapo", dapo_loss)
        LOSSES.get("grpo")

    Args:
        kind: what is registered, used in error messages (e.g. ``"loop"``).
    """

    def __init__(self, kind: str):
        self.kind = kind
        self._items: dict[str, Any] = {}

    def register(self, name: str, obj: Any = None, *, overwrite: bool = False) -> Any:
        """Registers ``obj`` under ``name``; without ``obj`` returns a decorator.

        Raises:
            ValueError: ``name`` already registered (unless ``overwrite``) or not a
                non-empty string.
        """
        if not isinstance(name, str) or not name:
            raise ValueError(f"{self.kind} name must be a non-empty string, got {name!r}.")

        def add(o: T) -> T:
            if name in self._items and not overwrite and self._items[name] is not o:
                raise ValueError(
                    f"{self.kind} {name!r} is already registered; pass overwrite=True to replace it."
                )
            self._items[name] = o
            return o

        if obj is None:
            return add
        return add(obj)

    def unregister(self, name: str) -> None:
        """Removes ``name`` (no error if absent)."""
        self._items.pop(name, None)

    def get(self, name: str) -> Any:
        """Returns the object registered as ``name``.

        Raises:
            ValueError: unknown name; the message lists the registered names.
        """
        if name not in self._items:
            raise ValueError(f"unknown {self.kind} {name!r}; known: {self.names()}.")
        return self._items[name]

    def names(self) -> list[str]:
        """Registered names, sorted."""
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __len__(self) -> int:
        return len(self._items)

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, names={self.names()})"
