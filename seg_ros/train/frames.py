"""Training frames pooled from several splits of a CamVid-layout folder, and subsets of them by index."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from seg_ros.core.errors import ConfigError
from seg_ros.io.datasets import FolderDataset
from seg_ros.train.config import TrainConfig
from seg_ros.train.sequences import parse_grouping, split_by_sequence


class PooledFrames:
    """The union of ``splits`` of the CamVid-layout folder ``root``: split by split, each in name order.

    A dataset of (image, labels) pairs as :class:`~seg_ros.io.datasets.FolderDataset`: image (H, W, 3) uint8
    RGB, labels (H, W) uint8. ``stems`` are the frames' file stems, ``splits`` the split of each.
    """

    def __init__(self, root: str | os.PathLike, splits: Sequence[str]):
        self.datasets = [FolderDataset(root, s) for s in splits]
        self.refs = [(d, i) for d in self.datasets for i in range(len(d))]
        self.stems = [d.pairs[i][0].stem for d, i in self.refs]
        self.splits = [s for s, d in zip(splits, self.datasets) for _ in range(len(d))]
        self.name = f"{self.datasets[0].root.name}/{'+'.join(splits)}"

    def __len__(self) -> int:
        return len(self.refs)

    def __getitem__(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        dataset, j = self.refs[i]
        return dataset[j]

    def labels(self, i: int) -> np.ndarray:
        """Only the (H, W) uint8 label map of frame ``i``."""
        dataset, j = self.refs[i]
        return dataset.labels(j)

    def subset(self, indices: Sequence[int], name: str) -> FrameSubset:
        """The frames at ``indices`` (in that order), called ``name``."""
        return FrameSubset(self, indices, name)


class FrameSubset:
    """Some frames of a :class:`PooledFrames`, by index; the same dataset interface."""

    def __init__(self, pool: PooledFrames, indices: Sequence[int], name: str):
        self.pool, self.indices, self.name = pool, list(indices), name
        self.stems = [pool.stems[i] for i in self.indices]

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        return self.pool[self.indices[i]]

    def labels(self, i: int) -> np.ndarray:
        """Only the (H, W) uint8 label map of frame ``i``."""
        return self.pool.labels(self.indices[i])


def folder_sources(cfg: TrainConfig) -> tuple[FolderDataset | PooledFrames | FrameSubset,
                                              FolderDataset | FrameSubset, dict[str, Any] | None]:
    """The (train, validation) datasets of ``cfg.data`` and the validation scheme to record in the provenance.

    - ``cfg.val_sequences``: the pooled ``cfg.train_splits`` split by sequence (``cfg.group_by``): validation is
      every frame of the held-out sequences, training every other frame. The scheme records both sides' sequences.
    - otherwise: the pooled splits train and ``cfg.val_split`` validates. The default (``train`` alone) records
      no scheme; pooled splits record whether the validation split is among them (then it is not held out).
    """
    if cfg.data is None:
        raise ConfigError("training on dataset frames needs a dataset folder (--data).")
    splits = list(cfg.train_splits)
    if not cfg.val_sequences:
        train = FolderDataset(cfg.data, splits[0]) if len(splits) == 1 else PooledFrames(cfg.data, splits)
        val = FolderDataset(cfg.data, cfg.val_split)
        if splits == ["train"]:
            return train, val, None
        return train, val, {"scheme": "split", "train_splits": splits, "val_split": cfg.val_split,
                            "held_out": cfg.val_split not in splits}
    pool = PooledFrames(cfg.data, splits)
    grouping = parse_grouping(cfg.group_by)
    groups = grouping.groups(pool.stems)
    train_idx, val_idx = split_by_sequence(groups, cfg.val_sequences)
    held_out = sorted(set(cfg.val_sequences))
    trained = sorted({groups[i] for i in train_idx})
    train = pool.subset(train_idx, f"{pool.name}[{','.join(trained)}]")
    val = pool.subset(val_idx, f"{pool.name}[{','.join(held_out)}]")
    scheme = {"scheme": "held-out sequences", "group_by": cfg.group_by, "held_out": held_out,
              "train_sequences": trained, "frames": {"train": len(train_idx), "val": len(val_idx)}}
    return train, val, scheme
