"""The exit statuses of ``seg-ros``, shared by :func:`seg_ros.cli.main` and the argument parser."""

EXIT_USER_ERROR = 2
"""A user error: one sentence on stderr, no output written (argparse's usage errors too)."""

EXIT_INTERNAL_ERROR = 1
"""An unexpected error, a bug: one line (the traceback with ``SEG_ROS_DEBUG=1``)."""

EXIT_INTERRUPTED = 130
"""Ctrl-C: one line, output folders rolled back."""
