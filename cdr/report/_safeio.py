"""Safe, reproducible file output for report bundles: escaped CSV/XLSX cells, byte-identical files, and an
``--out`` folder that is replaced atomically without ever touching a file cdr did not write.

Rules (issue 11):

- Text cells never start with ``=``, ``+``, ``-``, ``@``, tab or carriage return unless they are numbers:
  such a cell gets a leading ``'`` (the OWASP CSV-injection advice), so a spreadsheet shows it as text.
  XLSX cells holding text are written as strings (``data_type 's'``), never as formulas.
- Bytes depend only on the content: XLSX document properties and ZIP member dates are fixed (the date is
  ``SOURCE_DATE_EPOCH`` when set, else 1 January 1980), CSV uses ``\\n`` line ends, JSON is sorted as built.
- A folder is written by :func:`write_folder`: every file goes to a temporary folder beside ``out`` and the
  folder is then swapped into place, so a killed run leaves the old bundle or the new one. An earlier bundle
  is recognised only by its ``manifest.json`` format *and* the SHA-256 of every file it lists; nothing else
  is deleted or overwritten. A lock file beside ``out`` stops two runs writing into one folder.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import datetime as _dt
import hashlib
import io
import json
import os
import pathlib
import re
import secrets
import shutil
import zipfile

import pandas as pd

from cdr.errors import ArgumentError, CdrError

__all__ = ["BUNDLE_FORMAT", "PRIVATE_FORMAT", "escape_text", "escape_frame", "csv_bytes", "xlsx_bytes",
           "json_bytes", "source_date", "write_folder", "check_folder", "verified_outputs"]

BUNDLE_FORMAT = "cdr-report-bundle/1"
PRIVATE_FORMAT = "cdr-report-private/1"
_RISKY = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")
_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)
PENDING = ".cdr-pending.json"          # journal of a bundle being replaced file by file (other files share the folder)
PENDING_FORMAT = "cdr-pending/1"


def escape_text(value):
    """A text cell made safe for a spreadsheet: a leading ``'`` when it starts with ``= + - @``, tab or CR.

    Numbers written as text (``"-3"``, ``"+1.5e3"``) and anything that is not a string are returned unchanged.

    Parameters
    ----------
    value : object
        A cell value.

    Returns
    -------
    object
        ``value``, or ``"'" + value`` for a risky string.

    Examples
    --------
    >>> escape_text('=HYPERLINK("http://example.org","x")')
    '\\'=HYPERLINK("http://example.org","x")'
    >>> escape_text("-2.5"), escape_text("1-4"), escape_text(7)
    ('-2.5', '1-4', 7)
    """
    if isinstance(value, str) and value.startswith(_RISKY) and not _NUMBER.match(value.strip()):
        return "'" + value
    return value


def escape_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``frame`` with :func:`escape_text` applied to every text cell and to the column names.

    Parameters
    ----------
    frame : pandas.DataFrame

    Returns
    -------
    pandas.DataFrame

    Examples
    --------
    >>> escape_frame(pd.DataFrame({"area": ["@SUM(1)", "Leeds"], "deaths": [5, 7]}))["area"].tolist()
    ["'@SUM(1)", 'Leeds']
    """
    out = frame.copy()
    for col in out.columns:
        if out[col].dtype == object or pd.api.types.is_string_dtype(out[col]):
            out[col] = out[col].map(escape_text)
    out.columns = [escape_text(str(c)) for c in out.columns]
    return out


def csv_bytes(frame: pd.DataFrame) -> bytes:
    """``frame`` as escaped UTF-8 CSV bytes with ``\\n`` line ends and no index.

    Parameters
    ----------
    frame : pandas.DataFrame

    Returns
    -------
    bytes

    Examples
    --------
    >>> csv_bytes(pd.DataFrame({"id": ["@SUM(1)", "-3"]}))
    b"id\\n'@SUM(1)\\n-3\\n"
    """
    return escape_frame(frame).to_csv(index=False, lineterminator="\n").encode("utf-8")


