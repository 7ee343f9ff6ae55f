"""Cache entries that verify their content and their source: one implementation for every seg_ros cache.

An entry is one content file (an ONNX export, an int8 model, a TensorRT plan or calibration table) and a
JSON manifest beside it, written after it::

    {"format": 1, "what": "ONNX export",
     "source": {...}, "source_sha256": "...",       # what the entry was made from (its key derives from it)
     "content": "NAME", "content_bytes": N, "content_sha256": "...",
     "created": "2026-01-01T00:00:00", ...}         # plus fields a cache adds (e.g. build_seconds)

``source`` holds everything the entry depends on (the model file's SHA-256, library versions, the
calibration hash, the settings), so an entry is used only when the caller's current source equals the
recorded one and the content file has the recorded size and SHA-256. Anything else (a missing, garbled or
foreign manifest, another source, a truncated, altered or substituted content file) is logged as one line
naming the entry and the reason, removed and rebuilt. Content is written through a temporary file and a
rename, the manifest last (and removed first when an entry is rebuilt), so an interrupted write leaves an
entry that fails verification, never one that passes.

A cache folder that cannot be used (a file where a folder is expected, or the reverse, or no write
permission) is a :class:`CacheDirError` naming the path and the fix; seg_ros refuses to run a backend
uncached rather than silently re-exporting or rebuilding at every start.
"""

from __future__ import annotations

import errno
import hashlib
import json
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from seg_ros.core.errors import ConfigError
from seg_ros.core.paths import write_probe
from seg_ros.core.staging import atomic_path

log = logging.getLogger("seg_ros.runtime")

MANIFEST_FORMAT = 1
FIX = "set runtime.cache_dir (--cache-dir) or $SEG_ROS_CACHE_DIR to a writable folder"


class CacheDirError(ConfigError):
    """A cache folder or entry path is unusable: not writable, or a file where a folder is expected (or the reverse)."""


def default_cache_dir() -> Path:
    """``$SEG_ROS_CACHE_DIR``, else ``$XDG_CACHE_HOME/seg_ros``, else ``~/.cache/seg_ros``."""
    env = os.environ.get("SEG_ROS_CACHE_DIR")
    if env:
        return Path(env).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "seg_ros"


def sha256_json(obj: Any) -> str:
    """SHA-256 (hex) of ``obj`` as canonical JSON (sorted keys), the hash every cache key derives from."""
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()


def sha256_file(path: Path) -> tuple[int, str]:
    """(size in bytes, SHA-256 hex) of a file, read in 1 MiB blocks."""
    h = hashlib.sha256()
    n = 0
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
            n += len(block)
    return n, h.hexdigest()


def _canonical(obj: Any) -> Any:
    """``obj`` as it reads back from JSON (tuples become lists), so recorded and current sources compare equal."""
    return json.loads(json.dumps(obj, sort_keys=True))


def ensure_cache_dir(folder: Path) -> Path:
    """Create ``folder`` (and its parents) and check that files can be written in it.

    Raises :class:`CacheDirError` (one sentence naming the path and the fix) when a file stands where a
    folder is expected or the folder is not writable. Write permission is probed by creating a file, so
    the answer is right for root, read-only mounts and ACLs alike.
    """
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        write_probe(folder)
    except (FileExistsError, NotADirectoryError):
        blocker = next((p for p in (folder, *folder.parents) if p.exists() and not p.is_dir()), folder)
        raise CacheDirError(f"cache folder {folder} cannot be created because {blocker} is a file; remove it "
                            f"or {FIX}.") from None
    except OSError as e:
        why = "is not writable" if e.errno in (errno.EACCES, errno.EPERM, errno.EROFS) \
            else f"cannot be used ({e.strerror or e})"
        raise CacheDirError(f"cache folder {folder} {why}; {FIX}.") from None
    return folder


