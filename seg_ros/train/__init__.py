"""Training: any registry model on a CamVid-layout folder or on synthetic scenes.

By concern: :mod:`~seg_ros.train.config` (settings and their checks), :mod:`~seg_ros.train.loop` (the loop),
:mod:`~seg_ros.train.augment` (LiteSeg augmentation), :mod:`~seg_ros.train.loss` (cross-entropy / OHEM,
class weights from :mod:`~seg_ros.train.class_balance`), :mod:`~seg_ros.train.validate` (scoring through the
Segmenter's own preprocessing), :mod:`~seg_ros.train.checkpoint` (safetensors resume checkpoints) and
:mod:`~seg_ros.train.provenance` (fine-tuning parents, the model file's provenance), :mod:`~seg_ros.train.frames`
(pooled splits and subsets), :mod:`~seg_ros.train.sequences` (frames grouped by sequence, held-out sequences and
folds) and :mod:`~seg_ros.train.folds` (cross-validation by sequence and its report).
"""

from seg_ros.train.augment import Augment, AugmentedDataset
from seg_ros.train.checkpoint import EpochRecord
from seg_ros.train.config import TrainConfig, check_config
from seg_ros.train.folds import FoldScore, FoldsReport, cross_validate, read_folds_report
from seg_ros.train.loop import TrainingDivergedError, TrainResult, train
from seg_ros.train.loss import segmentation_loss
from seg_ros.train.provenance import validation_summary
from seg_ros.train.sequences import parse_folds
from seg_ros.train.validate import validate

__all__ = ["Augment", "AugmentedDataset", "EpochRecord", "FoldScore", "FoldsReport", "TrainConfig", "TrainResult",
           "TrainingDivergedError", "check_config", "cross_validate", "parse_folds", "read_folds_report",
           "segmentation_loss", "train", "validate", "validation_summary"]