def source_date() -> _dt.datetime | None:
    """The build date from ``SOURCE_DATE_EPOCH`` (UTC), or None when it is not set.

    Returns
    -------
    datetime.datetime or None

    Raises
    ------
    cdr.errors.CdrError
        ``SOURCE_DATE_EPOCH`` is set but is not a whole number of seconds.

    Examples
    --------
    >>> import os
    >>> os.environ["SOURCE_DATE_EPOCH"] = "1700000000"
    >>> source_date().isoformat()
    '2023-11-14T22:13:20+00:00'
    >>> del os.environ["SOURCE_DATE_EPOCH"]
    >>> source_date() is None
    True
    """
    text = os.environ.get("SOURCE_DATE_EPOCH")
    if text is None or text.strip() == "":
        return None
    try:
        return _dt.datetime.fromtimestamp(int(text), tz=_dt.timezone.utc)
    except (ValueError, OverflowError, OSError) as exc:
        raise CdrError(f"SOURCE_DATE_EPOCH must be a whole number of seconds since 1970-01-01; got {text!r}. "
                       "Unset it or set it, e.g. SOURCE_DATE_EPOCH=$(date +%s).") from exc


def _fixed_time() -> _dt.datetime:
    return (source_date() or _dt.datetime(1980, 1, 1, tzinfo=_dt.timezone.utc)).replace(tzinfo=None)


def xlsx_bytes(sheets) -> bytes:
    """A workbook of escaped sheets whose bytes depend only on the content.

    Text cells are escaped (:func:`escape_text`) and typed as strings, never formulas; document
    properties (creator, created, modified) and ZIP member dates are fixed.

    Parameters
    ----------
    sheets : iterable of (str, pandas.DataFrame)
        Sheet name (cut to 31 characters) and table, in order.

    Returns
    -------
    bytes

    Examples
    --------
    >>> import io, openpyxl
    >>> data = xlsx_bytes([("t", pd.DataFrame({"id": ['=HYPERLINK("http://example.org","x")']}))])
    >>> cell = openpyxl.load_workbook(io.BytesIO(data))["t"]["A2"]
    >>> cell.data_type, cell.value[:11]
    ('s', "'=HYPERLINK")
    >>> data == xlsx_bytes([("t", pd.DataFrame({"id": ['=HYPERLINK("http://example.org","x")']}))])
    True
    """
    from openpyxl import Workbook

    when = _fixed_time()
    wb = Workbook()
    wb.remove(wb.active)
    for name, frame in sheets:
        ws = wb.create_sheet(title=_sheet_title(name))
        frame = escape_frame(frame)
        ws.append([str(c) for c in frame.columns])
        for row in frame.itertuples(index=False):
            ws.append([_xlsx_value(v) for v in row])
        for row in ws.iter_rows():
            for cell in row:
                if isinstance(cell.value, str):
                    cell.data_type = "s"
    props = wb.properties
    props.creator, props.lastModifiedBy = "cdr", None
    props.created = props.modified = when
    raw = io.BytesIO()
    wb.save(raw)
    return _normalise_zip(raw.getvalue(), when)


def _sheet_title(name) -> str:
    title = re.sub(r"[\[\]:*?/\\]", "_", str(name))[:31]
    return title or "sheet"


def _xlsx_value(v):
    if v is None or v is pd.NA or v is pd.NaT or (isinstance(v, str) and v == ""):
        return None   # an empty cell, not an empty string
    if isinstance(v, float) and v != v:
        return None
    if hasattr(v, "item") and not isinstance(v, str):   # numpy scalars
        v = v.item()
    if isinstance(v, (bool, int, float, str)):
        return v
    return str(v)


def _normalise_zip(data: bytes, when: _dt.datetime) -> bytes:
    """Rewrite a ZIP (XLSX) with fixed member dates and the core properties' dates set to ``when``."""
    stamp = when.strftime("%Y-%m-%dT%H:%M:%SZ").encode()
    date_time = max(_ZIP_EPOCH, when.timetuple()[:6])
    src = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            body = src.read(info.filename)
            if info.filename == "docProps/core.xml":
                body = re.sub(rb"(<dcterms:(created|modified)[^>]*>)[^<]*(</dcterms:)", rb"\g<1>" + stamp + rb"\g<3>",
                              body)
            member = zipfile.ZipInfo(info.filename, date_time=date_time)
            member.compress_type = zipfile.ZIP_DEFLATED
            member.external_attr = 0o644 << 16
            dst.writestr(member, body)
    return out.getvalue()


