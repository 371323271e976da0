"""Regenerate the ``footprints/`` catalog: ``python -m cdr.footprints.catalog [OUT_DIR]``."""
from __future__ import annotations

import sys

from cdr.footprints._catalog import regenerate_catalog

__all__ = ["main"]


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    written = regenerate_catalog(argv[0] if argv else None, progress=True)
    for name, path in written.items():
        print(f"{name}: {path}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
