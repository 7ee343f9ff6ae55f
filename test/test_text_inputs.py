"""Text inputs read whole (parameter files, bag metadata, sidecars, group lists, reports): by type and size first."""

import os

import pytest

from seg_ros.core.errors import InputError
from seg_ros.core.paths import read_text_file, require_text_file


def test_a_file_of_exactly_the_limit_is_read_and_one_byte_more_is_refused(tmp_path):
    p = tmp_path / "list.txt"
    p.write_bytes(b"A 0001\r\n" * 2)
    assert read_text_file(p, "group list", max_bytes=16) == "A 0001\r\nA 0001\r\n"
    p.write_bytes(b"A 0001\r\n" * 2 + b"x")
    with pytest.raises(InputError) as e:
        read_text_file(p, "group list", max_bytes=16)
    assert str(e.value) == (f"group list {p} is larger than 16 bytes, more than any group list needs; "
                            "give the right file.")
    with pytest.raises(InputError, match="is larger than 16 bytes"):
        require_text_file(p, "group list", max_bytes=16)
    assert require_text_file(p, "group list", max_bytes=17) == p


def test_text_that_is_not_utf8_names_the_first_bad_byte(tmp_path):
    p = tmp_path / "params.yaml"
    p.write_bytes("model: café\n".encode() + b"\xff")
    with pytest.raises(InputError) as e:
        read_text_file(p, "parameter file")
    assert str(e.value) == f"parameter file {p} is not UTF-8 text (byte 13 cannot be decoded)."


@pytest.mark.parametrize("kind", ["fifo", "folder", "missing"])
def test_what_is_not_a_regular_file_is_refused_before_it_is_opened(tmp_path, kind):
    p = tmp_path / "x"
    if kind == "fifo":
        os.mkfifo(p)  # opening it to read would block for ever
    elif kind == "folder":
        p.mkdir()
    phrase = {"fifo": "is a FIFO", "folder": "is a folder", "missing": "does not exist"}[kind]
    with pytest.raises(InputError, match=phrase):
        read_text_file(p, "report")

