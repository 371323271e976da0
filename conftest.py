"""Root pytest configuration: what doctest collection must not import."""
import os

os.environ.setdefault("MPLBACKEND", "Agg")

collect_ignore = ["cdr/cli/__main__.py", "benchmarks", "build", "site"]
collect_ignore_glob = ["cdr/**/__main__.py", "cdr/__main__.py"]