def json_bytes(obj) -> bytes:
    """``obj`` as indented UTF-8 JSON with a final newline (key order as built).

    Parameters
    ----------
    obj : JSON-serialisable object

    Returns
    -------
    bytes

    Examples
    --------
    >>> json_bytes({"a": 1})
    b'{\\n  "a": 1\\n}\\n'
    """
    return (json.dumps(obj, indent=2, ensure_ascii=False) + "\n").encode("utf-8")


# ------------------------------------------------------------------------------------------------ folders
def _sha256(path: pathlib.Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _is_cdr_manifest(m, formats) -> bool:
    if not isinstance(m, dict) or not isinstance(m.get("outputs"), dict):
        return False
    if m.get("format") in formats:
        return True
    # bundles written before the format key: their own manifest shape
    lib, disc = m.get("library"), m.get("disclosure")
    return (BUNDLE_FORMAT in formats and "format" not in m and isinstance(lib, dict) and "cdr_version" in lib
            and isinstance(disc, dict) and "certificate" in disc)


def verified_outputs(folder, formats=(BUNDLE_FORMAT, PRIVATE_FORMAT)):
    """The files of an earlier cdr folder in ``folder``, or None when it is not one.

    A folder is an earlier cdr bundle only when its ``manifest.json`` has a cdr format and every file it
    lists (a relative path inside the folder, not through a symlink) exists with the listed SHA-256.

    Parameters
    ----------
    folder : path
    formats : tuple of str
        Manifest formats accepted.

    Returns
    -------
    set of str or None
        Relative POSIX paths, ``manifest.json`` included.

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as d:
    ...     _ = (pathlib.Path(d) / "manifest.json").write_text('{"outputs": {"thesis.docx": "0"}}')
    ...     verified_outputs(d) is None   # not cdr's format: nothing in it belongs to cdr
    True
    """
    folder = pathlib.Path(folder)
    path = folder / "manifest.json"
    if not path.exists() and not path.is_symlink():
        return _pending_outputs(folder)   # a run killed while replacing files one by one
    if path.is_symlink() or not path.is_file():
        return None
    try:
        m = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError):
        return None
    if not _is_cdr_manifest(m, formats):
        return None
    owned = {"manifest.json"}
    for rel, digest in m["outputs"].items():
        parts = pathlib.PurePosixPath(str(rel)).parts
        if not parts or pathlib.PurePosixPath(str(rel)).is_absolute() or ".." in parts:
            return None
        target = folder.joinpath(*parts)
        if any(p.is_symlink() for p in [target, *target.parents] if folder in p.parents or p == target):
            return None
        if not target.is_file() or not isinstance(digest, str) or _sha256(target) != digest:
            return None
        owned.add(pathlib.PurePosixPath(*parts).as_posix())
    if _pending_outputs(folder) is not None:   # killed after the manifest was written, before the journal went
        owned.add(PENDING)
    return owned


def _pending_outputs(folder: pathlib.Path):
    """Files of an interrupted file-by-file replacement: those whose hash is the old or the new one."""
    path = folder / PENDING
    if path.is_symlink() or not path.is_file():
        return None
    try:
        journal = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError):
        return None
    if not isinstance(journal, dict) or journal.get("format") != PENDING_FORMAT or not isinstance(
            journal.get("outputs"), dict):
        return None
    owned = {PENDING}
    for rel, digests in journal["outputs"].items():
        parts = pathlib.PurePosixPath(str(rel)).parts
        if not parts or pathlib.PurePosixPath(str(rel)).is_absolute() or ".." in parts or not isinstance(digests, list):
            return None
        target = folder.joinpath(*parts)
        if target.is_file() and not target.is_symlink() and _sha256(target) in digests:
            owned.add(pathlib.PurePosixPath(*parts).as_posix())
    return owned


def _contents(folder: pathlib.Path):
    """(files, dirs, symlinks) under ``folder`` as relative POSIX paths, symlinks not followed."""
    files, dirs, links = set(), set(), []
    for root, dnames, fnames in os.walk(folder, followlinks=False):
        base = pathlib.Path(root)
        for name in dnames + fnames:
            p = base / name
            rel = p.relative_to(folder).as_posix()
            if p.is_symlink():
                links.append(rel)
            elif p.is_dir():
                dirs.add(rel)
            else:
                files.add(rel)
    return files, dirs, sorted(links)


