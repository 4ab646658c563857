"""Errors a user can fix: every message is one line saying what is wrong and how to fix it."""

from __future__ import annotations


class UserInputError(ValueError):
    """Bad user input (a CSV, a task id, a metric name...).

    The message is a single line naming the file / row / column at fault and the fix.
    """


class ArchNotInTable(KeyError):
    """An architecture asked of a partial table (MetaD2A task, user CSV) that it lacks.

    A ``KeyError`` (so ``except KeyError`` / ``LookupError`` catch it) whose ``str`` is the plain
    one-line message, not its quoted repr.
    """

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


__all__ = ["UserInputError", "ArchNotInTable"]
