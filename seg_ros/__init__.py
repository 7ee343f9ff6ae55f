"""seg_ros: real-time semantic segmentation for ROS 2 camera streams."""

from importlib.metadata import PackageNotFoundError, version

try:  # the one place of the version is package.xml; setup.py copies it into the distribution's metadata
    __version__ = version("seg_ros")
except PackageNotFoundError:  # a source tree on sys.path that was never installed
    __version__ = "0+unknown"
