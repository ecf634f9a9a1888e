"""What the store refuses, in terms a handler can answer with."""

from __future__ import annotations


class Conflict(Exception):
    """A row would break a uniqueness rule; `what` names the rule ('name', 'eks_cluster')."""

    def __init__(self, what: str) -> None:
        super().__init__(what)
        self.what = what


class Busy(Exception):
    """The database stayed locked past the busy timeout."""
