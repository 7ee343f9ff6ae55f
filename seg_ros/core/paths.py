"""Checks of the paths a command reads and writes, made before any work starts.

Inputs must be what they claim to be: a regular file or a folder. A FIFO, a
device or a socket is refused before it is opened (reading one can block
forever or never end). Outputs are checked by creating and removing a probe
file where they will be written, which is the only test that holds for every
reason a path can be unwritable (permissions, a read-only file system, a file
where a folder is needed, /proc).
"""

from __future__ import annotations

import os
import stat
import tempfile
from collections.abc import Callable
from pathlib import Path

from seg_ros.core.errors import InputError, clip

MAX_TEXT_BYTES = 4 << 20
"""The largest text input read whole (parameter file, bag metadata, ONNX sidecar, group list, report): 4 MiB.
Real ones are kilobytes (a group list of 100,000 frames is about 3 MB); the YAML parser needs about 90 bytes of
memory and 3 µs per byte, so a larger file is refused by its size before a byte of it is read."""

_KINDS = ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
          (stat.S_ISSOCK, "a socket"))


def _stat(path: Path, what: str) -> os.stat_result:
    try:
        return path.stat()
    except FileNotFoundError:
        raise InputError(f"{what} {path} does not exist.") from None
    except OSError as e:
        raise InputError(f"{what} {clip(path)} cannot be read ({e.strerror}).") from None


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a folder"
    return next((name for test, name in _KINDS if test(mode)), "not a regular file")


def _require(path: str | os.PathLike, what: str, accept: Callable[[int], bool],
             refusal: Callable[[Path, int], str]) -> Path:
    """``path`` as a Path whose mode ``accept`` takes; else InputError with ``refusal(path, mode)``."""
    p = Path(path)
    mode = _stat(p, what).st_mode
    if not accept(mode):
        raise InputError(refusal(p, mode))
    return p


def require_file(path: str | os.PathLike, what: str = "input") -> Path:
    """``path`` as a Path; InputError unless it is an existing regular file (a link to one counts)."""
    return _require(path, what, stat.S_ISREG,
                    lambda p, mode: f"{what} {p} is {_kind(mode)}, not a regular file; give a file.")


def require_text_file(path: str | os.PathLike, what: str = "input", max_bytes: int = MAX_TEXT_BYTES) -> Path:
    """``path`` as a Path; InputError unless it is a regular file of at most ``max_bytes`` bytes. Nothing is
    read: for a file another library will parse."""
    p = require_file(path, what)
    if _stat(p, what).st_size > max_bytes:
        raise InputError(_too_big(p, what, max_bytes))
    return p


def _too_big(p: Path, what: str, max_bytes: int) -> str:
    return f"{what} {clip(p)} is larger than {max_bytes:,} bytes, more than any {what} needs; give the right file."


def read_text_file(path: str | os.PathLike, what: str = "input", max_bytes: int = MAX_TEXT_BYTES) -> str:
    """The UTF-8 text of the regular file ``path``; InputError (one sentence naming ``what``) when it is not a
    regular file, holds more than ``max_bytes`` bytes (checked before reading, and the read stops there should
    the file grow), cannot be read, or is not UTF-8."""
    p = require_text_file(path, what, max_bytes)
    try:
        with p.open("rb") as f:
            data = f.read(max_bytes + 1)
    except OSError as e:
        raise InputError(f"cannot read the {what} {clip(p)} ({e.strerror or e.__class__.__name__}).") from None
    if len(data) > max_bytes:
        raise InputError(_too_big(p, what, max_bytes))
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise InputError(f"{what} {clip(p)} is not UTF-8 text (byte {e.start} cannot be decoded).") from None


def require_dir(path: str | os.PathLike, what: str = "folder") -> Path:
    """``path`` as a Path; InputError unless it is an existing folder."""
    return _require(path, what, stat.S_ISDIR, lambda p, mode: (
        f"{what} {p} is {_kind(mode) if not stat.S_ISREG(mode) else 'a file'}, not a folder."))


def require_file_or_dir(path: str | os.PathLike, what: str = "input") -> Path:
    """``path`` as a Path; InputError unless it is an existing regular file or folder."""
    return _require(path, what, lambda mode: stat.S_ISREG(mode) or stat.S_ISDIR(mode),
                    lambda p, mode: f"{what} {p} is {_kind(mode)}; give a regular file or a folder.")


def _nearest_existing(p: Path) -> Path:
    p = Path(os.path.abspath(p))
    while not os.path.lexists(p) and p != p.parent:
        p = p.parent
    return p


def write_probe(folder: str | os.PathLike) -> None:
    """Create and remove a file in ``folder``; OSError when that fails. The one writability test that holds for
    every reason (permissions for root too, read-only mounts, ACLs, /proc)."""
    fd, probe = tempfile.mkstemp(prefix=".seg-ros-probe-", dir=folder)
    os.close(fd)
    os.unlink(probe)


def _probe_writable(folder: Path, target: Path, what: str) -> None:
    """:func:`write_probe` in ``folder``; InputError naming ``target`` when that fails."""
    try:
        write_probe(folder)
    except OSError as e:
        raise InputError(f"{what} {target} cannot be written: creating a file in {folder} fails "
                         f"({e.strerror}); choose another path.") from None


def check_creatable(folder: Path, target: Path, what: str) -> None:
    """InputError unless ``folder`` is a writable folder or can be created as one (``target`` names the output)."""
    base = _nearest_existing(folder)
    try:
        mode = base.stat().st_mode
    except OSError as e:  # a dangling link
        raise InputError(f"{what} {target} cannot be written ({e.strerror}: {base}); choose another path.") from None
    if not stat.S_ISDIR(mode):
        kind = "a file" if stat.S_ISREG(mode) else _kind(mode)
        if base == Path(os.path.abspath(target)):
            raise InputError(f"{what} {target} is {kind}, not a folder; choose another path.")
        raise InputError(f"{what} {target} cannot be written: {base} is {kind}, not a folder; "
                         "choose another path.")
    _probe_writable(base, target, what)


def check_output_dir(path: str | os.PathLike, what: str = "output folder") -> Path:
    """``path`` as a Path; InputError unless it is a folder, or can be created as one, that this process can write.

    Nothing is left behind: a folder that does not exist yet is not created.
    """
    p = Path(path)
    check_creatable(p, p, what)
    return p


def check_output_file(path: str | os.PathLike, what: str = "output file") -> Path:
    """``path`` as a Path; InputError unless a regular file can be written (or replaced) there.

    Nothing is left behind: the file and missing parent folders are not created.
    """
    p = Path(path)
    if p.name in ("", ".", ".."):
        raise InputError(f"{what} {p} names a folder, not a file; give a file name.")
    if os.path.lexists(p):
        try:
            mode = p.stat().st_mode
        except OSError as e:
            raise InputError(f"{what} {p} cannot be written ({e.strerror}); choose another path.") from None
        if not stat.S_ISREG(mode):
            raise InputError(f"{what} {p} is {_kind(mode)}, not a regular file; choose another path.")
    check_creatable(p.parent, p, what)
    return p
