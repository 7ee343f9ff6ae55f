"""All-or-nothing output folders for the offline tools.

Files are written into a hidden staging folder next to their destination and
moved into place only when the whole job has succeeded; on any error the
staging folder is removed, so a failed command leaves no half-written output.
"""

from __future__ import annotations

import os
import shutil
import signal
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import cv2
import numpy as np

from seg_ros.core.errors import InputError

_interrupted = False


def _on_sigint(signum: int, frame: object) -> None:
    global _interrupted
    _interrupted = True
    raise KeyboardInterrupt


def catch_interrupts() -> None:
    """Handle SIGINT by raising KeyboardInterrupt *and* remembering it, for the rest of the process.

    Some libraries swallow a KeyboardInterrupt (importlib's module-lock callbacks, bare ``except:`` clauses);
    the commit points below still see the remembered interrupt, so an interrupted job never commits output.
    """
    signal.signal(signal.SIGINT, _on_sigint)


def raise_if_interrupted() -> None:
    """Raise KeyboardInterrupt if SIGINT arrived since :func:`catch_interrupts`, even if it was swallowed."""
    if _interrupted:
        raise KeyboardInterrupt


class StagedDir:
    """A staging folder: ``path(name)`` gives where to write ``name``; ``commit()`` moves everything to ``final``."""

    def __init__(self, final: Path):
        self.final = final
        self._created_final = not final.exists()
        self.stage = final / ".seg-ros-partial-unset"
        try:
            final.mkdir(parents=True, exist_ok=True)
            self.stage = Path(tempfile.mkdtemp(prefix=".seg-ros-partial-", dir=final))
        except BaseException:  # e.g. Ctrl-C between the two: leave nothing behind
            self.abort()
            raise

    def path(self, name: str) -> Path:
        p = self.stage / name
        p.parent.mkdir(parents=True, exist_ok=True)
        return p

    def commit(self) -> list[Path]:
        moved = []
        for src in sorted(p for p in self.stage.rglob("*") if p.is_file()):
            dst = self.final / src.relative_to(self.stage)
            dst.parent.mkdir(parents=True, exist_ok=True)
            os.replace(src, dst)
            moved.append(dst)
        shutil.rmtree(self.stage, ignore_errors=True)
        return moved

    def abort(self) -> None:
        shutil.rmtree(self.stage, ignore_errors=True)
        if self._created_final:
            try:
                self.final.rmdir()
            except OSError:
                pass


@contextmanager
def staged_output(final: str | os.PathLike) -> Iterator[StagedDir]:
    """Context manager: commit the staged files on success, discard them (and a folder it created) on error."""
    staged: StagedDir | None = None
    try:
        staged = StagedDir(Path(final))  # inside the try: a Ctrl-C right after it still removes the folders
        yield staged
        raise_if_interrupted()
    except BaseException:
        if staged is not None:
            staged.abort()
        raise
    staged.commit()


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; once the block succeeds it replaces ``path`` in one rename.

    On error the temporary file is removed and ``path`` is left as it was. The file gets the usual
    permissions (0666 minus the umask), unlike ``tempfile.mkstemp``'s 0600.
    """
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.with_name(f".{final.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        yield tmp
        raise_if_interrupted()
        os.replace(tmp, final)
    finally:
        tmp.unlink(missing_ok=True)


class VideoWriter:
    """MP4 writer for (H, W, 3) uint8 RGB frames (OpenCV, ``mp4v`` codec)."""

    def __init__(self, path: Path, fps: float, size: tuple[int, int]):
        h, w = size
        self._w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), float(fps), (w, h))
        if not self._w.isOpened():
            raise InputError(f"cannot open {path} for writing an MP4 video.")

    def write(self, rgb: np.ndarray) -> None:
        self._w.write(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))

    def close(self) -> None:
        self._w.release()

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