class CacheEntry:
    """One cache entry: ``content`` (a file) verified by ``manifest`` against ``source``.

    ``source``: JSON-serialisable description of everything the content was made from. ``what``: names
    the kind of entry in log lines and errors (e.g. ``"ONNX export"``). ``log_fn``: where the one-line
    reports of unusable entries go (default: the ``seg_ros.runtime`` logger's warning).
    """

    def __init__(self, content: str | os.PathLike, manifest: str | os.PathLike, source: dict[str, Any],
                 what: str = "cache", log_fn: Callable[[str], None] | None = None):
        self.content = Path(content)
        self.manifest = Path(manifest)
        self.source = _canonical(source)
        self.source_sha256 = sha256_json(self.source)
        self.what = what
        self._log = log_fn or log.warning

    @classmethod
    def beside(cls, content: str | os.PathLike, source: dict[str, Any], what: str = "cache",
               log_fn: Callable[[str], None] | None = None) -> CacheEntry:
        """An entry whose manifest is ``<content stem>.manifest.json`` in the same folder.

        (Not ``<stem>.json`` nor ``<name>.json``: those would be read as an ONNX file's sidecar.)
        """
        content = Path(content)
        return cls(content, content.with_name(f"{content.stem}.manifest.json"), source, what, log_fn)

    # -- reading -----------------------------------------------------------------------------------------------

    def load(self) -> Path | None:
        """The content path if the entry verifies; None when absent, or unusable (then logged and removed)."""
        result = self._check(read=False)
        return self.content if result is True else None

    def load_bytes(self) -> bytes | None:
        """The verified content bytes (read once, hashed in memory); None as for :meth:`load`."""
        result = self._check(read=True)
        return result if isinstance(result, bytes) else None

    def _check(self, read: bool) -> bytes | bool:
        self._check_kinds()
        if not self.content.exists() and not self.manifest.exists():
            return False
        problem = self.verify(read)
        if isinstance(problem, str):
            self.invalidate(problem)
            return False
        return problem

    def _check_kinds(self) -> None:
        for p in (self.content, self.manifest):
            if p.is_dir():
                raise CacheDirError(f"{p} is a folder where seg_ros keeps a {self.what} cache file; remove it or "
                                    f"{FIX}.")

    def verify(self, read: bool = False) -> bytes | bool | str:
        """True (or the content bytes when ``read``) if the entry verifies, else the reason it does not."""
        name = self.manifest.name
        try:
            rec = json.loads(self.manifest.read_text())
        except FileNotFoundError:
            return f"its manifest {name} is missing (an interrupted write)"
        except (OSError, ValueError) as e:
            return f"its manifest {name} is unreadable ({_first_line(e)})"
        problem = _source_problem(rec, self.source, f"manifest {name}")
        if problem:
            return problem
        try:
            if read:
                data = self.content.read_bytes()
                size, digest = len(data), hashlib.sha256(data).hexdigest()
            else:
                size, digest = sha256_file(self.content)
        except OSError as e:
            return f"its {self.content.name} cannot be read ({e.strerror or e})"
        if size != rec.get("content_bytes"):
            return (f"its {self.content.name} does not match the recorded size ({size} bytes, not "
                    f"{rec.get('content_bytes')}; truncated or corrupt)")
        if digest != rec.get("content_sha256"):
            return f"its {self.content.name} does not match the recorded SHA-256 (corrupt or replaced)"
        return data if read else True

    def record(self) -> dict[str, Any] | None:
        """The manifest as recorded (unverified), or None when it cannot be read."""
        try:
            rec = json.loads(self.manifest.read_text())
        except (OSError, ValueError):
            return None
        return rec if isinstance(rec, dict) else None

    # -- writing -----------------------------------------------------------------------------------------------

    def store(self, write: Callable[[Path], None], **extra: Any) -> Path:
        """Make the entry: ``write(tmp)`` writes the content to a temporary path, renamed into place; then the
        manifest is written, with ``extra`` fields and ``build_seconds`` (the time ``write`` took, unless given).
        Nothing of a failed ``write`` is left behind."""
        ensure_cache_dir(self.content.parent)
        self.manifest.unlink(missing_ok=True)
        try:
            with atomic_path(self.content) as tmp:
                t0 = time.perf_counter()
                write(tmp)
                extra.setdefault("build_seconds", round(time.perf_counter() - t0, 3))
                size, digest = sha256_file(tmp)
            rec = {"format": MANIFEST_FORMAT, "what": self.what, "source": self.source,
                   "source_sha256": self.source_sha256, "content": self.content.name, "content_bytes": size,
                   "content_sha256": digest, "created": time.strftime("%Y-%m-%dT%H:%M:%S"), **extra}
            with atomic_path(self.manifest) as tmp:
                tmp.write_text(json.dumps(rec, indent=2, sort_keys=True))
        except OSError as e:
            self.content.unlink(missing_ok=True)
            raise CacheDirError(f"cannot write the {self.what} cache entry {self.content} "
                                f"({e.strerror or e}); {FIX}.") from None
        return self.content

    def store_bytes(self, data: bytes, **extra: Any) -> Path:
        """:meth:`store` for content already in memory."""
        return self.store(lambda tmp: tmp.write_bytes(data), **extra)

    def invalidate(self, reason: str) -> None:
        """Log one line naming the entry and ``reason``, and remove it (manifest first)."""
        self._log(f"{self.what} cache entry {self.content} is unusable: {reason}; rebuilding it.")
        self.remove()

    def remove(self) -> None:
        self.manifest.unlink(missing_ok=True)
        self.content.unlink(missing_ok=True)

    def get_or_build(self, build: Callable[[Path], None], **extra: Any) -> tuple[Path, bool]:
        """The verified content path, or ``build(tmp)``'s result stored first. Returns (path, built_now).

        The folder is checked before building, so an unusable cache is reported before minutes of work.
        """
        if self.load() is not None:
            return self.content, False
        ensure_cache_dir(self.content.parent)
        self.store(build, **extra)
        return self.content, True


