"""How the node process is asked to stop: SIGINT / SIGTERM as an event, and exit with the parent process.

Pure Python (no rclpy, no torch), imported by ``node.py`` before anything heavy: when this process *is* the
node (``python -m seg_ros.ros.node`` or the ``segmentation_node`` entry point), the handlers are installed at
import, so a Ctrl-C during the seconds that importing torch takes is a clean stop too, not a traceback.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import threading
from typing import Any

from seg_ros.ros.launch_support import EXIT_WITH_PARENT_ENV

_PR_SET_PDEATHSIG = 1
_NODE_MODULE = "seg_ros.ros.node"
_NODE_EXECUTABLE = "segmentation_node"


class StopSignals:
    """SIGINT and SIGTERM as an event: the first asks for a stop, later ones only set ``hurry``."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self.requested = threading.Event()
        self.hurry = threading.Event()
        self.installed = False

    def install(self) -> StopSignals:
        """Handle SIGINT and SIGTERM from now on (main thread only); returns self."""
        for sig in self.SIGNALS:
            signal.signal(sig, self._handle)
        self.installed = True
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        if self.requested.is_set():
            self.hurry.set()
        self.requested.set()

    def request(self) -> None:
        self.requested.set()

    def wait(self) -> None:
        """Block until a signal (or :meth:`request`) asks for a stop."""
        while not self.requested.wait(1.0):
            pass


def exit_with_parent(stop: StopSignals) -> None:
    """With ``SEG_ROS_EXIT_WITH_PARENT=1`` on Linux: SIGTERM when the parent dies (prctl PR_SET_PDEATHSIG), and a
    stop right away if it already has (this process was re-parented to init)."""
    if os.environ.get(EXIT_WITH_PARENT_ENV) != "1" or not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)
    except (OSError, AttributeError):  # pragma: no cover - no usable libc: the launch stops the node itself
        return
    if os.getppid() == 1:
        stop.request()


def _this_process_is_the_node() -> bool:
    main = sys.modules.get("__main__")
    spec = getattr(main, "__spec__", None)
    return (getattr(spec, "name", None) == _NODE_MODULE
            or os.path.basename(sys.argv[0] if sys.argv else "") == _NODE_EXECUTABLE)


PROCESS_STOP = StopSignals()
"""The node process's stop event; its handlers are installed at import when this process is the node."""
if _this_process_is_the_node() and threading.current_thread() is threading.main_thread():
    PROCESS_STOP.install()
    exit_with_parent(PROCESS_STOP)
