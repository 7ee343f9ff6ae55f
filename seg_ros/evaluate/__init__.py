"""``seg-ros evaluate``: replay a bag through the Segmenter and score it against ground truth.

Every image on the image topic is read in log-time order and segmented —
lossless stepping, not wall-clock playback, so no frame is ever dropped —
with a Segmenter built from the node's parameter file (``--params``, the
same file ``segmentation_node`` reads; :func:`segmenter_from_params`).

Ground truth comes from a topic of mono8 label images (matched to camera
frames by identical ``header.stamp``) or from a folder of label PNGs (see
:class:`GroundTruthDir`). One confusion matrix is accumulated over every
scored pixel of the run (the label set's ignore id excluded), exactly as
cityscapesscripts' ``evalPixelLevelSemanticLabeling`` does. Frames without
ground truth are counted and listed, never silently dropped.

Outputs (written all-or-nothing into the report folder): ``report.json``,
``report.md``, ``iou_per_class.png``, ``confusion_matrix.png``,
``latency_histogram.png``; with ``out_bag`` a bag with the input images and
camera_info plus ``<prefix>/labels`` (mono8), ``<prefix>/color`` and
``<prefix>/overlay`` (rgb8), every message carrying its input frame's header
and log time.

Several cameras: with a bag written by ``bag-from-dataset --cameras`` (or
several image topics named), every camera is replayed in the same pass and
scored on its own; the report holds one :class:`CameraResult` per camera and
the total over all of them (one confusion matrix summed over the cameras).
The output bag then has ``<prefix>/<camera>/labels`` (``/color``, ``/overlay``).

Several sequences: with a bag whose frames come from several dataset sequences (``bag-from-dataset`` records
them from frame names such as CamVid's ``0016E5_07959``), a scored one-camera run also reports one
:class:`SequenceResult` per sequence.

Test-time augmentation (``EvalOptions.tta``, :class:`TTAConfig`): every frame is segmented as the mean of the
network's probabilities over several scales and the horizontal flip (:class:`TTASegmenter`) — an offline score,
recorded in the report's model block; the robot's score is the one without.

Modules: ``options`` (what to run, checked before any work), ``cameras``
(which cameras, their topics and names), ``ground_truth``
(label PNG folders), ``replay`` (frames paired with ground truth by stamp),
``tally`` (per-frame times and counts), ``sequences`` (per-sequence scores),
``tta`` (test-time augmentation), ``report`` (the typed report and
report.json), ``markdown`` (terminal summary, report.md, comparison),
``run`` (:func:`evaluate_bag`), ``plots`` (the charts).
"""

from seg_ros.evaluate.cameras import CameraInput, camera_name, resolve_cameras
from seg_ros.evaluate.ground_truth import GT_MATCHES, GroundTruthDir
from seg_ros.evaluate.markdown import compare_reports, report_markdown, summary_lines
from seg_ros.evaluate.options import EvalOptions, check_options
from seg_ros.evaluate.report import (
    REPORT_FORMAT,
    Accuracy,
    BagSummary,
    CameraResult,
    EvaluationReport,
    FrameCounts,
    GroundTruthSource,
    LatencyStats,
    MissingFrame,
    ModelSummary,
    OutputBag,
    SequenceResult,
    load_report,
)
from seg_ros.evaluate.run import evaluate_bag
from seg_ros.evaluate.segmenter import segmenter_from_params
from seg_ros.evaluate.tally import MAX_LISTED, OVERHEAD_STAGES
from seg_ros.evaluate.tta import TTAConfig, TTASegmenter

__all__ = [
    "GT_MATCHES", "MAX_LISTED", "OVERHEAD_STAGES", "REPORT_FORMAT", "Accuracy", "BagSummary", "CameraInput",
    "CameraResult", "EvalOptions", "EvaluationReport", "FrameCounts", "GroundTruthDir", "GroundTruthSource",
    "LatencyStats", "MissingFrame", "ModelSummary", "OutputBag", "SequenceResult", "TTAConfig", "TTASegmenter",
    "camera_name", "check_options", "compare_reports",
    "evaluate_bag", "load_report", "report_markdown", "resolve_cameras", "segmenter_from_params", "summary_lines",
]
