"""Pointers from names polylens no longer has to the ones that replaced them.

When an idea got one name, its old names went; a learner's older notebook
should then say what to write instead, not only that a name is missing.
"""

from __future__ import annotations

from collections.abc import Callable


def renamed(where: str, names: dict[str, str], missing: str) -> Callable:
    """A ``__getattr__`` for a module (``__getattr__ = renamed(...)``) or a class body.

    Args:
        where: how the owner is written in the message, e.g. "polylens.spline" or "Regions".
        names: {old name: new name, with any word of explanation}.
        missing: the usual message for any other name, with ``{name!r}`` where the name goes.

    Python calls it only for names that are not found, with (name) for a
    module and (self, name) for an instance; it always raises AttributeError.
    """

    def __getattr__(*args):
        name = args[-1]
        if name in names:
            raise AttributeError(f"{where}.{name} is now {where}.{names[name]}")
        raise AttributeError(missing.format(name=name))

    return __getattr__
