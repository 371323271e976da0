"""Exceptions and warnings raised by ``cdr``.

Every exception derives from :class:`CdrError`, so a user can catch the library's errors
precisely, and every argument or data error also derives from the matching built-in
(``ValueError``, or ``TypeError`` for a wrong type) so generic handlers keep working. Messages
name the argument or row, the value given, what is allowed and how to fix it.
"""
from __future__ import annotations

__all__ = [
    "CdrError",
    "ArgumentError",
    "ArgumentTypeError",
    "DataError",
    "AggregateError",
    "RecordValidationError",
    "InfeasibleFootprintError",
    "SpecError",
    "DisclosureError",
    "CdrWarning",
    "SmallNumbersWarning",
    "OverdispersionWarning",
    "SeparationWarning",
    "DataVintageWarning",
]


class CdrError(Exception):
    """Base class of every error raised by ``cdr``."""


class ArgumentError(CdrError, ValueError):
    """An argument has the wrong type, shape or value (e.g. a negative count, ``conf=95``)."""


class ArgumentTypeError(ArgumentError, TypeError):
    """An argument has the wrong type (e.g. a list where a DataFrame is needed); also a ``TypeError``."""


class DataError(CdrError, ValueError):
    """A table or file has the right type but the wrong content (a design file without its columns, a
    damaged embedded file, a records file whose years hold no records)."""


class AggregateError(CdrError, ValueError):
    """Records, populations or a design given to :func:`cdr.aggregate.aggregate` do not fit together."""


class RecordValidationError(CdrError, ValueError):
    """Records failed validation. ``.errors`` holds one row per problem (row, case_id, field, value, reason)."""

    def __init__(self, message, errors=None):
        super().__init__(message)
        self.errors = errors


class InfeasibleFootprintError(CdrError, ValueError):
    """Some areas cannot reach the footprint threshold under the given constraints."""

    def __init__(self, message, areas=None):
        super().__init__(message)
        self.areas = areas


class SpecError(CdrError, ValueError):
    """An analysis specification (``models/*.toml``) is invalid."""


class DisclosureError(CdrError, ValueError):
    """A table bundle fails the disclosure audit and must not be published."""

    def __init__(self, message, audit=None):
        super().__init__(message)
        self.audit = audit


class CdrWarning(UserWarning):
    """Base class of every warning issued by ``cdr``."""


class SmallNumbersWarning(CdrWarning):
    """A statistic rests on very few events."""


class OverdispersionWarning(CdrWarning):
    """Counts vary more than a Poisson model allows; a different family was used."""


class SeparationWarning(CdrWarning):
    """A regression has (quasi-)separated or sparse cells; a remedy was applied."""


class DataVintageWarning(CdrWarning):
    """Data from another geography vintage or an out-of-range year was translated or carried forward."""