def seal(what: str, source: dict[str, Any], **content: Any) -> dict[str, Any]:
    """A self-verifying JSON record for a small cache kept in one file (no separate content file).

    The record holds ``content``'s fields plus the manifest fields (``format``, ``what``, ``source``,
    ``source_sha256``, ``content_sha256`` of the content fields); :func:`unseal` checks them. Write it with
    one atomic rename, so concurrent writers cannot leave a record whose hash does not match.
    """
    return {**content, "format": MANIFEST_FORMAT, "what": what, "source": _canonical(source),
            "source_sha256": sha256_json(_canonical(source)), "content_sha256": sha256_json(_canonical(content))}


def unseal(record: Any, source: dict[str, Any]) -> dict[str, Any] | str:
    """The content fields of a :func:`seal` record made from ``source``, or the reason it cannot be used."""
    problem = _source_problem(record, _canonical(source), "record")
    if problem:
        return problem
    content = {k: v for k, v in record.items() if k not in _SEAL_FIELDS}
    if sha256_json(content) != record.get("content_sha256"):
        return "its content does not match the recorded SHA-256 (corrupt or edited)"
    return content


_SEAL_FIELDS = ("format", "what", "source", "source_sha256", "content_sha256")


def _source_problem(rec: Any, source: dict[str, Any], name: str) -> str:
    """Why manifest ``rec`` does not vouch for ``source`` (empty when it does)."""
    if not isinstance(rec, dict) or rec.get("format") != MANIFEST_FORMAT:
        return f"its {name} is not a seg_ros cache manifest"
    if rec.get("source_sha256") != sha256_json(rec.get("source")):
        return f"its {name} does not match its own source hash (corrupt)"
    if rec.get("source") != source:
        return f"it was made from another source (stale: {_differences(rec.get('source'), source)})"
    return ""


def _differences(recorded: Any, current: dict[str, Any]) -> str:
    if not isinstance(recorded, dict):
        return "no source recorded"
    keys = sorted(k for k in set(recorded) | set(current) if recorded.get(k) != current.get(k))
    return f"{', '.join(keys)} differ" if keys else "sources differ"


def _first_line(e: BaseException) -> str:
    return (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
