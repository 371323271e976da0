"""Shared test configuration: a non-interactive plotting backend and the hypothesis profiles.

Hypothesis profiles (``docs/dev/contracts.md``):

- ``ci`` (the default, and what ``make test`` and any run with the ``CI`` environment variable use):
  derandomised, no example database, so a green run stays green on every fresh clone;
- ``dev``: random examples and more of them, for exploring (``HYPOTHESIS_PROFILE=dev pytest ...``).
"""
import os

os.environ.setdefault("MPLBACKEND", "Agg")

import matplotlib  # noqa: E402
from hypothesis import settings  # noqa: E402

matplotlib.use("Agg")

settings.register_profile("ci", derandomize=True, database=None, print_blob=True, deadline=None)
settings.register_profile("dev", derandomize=False, max_examples=200, deadline=None)


def hypothesis_profile(environ=os.environ) -> str:
    """The profile a run uses: ``HYPOTHESIS_PROFILE`` if set, else ``ci`` (also when ``CI`` is set)."""
    return environ.get("HYPOTHESIS_PROFILE") or "ci"


settings.load_profile(hypothesis_profile())