class _Lock:
    """``<out>.lock`` beside ``out``, created exclusively; a lock left by a dead process is taken over."""

    def __init__(self, out: pathlib.Path):
        self.path = out.with_name(out.name + ".lock")

    def __enter__(self):
        for _ in range(2):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                if self._stale():
                    self.path.unlink(missing_ok=True)
                    continue
                raise CdrError(f"{self.path} exists: another cdr run is writing {self.path.with_suffix('')}. Wait "
                               "for it to finish; if no run is active, delete the lock file and try again.") from None
            with os.fdopen(fd, "w") as fh:
                fh.write(f"{os.getpid()}\n")
            return self
        raise CdrError(f"could not take the lock {self.path}; delete it if no cdr run is active.")

    def _stale(self) -> bool:
        try:
            pid = int(self.path.read_text().strip())
        except (OSError, ValueError):
            return False
        if pid == os.getpid():
            return False
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        except OSError:
            return False
        return False

    def __exit__(self, *exc):
        self.path.unlink(missing_ok=True)


def _exchange(a: pathlib.Path, b: pathlib.Path) -> bool:
    """Atomically swap two directories (Linux renameat2 RENAME_EXCHANGE); False when unavailable."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
        fn = libc.renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    return fn(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0


def write_folder(out, files: dict, manifest: dict, *, fmt: str = BUNDLE_FORMAT, force: bool = False,
                 what: str = "bundle") -> dict:
    """Write ``files`` and ``manifest.json`` to folder ``out`` safely; returns relative path -> Path.

    ``manifest`` gets ``format`` and ``outputs`` (the SHA-256 of every file). ``out`` may be missing, empty,
    or hold an earlier cdr folder (verified by :func:`verified_outputs`): its files are replaced, those this
    run does not write are removed, and other files beside them are left alone. A non-empty folder that is
    not a verified cdr folder is refused unless ``force``; even then nothing that is not in a verified cdr
    manifest is deleted or overwritten. The new folder is built beside ``out`` and swapped into place, so a
    killed run leaves the old folder or the new one. When other files share ``out`` the files are replaced
    one by one: a journal (``.cdr-pending.json``, old and new hashes) is written first, ``manifest.json`` is
    removed first and written last, and the next run resumes from the journal.

    Parameters
    ----------
    out : path
        The folder.
    files : dict of str -> bytes
        Relative POSIX path -> content (``manifest.json`` is added).
    manifest : dict
        The manifest (not modified).
    fmt : str
        Manifest format recorded (``BUNDLE_FORMAT`` or ``PRIVATE_FORMAT``).
    force : bool
        Allow a non-empty folder that is not a cdr folder (its files are left alone).
    what : str
        Name of the folder in messages.

    Returns
    -------
    dict of str -> pathlib.Path

    Raises
    ------
    cdr.errors.CdrError
        ``out`` is a symlink or a file, holds a symlink, holds other files (without ``force``), or holds a file
        of the same name that cdr did not write; another run holds the lock.

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as d:
    ...     out = pathlib.Path(d) / "bundle"
    ...     _ = (pathlib.Path(d) / "bundle").mkdir()
    ...     _ = (out / "thesis.docx").write_text("mine")
    ...     try:
    ...         write_folder(out, {"a.csv": b"x\\n"}, {})
    ...     except CdrError as exc:
    ...         print("refused:", "thesis.docx" in str(exc))
    ...     written = write_folder(out, {"a.csv": b"x\\n"}, {}, force=True)
    ...     sorted(written), (out / "thesis.docx").read_text()
    refused: True
    (['a.csv', 'manifest.json'], 'mine')
    """
    out = pathlib.Path(out).absolute()
    files = {pathlib.PurePosixPath(k).as_posix(): v for k, v in files.items()}
    for rel in files:
        parts = pathlib.PurePosixPath(rel).parts
        if rel in ("manifest.json", PENDING) or pathlib.PurePosixPath(rel).is_absolute() or ".." in parts:
            raise CdrError(f"write_folder: bad output name {rel!r}")   # pragma: no cover - programming error
    check_folder(out, force=force, what=what, verify=False)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        with _Lock(out):
            return _write_locked(out, files, manifest, fmt=fmt, force=force, what=what)
    except OSError as exc:
        raise CdrError(f"could not write the {what} {out}: {exc.strerror or exc}"
                       + (f" ({exc.filename})" if exc.filename else "")
                       + "; check the folder's permissions and free space.") from exc


def check_folder(out, *, force: bool = False, what: str = "bundle", verify: bool = True):
    """Refuse an ``out`` that :func:`write_folder` must not write to; None when ``out`` does not exist yet.

    ``out`` must not be a symbolic link or a file, nor hold a symbolic link; without ``force``, a folder
    holding files must be a verified earlier cdr folder (:func:`verified_outputs`). Nothing is written, so
    a caller can check ``out`` before any work (``cdr report`` does, before reading the records);
    :func:`write_folder` checks again under its lock. With ``verify=False`` only the first two checks run.

    Returns
    -------
    tuple or None
        ``(owned, foreign, dirs)``: files of the verified cdr folder (empty set when there is none), other
        files, and sub-folders (relative POSIX paths).

    Raises
    ------
    cdr.errors.ArgumentError
        A symlink, a file, a folder holding symlinks, or holding other files without ``force``.

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as d:
    ...     _ = (pathlib.Path(d) / "thesis.docx").write_text("mine")
    ...     try:
    ...         check_folder(d)
    ...     except ArgumentError as exc:
    ...         print("refused:", "thesis.docx" in str(exc))
    ...     check_folder(pathlib.Path(d) / "new") is None
    refused: True
    True
    """
    out = pathlib.Path(out).absolute()
    if out.is_symlink():
        raise ArgumentError(f"--out {out} is a symbolic link; cdr does not write through links. Give a real folder.")
    if out.exists() and not out.is_dir():
        raise ArgumentError(f"--out {out} is a file, not a folder; give a new or empty folder.")
    if not verify or not out.exists():
        return None
    present, dirs, links = _contents(out)
    if links:
        raise ArgumentError(f"{out} holds symbolic links ({', '.join(links[:5])}); cdr does not write through "
                       "links. Remove them or choose another folder.")
    verified = verified_outputs(out)
    foreign = present - (verified or set())
    if foreign and verified is None and not force:
        raise ArgumentError(
            f"{out} holds files that cdr did not write ({', '.join(sorted(foreign)[:5])}"
            f"{', ...' if len(foreign) > 5 else ''}) and no verified cdr {what} (manifest.json with cdr's "
            "format and matching file hashes). Choose a new or empty folder, or add --force to write the "
            f"{what} beside them (nothing cdr did not write is deleted or overwritten).")
    return verified or set(), foreign, dirs


def _write_locked(out: pathlib.Path, files: dict, manifest: dict, *, fmt, force, what) -> dict:
    """:func:`write_folder` once the lock is held."""
    owned, foreign, loose_dirs = set(), set(), False
    state = check_folder(out, force=force, what=what)   # again under the lock: the folder may have changed
    if state is not None:
        owned, foreign, _dirs = state
        needed_dirs = {pathlib.PurePosixPath(rel).parents[i].as_posix() for rel in files
                       for i in range(len(pathlib.PurePosixPath(rel).parents) - 1)}
        clash = sorted(foreign & (set(files) | {"manifest.json"} | needed_dirs))
        clash += sorted(d for d in _dirs if d in files)
        owned_dirs = {pathlib.PurePosixPath(rel).parents[i].as_posix() for rel in owned
                      for i in range(len(pathlib.PurePosixPath(rel).parents) - 1)}
        loose_dirs = bool(_dirs - owned_dirs)   # folders cdr did not make (maybe empty): left in place
        if clash:
            raise CdrError(f"{out} holds {len(clash)} file(s) that cdr cannot show it wrote (no verified cdr "
                           f"manifest lists them) and would have to overwrite: {', '.join(clash[:5])}"
                           f"{', ...' if len(clash) > 5 else ''}; --force never overwrites them. Move them "
                           "away or choose another folder.")
    manifest = dict(manifest)
    manifest["format"] = fmt
    manifest["outputs"] = {rel: hashlib.sha256(files[rel]).hexdigest() for rel in sorted(files)}
    stale = sorted(owned - set(files) - {"manifest.json", PENDING})
    if stale:
        manifest["removed_from_earlier_run"] = stale
    body = dict(files)
    body["manifest.json"] = json_bytes(manifest)
    tmp = _new_dir(out.parent, f".{out.name}.tmp-")
    try:
        for rel in sorted(body):
            target = tmp.joinpath(*pathlib.PurePosixPath(rel).parts)
            target.parent.mkdir(parents=True, exist_ok=True)
            with open(target, "wb") as fh:
                fh.write(body[rel])
                fh.flush()
                os.fsync(fh.fileno())
        if not foreign and not loose_dirs:
            _swap_in(tmp, out, owned)
        else:
            _replace_files(tmp, out, body, stale, owned)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return {rel: out.joinpath(*pathlib.PurePosixPath(rel).parts) for rel in sorted(body)}


def _new_dir(parent: pathlib.Path, prefix: str) -> pathlib.Path:
    """A new hidden folder in ``parent`` with the default permissions (umask), unlike mkdtemp's 0700."""
    for _ in range(100):
        path = parent / f"{prefix}{os.getpid()}-{secrets.token_hex(4)}"
        try:
            os.mkdir(path)
            return path
        except FileExistsError:   # pragma: no cover - 32 random bits
            continue
    raise CdrError(f"could not create a temporary folder in {parent}")   # pragma: no cover


