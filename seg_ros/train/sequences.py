"""Frames grouped by the sequence (drive) they come from, and validation splits that hold out whole sequences.

Neighbouring frames of one drive show the same streets, so a validation frame whose sequence is also trained
on measures memory more than generalisation. Here a grouping assigns every frame (by file stem) to a sequence:

- ``prefix``: the part of the stem before its last ``_`` (CamVid: ``0016E5_07959`` → ``0016E5``);
- ``list:FILE``: a text file of ``frame_stem group`` lines (blank lines and ``#`` comments skipped).

:func:`split_by_sequence` holds out named sequences; :func:`sequence_folds` deals the sequences into k folds.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from seg_ros.core.errors import ConfigError, InputError
from seg_ros.core.paths import read_text_file

PREFIX = "prefix"
LIST_PREFIX = "list:"
EVERY_SEQUENCE = "sequence"
"""``--folds sequence``: one fold per sequence."""


def prefix_group(stem: str) -> str:
    """The sequence of a frame named ``<sequence>_<frame>``: the stem before its last ``_``."""
    head, sep, _ = stem.rpartition("_")
    if not sep or not head:
        raise ConfigError(f"frame {stem!r} has no '<sequence>_' prefix; name frames <sequence>_<frame> or "
                          "group them with --group-by list:FILE.")
    return head


def read_group_list(path: str | Path) -> dict[str, str]:
    """``frame_stem group`` lines of ``path`` → {stem: group}; blank lines and ``#`` comments are skipped."""
    p = Path(path)
    try:
        text = read_text_file(p, "group list")
    except InputError as e:
        raise ConfigError(str(e)) from None
    table: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), 1):
        words = line.split("#", 1)[0].split()
        if not words:
            continue
        if len(words) != 2:
            raise ConfigError(f"line {number} of the group list {p} is not 'frame_stem group': {line.strip()!r}.")
        stem, group = words
        if table.get(stem, group) != group:
            raise ConfigError(f"the group list {p} puts frame {stem!r} in two groups ({table[stem]}, {group}).")
        table[stem] = group
    if not table:
        raise ConfigError(f"the group list {p} names no frame.")
    return table


@dataclass(frozen=True)
class Grouping:
    """How frames are assigned to sequences: ``spec`` is ``prefix`` or ``list:FILE`` (then ``table`` holds it)."""

    spec: str = PREFIX
    table: Mapping[str, str] | None = field(default=None, compare=False)

    def group_of(self, stem: str) -> str:
        """The sequence of the frame with file stem ``stem``."""
        if self.table is None:
            return prefix_group(stem)
        try:
            return self.table[stem]
        except KeyError:
            raise ConfigError(f"frame {stem!r} is not in the group list {self.spec[len(LIST_PREFIX):]}.") from None

    def groups(self, stems: Sequence[str]) -> list[str]:
        """The sequence of every stem, in order."""
        return [self.group_of(s) for s in stems]


def parse_grouping(spec: str) -> Grouping:
    """``prefix`` or ``list:FILE`` → a :class:`Grouping` (the list file read now)."""
    if spec == PREFIX:
        return Grouping()
    if spec.startswith(LIST_PREFIX) and spec[len(LIST_PREFIX):]:
        return Grouping(spec, read_group_list(spec[len(LIST_PREFIX):]))
    raise ConfigError(f"--group-by must be prefix or list:FILE, not {spec!r}.")


def check_sequences_exist(groups: Sequence[str], held_out: Collection[str]) -> None:
    """ConfigError unless every name of ``held_out`` is the sequence of at least one frame."""
    present = set(groups)
    missing = sorted(set(held_out) - present)
    if missing:
        raise ConfigError(f"no frame belongs to sequence {missing[0]!r}; the sequences are "
                          f"{', '.join(sorted(present))}.")


def split_by_sequence(groups: Sequence[str], held_out: Collection[str]) -> tuple[list[int], list[int]]:
    """Frame indices (into ``groups``, the sequence of each frame) → (training, validation) index lists.

    Validation is every frame of a ``held_out`` sequence, training every other frame; both keep frame order.

    Raises:
        ConfigError: a held-out name matches no frame, or nothing would be left to train on.
    """
    if not held_out:
        raise ConfigError("name at least one sequence to hold out for validation.")
    check_sequences_exist(groups, held_out)
    held = set(held_out)
    val = [i for i, g in enumerate(groups) if g in held]
    train = [i for i, g in enumerate(groups) if g not in held]
    if not train:
        raise ConfigError(f"holding out {', '.join(sorted(held))} leaves no frame to train on.")
    leaked = {groups[i] for i in train} & held
    if leaked:  # guards the invariant the split exists for
        raise RuntimeError(f"held-out sequences {sorted(leaked)} reached the training frames.")
    return train, val


def parse_folds(text: str) -> int | None:
    """``--folds``: a count k ≥ 2, or ``sequence`` (None: one fold per sequence)."""
    if text == EVERY_SEQUENCE:
        return None
    try:
        k = int(text)
    except ValueError:
        raise ConfigError(f"--folds must be a number of folds (2 or more) or 'sequence', not {text!r}.") from None
    if k < 2:
        raise ConfigError(f"--folds must be at least 2, not {k}.")
    return k


def sequence_folds(groups: Sequence[str], k: int | None) -> list[list[str]]:
    """The held-out sequences of each of ``k`` folds (None: one fold per sequence), each list sorted.

    Sequences are dealt largest first (most frames; ties by name) to the fold with the fewest frames so far,
    so folds are about equal in frames and the result depends only on the frames' groups.

    Raises:
        ConfigError: fewer than 2 sequences, or fewer sequences than folds.
    """
    sizes = Counter(groups)
    if len(sizes) < 2:
        raise ConfigError(f"folds need at least 2 sequences; the frames form {len(sizes)} "
                          f"({', '.join(sorted(sizes)) or 'none'}).")
    k = len(sizes) if k is None else k
    if k > len(sizes):
        raise ConfigError(f"{k} folds need at least {k} sequences; the frames form {len(sizes)} "
                          f"({', '.join(sorted(sizes))}).")
    folds: list[list[str]] = [[] for _ in range(k)]
    frames = [0] * k
    for name, count in sorted(sizes.items(), key=lambda item: (-item[1], item[0])):
        i = min(range(k), key=lambda j: (frames[j], j))
        folds[i].append(name)
        frames[i] += count
    return [sorted(f) for f in folds]
