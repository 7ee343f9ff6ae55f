"""``segmentation_lifecycle_node``: the segmentation node as a managed (lifecycle) node.

The same engine, parameters, topics and diagnostics as ``segmentation_node``
(:class:`~seg_ros.ros.node.SegmentationFrontEnd`); only the bring-up differs,
one step per transition, so a Nav2-style lifecycle manager decides when the
model is loaded and when frames flow::

    unconfigured --configure--> inactive     parameters read and checked; the model loaded and the backend
                                             built or imported from the cache (the slow part); worker idle
    inactive     --activate---> active       publishers and subscriptions of every camera, diagnostics
    active       --deactivate-> inactive     topics gone, waiting frames dropped, the frame in progress finished
    inactive     --cleanup----> unconfigured the engine and the model freed (CUDA cache emptied, heap trimmed)
    any          --shutdown---> finalized    whatever is up taken down, in that order

A transition that cannot be made (a model file that does not load, a backend that cannot run and no
fallback) returns FAILURE with the reason in the log, and the node stays where it was; parameters can be
fixed with ``ros2 param set`` and the transition tried again. Parameters set while unconfigured are checked
at once and used at the next configure.
"""

from __future__ import annotations

# isort: off
# First, before rclpy and torch load: it installs the stop handlers when this process is the node.
from seg_ros.ros.stopping import PROCESS_STOP  # noqa: F401  (imported for its side effect)
# isort: on

import sys
from typing import Any

from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn

from seg_ros.config import NODE_NAME
from seg_ros.ros.node import SegmentationFrontEnd, parameter_values, run_node


class LifecycleSegmentationNode(SegmentationFrontEnd, LifecycleNode):
    """The managed variant of ``segmentation_node`` (module docstring); parameters are declared at construction,
    nothing else is built until ``configure``."""

    def __init__(self, **node_kwargs: Any) -> None:
        LifecycleNode.__init__(self, NODE_NAME, **node_kwargs)
        self._declare()
        self.get_logger().info("unconfigured: waiting for the configure transition to load the model")

    @property
    def configured(self) -> bool:
        """Whether the model is loaded (inactive or active)."""
        return self._engine is not None

    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        try:
            self._load(parameter_values(self))
        except Exception as e:  # noqa: BLE001 - a failed transition is a FAILURE with its reason, never a crash
            self.get_logger().error(f"configure failed, the node stays unconfigured: {_reason(e)}")
            self._unload()
            return TransitionCallbackReturn.FAILURE
        self.get_logger().info(f"configured: {self._engine.segmenter.describe()}")  # type: ignore[union-attr]
        return TransitionCallbackReturn.SUCCESS

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        try:
            self._open()
        except Exception as e:  # noqa: BLE001 - e.g. a remapping rcl refuses
            self.get_logger().error(f"activate failed, the node stays inactive: {_reason(e)}")
            self._shut()
            return TransitionCallbackReturn.FAILURE
        self.announce_ready()
        return TransitionCallbackReturn.SUCCESS

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._shut()
        self.get_logger().info("inactive: topics closed, waiting frames dropped")
        return TransitionCallbackReturn.SUCCESS

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._unload()
        self.get_logger().info("unconfigured: the model is freed")
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._shut(timeout=1.0)
        self._unload()
        return TransitionCallbackReturn.SUCCESS

    def on_error(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.get_logger().error("error in a transition: taking everything down; configure again to recover")
        self._shut(timeout=1.0)
        self._unload()
        return TransitionCallbackReturn.SUCCESS

    def announce_ready(self) -> None:
        """Log the ready line once active; while not, say which transition it waits for."""
        if self._ports:
            super().announce_ready()


def _reason(e: BaseException) -> str:
    lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
    return lines[0] if lines else type(e).__name__


def main(args: list[str] | None = None) -> int:
    """Entry point of ``ros2 run seg_ros segmentation_lifecycle_node``; exit statuses as ``segmentation_node``'s."""
    return run_node(LifecycleSegmentationNode, args)


if __name__ == "__main__":
    sys.exit(main())
