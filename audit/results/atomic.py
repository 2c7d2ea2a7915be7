"""Writing an output file all or nothing: a temporary file in the same folder, flushed and fsynced,
then ``os.replace``d over the target (and the folder fsynced). A failed write (a full disk, a
vanished folder) leaves the previous file untouched and no temporary file behind, and raises
:class:`OutputError` naming the file.

Every output the audit writes (results.json, report.html, the JUnit XML, the step summary) goes
through here, after :func:`audit.results.redaction.redact`, so no secret and no half-written file
ever leaves the process.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from audit.results.redaction import redact


class OutputError(Exception):
    """An output file could not be written (an environment problem, not a gate result or user input).
    ``str()`` is one line naming the file and the reason."""

    def __init__(self, path: Path | str, what: str, exc: BaseException):
        reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
        super().__init__(f"{what} '{path}' could not be written ({reason})")
        self.path = Path(path)
        self.what = what


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return  # not every platform opens folders
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_atomic(path: str | Path, data: str | bytes, *, what: str = "output file", secret_free: bool = True) -> Path:
    """Write ``data`` to ``path`` atomically; text is redacted first unless ``secret_free=False``.
    Raises :class:`OutputError` (nothing changed at ``path``, no temporary file left)."""
    path = Path(path)
    if isinstance(data, str):
        data = (redact(data) if secret_free else data).encode("utf-8")
    tmp: str | None = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp makes it private; an output is as readable as any file
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        tmp = None
        _fsync_dir(path.parent)
    except OSError as exc:
        raise OutputError(path, what, exc) from None
    finally:
        if tmp is not None:
            try:
                os.unlink(tmp)
            except OSError:
                pass
    return path


def append_text(path: str | Path, text: str, *, what: str = "output file") -> Path:
    """Append redacted ``text`` (the GitHub step summary is appended to, by design); all or nothing:
    the old content plus the new is written to a temporary file and replaces the file."""
    path = Path(path)
    try:
        old = path.read_bytes() if path.exists() else b""
    except OSError as exc:
        raise OutputError(path, what, exc) from None
    return write_atomic(path, old + redact(text).encode("utf-8"), what=what)


def check_writable_file(path: str | Path, what: str) -> str | None:
    """Why a file could not be written at ``path`` (its folder missing, not a folder, not writable;
    the path itself a folder or too long), or None. Checked before a run, so a bad output option is a
    one-line user error instead of a lost run."""
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    if len(os.fsencode(path.name)) > 255:
        return f"{what} '{path}': file name too long"
    if path.is_dir():
        return f"{what} '{path}': is a directory"
    if not folder.exists():
        return f"{what} '{path}': folder '{folder}' does not exist"
    if not folder.is_dir():
        return f"{what} '{path}': '{folder}' is not a folder"
    if not os.access(folder, os.W_OK | os.X_OK):
        return f"{what} '{path}': folder '{folder}' is not writable"
    return None
