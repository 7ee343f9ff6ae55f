import pytest

from seg_ros.ros.qos import choose_reliability, incompatible_qos_hint


@pytest.mark.parametrize("setting,offered,chosen", [
    ("best_effort", ["reliable"], "best_effort"),
    ("reliable", ["best_effort"], "reliable"),
    ("auto", [], "best_effort"),
    ("auto", ["reliable"], "reliable"),
    ("auto", ["reliable", "reliable"], "reliable"),
    ("auto", ["reliable", "best_effort"], "best_effort"),
    ("auto", ["best_effort"], "best_effort"),
])
def test_choose_reliability(setting, offered, chosen):
    assert choose_reliability(setting, offered) == chosen


def test_unknown_setting():
    with pytest.raises(ValueError, match="qos.reliability"):
        choose_reliability("sometimes", [])


def test_hints_name_the_parameter_that_fixes_it():
    hint = incompatible_qos_hint("/cam/image", "RELIABILITY", "reliable", "reliable")
    assert "/cam/image" in hint and "qos.reliability to best_effort" in hint and hint.endswith(".")
    hint = incompatible_qos_hint("/cam/image", "RMW_QOS_POLICY_DEADLINE", "auto", "best_effort")
    assert "DEADLINE" in hint and "qos.reliability" in hint
