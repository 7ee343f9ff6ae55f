"""Input QoS decisions, kept apart from rclpy so they are unit-tested: ``qos.reliability`` and its hints.

``best_effort`` (the sensor-data default) receives from every publisher;
``reliable`` receives only from reliable publishers; ``auto`` looks at what the
publishers on the input topic offer and picks ``reliable`` only when every one
of them is reliable (a best-effort subscription would lose frames a reliable
publisher retransmits), else ``best_effort``.
"""

from __future__ import annotations

from collections.abc import Sequence

RELIABILITIES = ("best_effort", "reliable")


def choose_reliability(setting: str, offered: Sequence[str]) -> str:
    """The reliability to subscribe with: ``setting`` itself, or for ``auto`` the match for ``offered``.

    ``offered``: the reliabilities (``best_effort`` / ``reliable``) of the publishers now on the topic.
    With no publisher yet, ``auto`` subscribes best effort, which matches any publisher that appears.
    """
    if setting in RELIABILITIES:
        return setting
    if setting != "auto":
        raise ValueError(f"qos.reliability must be best_effort, reliable or auto, not {setting!r}.")
    if offered and all(o == "reliable" for o in offered):
        return "reliable"
    return "best_effort"


def incompatible_qos_hint(topic: str, policy: str, setting: str, chosen: str) -> str:
    """One sentence for a publisher whose QoS does not match the node's subscription, naming the fix.

    ``policy``: the rmw name of the last incompatible policy (e.g. ``RELIABILITY``); ``setting``: the
    ``qos.reliability`` parameter; ``chosen``: the reliability actually requested.
    """
    policy = policy.upper().replace("RMW_QOS_POLICY_", "")
    if policy == "RELIABILITY":
        return (f"a publisher on {topic} offers best-effort reliability but this node subscribes reliably "
                f"(qos.reliability={setting}); its frames are not received; set qos.reliability to "
                "best_effort (or auto), e.g. ros2 param set <node> qos.reliability best_effort.")
    return (f"a publisher on {topic} offers a {policy} policy incompatible with this node's subscription "
            f"({chosen}, depth from qos.depth); its frames are not received; set qos.reliability to best_effort.")
