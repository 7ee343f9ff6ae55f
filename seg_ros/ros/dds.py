"""The Fast DDS profile shipped with the node, and the environment that loads it.

Under a flood of images whose size changes every frame, Fast DDS's default
reader sample pools keep growing (docs/soak.md). ``fastdds_profile.xml``, next
to this module (so every install method ships it), caps them. The node loads
it unless the user chose a profile file or another RMW. Pure Python, no rclpy.
"""

from __future__ import annotations

import os
from collections.abc import MutableMapping
from pathlib import Path

PROFILE = Path(__file__).resolve().with_name("fastdds_profile.xml")
"""The shipped profile: a default DataReader profile with bounded resource limits."""
FAST_DDS_2_DISTROS = ("humble", "iron", "jazzy")
"""Distributions whose Fast DDS (2.x) reads FASTRTPS_DEFAULT_PROFILES_FILE; later ones read FASTDDS_…."""
PROFILE_VARIABLES = ("FASTDDS_DEFAULT_PROFILES_FILE", "FASTRTPS_DEFAULT_PROFILES_FILE")
FAST_DDS_RMWS = ("", "rmw_fastrtps_cpp", "rmw_fastrtps_dynamic_cpp")


def profile_env(profile: str | os.PathLike | None, ros_distro: str | None = None) -> dict[str, str]:
    """Environment that makes Fast DDS load the XML ``profile`` ({} for None).

    Fast DDS 3 (ROS 2 Kilted and later) reads ``FASTDDS_DEFAULT_PROFILES_FILE``; Fast DDS 2 (Humble, Jazzy)
    reads ``FASTRTPS_DEFAULT_PROFILES_FILE``, which Kilted's rmw still honours with a deprecation warning.
    ``ros_distro`` defaults to ``$ROS_DISTRO`` (unset in a venv of PyPI ROS wheels, which are Kilted's).
    """
    if profile is None:
        return {}
    distro = (ros_distro if ros_distro is not None else os.environ.get("ROS_DISTRO", "")).lower()
    name = PROFILE_VARIABLES[1] if distro in FAST_DDS_2_DISTROS else PROFILE_VARIABLES[0]
    return {name: str(Path(profile).resolve())}


def default_profile_env(profile: str | os.PathLike = PROFILE,
                        environ: MutableMapping[str, str] | None = None) -> dict[str, str]:
    """What to add to a node's environment so it loads ``profile`` unless the user decided otherwise.

    {} when ``environ`` (default ``os.environ``) already names a Fast DDS profile file, or selects an RMW
    other than Fast DDS (``RMW_IMPLEMENTATION``); else :func:`profile_env` for its ``ROS_DISTRO``.
    """
    env = os.environ if environ is None else environ
    if any(env.get(name) for name in PROFILE_VARIABLES):
        return {}
    if env.get("RMW_IMPLEMENTATION", "") not in FAST_DDS_RMWS:
        return {}
    return profile_env(profile, env.get("ROS_DISTRO", ""))


def use_default_profile(environ: MutableMapping[str, str] | None = None) -> dict[str, str]:
    """Put the shipped profile into ``environ`` (default ``os.environ``) per :func:`default_profile_env`.

    Call it before ``rclpy.init``: Fast DDS reads the variable when the process's first participant is created.
    Returns what was added.
    """
    env = os.environ if environ is None else environ
    added = default_profile_env(PROFILE, env)
    env.update(added)
    return added