def _swap_in(tmp: pathlib.Path, out: pathlib.Path, owned: set) -> None:
    """Put the folder ``tmp`` at ``out`` in one step; the old folder (cdr files only) is then removed."""
    if not out.exists():
        os.rename(tmp, out)
        return
    if not owned:   # an empty folder
        try:
            out.rmdir()
        except OSError:   # something appeared meanwhile: leave it, write nothing
            raise CdrError(f"{out} changed while the bundle was being written; run again.") from None
        os.rename(tmp, out)
        return
    if not _exchange(tmp, out):
        old = out.parent / f".{out.name}.old-{os.getpid()}-{secrets.token_hex(4)}"
        os.rename(out, old)
        os.rename(tmp, out)
        tmp = old
    # ``tmp`` now holds the earlier bundle: remove the files it verifiably wrote, then empty folders
    for rel in sorted(owned):
        tmp.joinpath(*pathlib.PurePosixPath(rel).parts).unlink(missing_ok=True)
    for root, _dirs, _files in sorted(os.walk(tmp), key=lambda x: -len(x[0])):
        try:
            os.rmdir(root)
        except OSError:
            pass
    if tmp.exists():   # pragma: no cover - a file appeared in the old bundle during the run
        raise CdrError(f"{out} was replaced, but files added to the earlier bundle during the run were kept in {tmp}.")


