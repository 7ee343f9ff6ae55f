"""The ``seg-ros`` command.

Subcommands: ``models``, ``segment``, ``train``, ``bench``, ``export``, ``bag-from-dataset``,
``evaluate``, ``import-checkpoint``, ``tune-crf``, ``soak``, ``demo``, one module each in this package
(assembled by :mod:`seg_ros.cli.parser`; shared argument types in :mod:`seg_ros.cli.args`). A user
error (bad path, bad setting, unreadable input) prints one sentence to stderr
and exits with status 2, leaving no half-written output; Ctrl-C at any moment
prints one line and exits with status 130. Every output path is checked before
the work starts.
"""

from __future__ import annotations

import sys

from seg_ros.cli.exits import EXIT_INTERNAL_ERROR, EXIT_INTERRUPTED, EXIT_USER_ERROR

# Only light modules at module level: torch, OpenCV and the ROS libraries are imported by the subcommands,
# inside main's error handling, so that an interrupt or a broken install at any moment gives one line.
try:
    import os

    from seg_ros.core.errors import SegRosError, clip

    # FFmpeg (inside OpenCV) would print its own lines about a corrupt video ("moov atom not found") beside the
    # command's one sentence; it reads the level once, at its first use in the process.
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
except KeyboardInterrupt:  # Ctrl-C while the command starts, before main can catch it
    sys.stderr.write("seg-ros: interrupted\n")
    sys.exit(EXIT_INTERRUPTED)

DEBUG_ENV = "SEG_ROS_DEBUG"
"""Set to 1 to get Python's traceback instead of one line for an unexpected error."""


def main(argv: list[str] | None = None) -> int:
    """Run ``seg-ros`` with ``argv`` (default: the process's arguments); returns the exit status.

    0: done; 2: a user error (one sentence on stderr, no output written); 130: interrupted (one line);
    1: an unexpected error (one line; the traceback with ``SEG_ROS_DEBUG=1``).
    """
    name = "seg-ros"
    process = argv is None  # the command of this process, not a call from Python code
    try:
        if process:
            from seg_ros.core.staging import catch_interrupts

            catch_interrupts()
        from seg_ros.cli.parser import build_parser

        args = build_parser().parse_args(argv)
        name = f"seg-ros {args.command}"
        args.argv = list(sys.argv[1:] if process else argv)
        _raise_if_interrupted()  # one that a library swallowed while the parser imported it
        status = args.func(args) or 0
        _raise_if_interrupted()
        if process:  # the work is done and committed: a Ctrl-C during Python's shutdown changes nothing
            _ignore_interrupts()
    except KeyboardInterrupt:
        if process:  # a second Ctrl-C must not break the line below
            _ignore_interrupts()
        print(f"{name}: interrupted", file=sys.stderr)
        if process:
            # Exit now, with 130: an interrupt that passed through a library's C code has made Python
            # re-raise SIGINT at exit (status -2); output folders were already rolled back while unwinding.
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(EXIT_INTERRUPTED)
        return EXIT_INTERRUPTED
    except Exception as e:  # noqa: BLE001 - every error ends as one line, see _user_error
        sentence = _user_error(e)
        if sentence is None:
            if os.environ.get(DEBUG_ENV, "") not in ("", "0"):
                raise
            print(f"{name}: internal error: {type(e).__name__}: {_first_line(e)} (this is a bug; rerun with "
                  f"{DEBUG_ENV}=1 for the traceback and report it)", file=sys.stderr)
            return EXIT_INTERNAL_ERROR
        print(f"{getattr(e, 'prog', name)}: error: {sentence}", file=sys.stderr)  # prog: cli.args.OptionError
        return EXIT_USER_ERROR
    return status


__all__ = ["DEBUG_ENV", "EXIT_INTERNAL_ERROR", "EXIT_INTERRUPTED", "EXIT_USER_ERROR", "main"]


def _ignore_interrupts() -> None:
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _raise_if_interrupted() -> None:
    outputs = sys.modules.get("seg_ros.core.staging")
    if outputs is not None:
        outputs.raise_if_interrupted()


def _first_line(e: BaseException) -> str:
    lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
    return lines[0] if lines else type(e).__name__


def _user_error(e: Exception) -> str | None:
    """The one sentence for an error the user's input or machine causes, or None for a bug."""
    if isinstance(e, SegRosError):
        return str(e)
    if isinstance(e, MemoryError) or (isinstance(e, RuntimeError) and any(
            k in str(e).lower() for k in ("not enough memory", "out of memory", "can't allocate memory"))):
        return ("the job ran out of memory; use smaller inputs, a smaller --resolution or batch, or a machine with "
                "more memory.")
    if isinstance(e, RecursionError):
        return "an input is nested too deeply to be read (e.g. a model file's metadata); it is not a valid input."
    if isinstance(e, OSError):
        where = f" {clip(e.filename)}" if e.filename else ""
        return f"cannot use{where}: {e.strerror or _first_line(e)}."
    cv2 = sys.modules.get("cv2")
    if cv2 is not None and isinstance(e, cv2.error):
        detail = _first_line(e).partition("error: ")[2] or _first_line(e)
        return f"OpenCV cannot process an input ({detail.rstrip('.')})."
    return None

