"""Shared test configuration: a non-interactive plotting backend and deterministic settings."""
import os

os.environ.setdefault("MPLBACKEND", "Agg")

import matplotlib  # noqa: E402

matplotlib.use("Agg")