def _replace_files(tmp: pathlib.Path, out: pathlib.Path, body: dict, stale: list, owned: set) -> None:
    """Other files share ``out``: a journal of old and new hashes first (so a killed run can be resumed), then
    the old manifest goes, each file is replaced, and the manifest is written last."""
    journal = {}
    for rel in sorted(set(body) | set(stale)):
        digests = [hashlib.sha256(body[rel]).hexdigest()] if rel in body else []
        current = out.joinpath(*pathlib.PurePosixPath(rel).parts)
        if rel in owned and current.is_file():
            digests.append(_sha256(current))
        journal[rel] = digests
    with open(out / PENDING, "wb") as fh:
        fh.write(json_bytes({"format": PENDING_FORMAT, "outputs": journal}))
        fh.flush()
        os.fsync(fh.fileno())
    (out / "manifest.json").unlink(missing_ok=True)   # no manifest claims a complete bundle while files change
    for rel in sorted(body):
        if rel == "manifest.json":
            continue
        src = tmp.joinpath(*pathlib.PurePosixPath(rel).parts)
        dst = out.joinpath(*pathlib.PurePosixPath(rel).parts)
        dst.parent.mkdir(parents=True, exist_ok=True)
        os.replace(src, dst)
    for rel in stale:
        out.joinpath(*pathlib.PurePosixPath(rel).parts).unlink(missing_ok=True)
    os.replace(tmp / "manifest.json", out / "manifest.json")
    (out / PENDING).unlink(missing_ok=True)
