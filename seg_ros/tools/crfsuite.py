"""``seg-ros bench crf`` as a whole: the CRF stage's speed, then its mIoU gain on synthetic scenes and CamVid.

The accuracy tests score the CRF variants that answer the questions the speed test raises: the fast CRF
at its automatic grid against the exact CRF, what the coarser grid costs (the same at full resolution),
any grid step asked for, and the confidence gate.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar

from seg_ros.crf import CRFConfig, exact_available, grid_name
from seg_ros.io.datasets import FolderDataset
from seg_ros.pipeline import Segmenter, format_resolution
from seg_ros.synthetic import generate_scene
from seg_ros.tools.crfaccuracy import CRFAccuracy, crf_accuracy, format_accuracy_table
from seg_ros.tools.crfbench import CRFSpeedRow, bench_crf_speed, format_speed_table
from seg_ros.tools.reports import MachineHeader

DEFAULTS_NAME = "CRF defaults (DeepLab-LargeFOV, 10 iterations)"
SCENE_SEED = 1000
"""Synthetic accuracy scenes use seeds SCENE_SEED, SCENE_SEED + 1, ..."""


@dataclass
class CRFBenchPlan:
    """What ``seg-ros bench crf`` measures."""

    model: str
    """Model scored on the synthetic scenes."""
    devices: list[str]
    """Devices of the speed test; the accuracy tests run on the last one."""
    size: tuple[int, int] = (512, 1024)
    """(H, W) pixels of the speed test's frame."""
    classes: int = 19
    iterations: int = 5
    frames: int = 30
    warmup: int = 2
    gate: float = 0.9
    """Confidence gate also timed and scored; 0 = not."""
    scenes: int = 8
    """Synthetic scenes in the accuracy test; 0 = none."""
    scene_size: tuple[int, int] = (720, 960)
    downsample: list[int] = field(default_factory=list)
    """Grid steps also scored in the accuracy tests."""
    camvid: str | None = None
    """A CamVid-layout root whose val split is also scored."""
    camvid_model: str = "liteseg_mobilenetv2_camvid"
    camvid_params: str | None = None
    """A node parameter file giving the CamVid test's model, resolution and CRF settings."""


@dataclass
class CRFBenchReport:
    KIND: ClassVar[str] = "bench_crf"
    header: MachineHeader
    exact_available: bool
    speed: list[CRFSpeedRow] = field(default_factory=list)
    accuracy: dict[str, CRFAccuracy] | None = None
    """``synthetic`` and / or ``camvid``; None when no accuracy test ran."""

    def to_json(self) -> dict[str, Any]:
        out = {**vars(self.header), "exact_available": self.exact_available,
               "speed": [r.to_json() for r in self.speed]}
        if self.accuracy is not None:
            out["accuracy"] = {k: v.to_json() for k, v in self.accuracy.items()}
        return out


def crf_variants(base: CRFConfig, frame_size: tuple[int, int], downsample: list[int],
                 gate: float) -> dict[str, CRFConfig]:
    """The variants scored at ``frame_size`` (H, W): exact (when installed), fast, fast at each grid, gated."""
    variants = {"fast": replace(base, method="fast")}
    # what the coarser grid costs in accuracy, and any grid asked for
    steps = ([1] if variants["fast"].grid_step(*frame_size) > 1 else []) + list(downsample)
    for step in steps:
        variants[f"fast, {grid_name(step)}"] = replace(base, method="fast", downsample=step)
    if gate > 0:
        variants[f"fast, confidence < {gate:g}"] = replace(base, method="fast", confidence_threshold=gate)
    if exact_available():
        variants = {"exact": replace(base, method="exact"), **variants}
    return variants


def run_crf_bench(plan: CRFBenchPlan, show: Callable[[str], None] = lambda text: None) -> CRFBenchReport:
    """Run ``plan``; ``show`` receives each printable part (header, tables) as soon as it is measured."""
    report = CRFBenchReport(MachineHeader.here(), exact_available())
    show(report.header.line())
    if not report.exact_available:
        show("pydensecrf2 is not installed: exact-CRF rows and comparisons are skipped")
    report.speed = bench_crf_speed(plan.size, plan.classes, plan.iterations, plan.devices, frames=plan.frames,
                                   warmup=min(plan.warmup, 2), thresholds=(0.0, plan.gate))
    show(format_speed_table(report.speed))
    if plan.scenes <= 0 and not plan.camvid:
        return report
    report.accuracy = {}
    device = plan.devices[-1]
    if plan.scenes > 0:
        res = _synthetic_accuracy(plan, device)
        report.accuracy["synthetic"] = res
        show(f"\n{res.data}, {res.model}, {DEFAULTS_NAME}, fast CRF: {grid_name(res.grid_step or 1)}:")
        show(format_accuracy_table(res))
    if plan.camvid:
        res = _camvid_accuracy(plan, device)
        report.accuracy["camvid"] = res
        show(f"\n{res.data}, {res.model}, {res.crf}, fast CRF: {grid_name(res.grid_step or 1)}:")
        show(format_accuracy_table(res))
    return report


def _synthetic_accuracy(plan: CRFBenchPlan, device: str) -> CRFAccuracy:
    seg = Segmenter(plan.model, device=device)
    variants = crf_variants(CRFConfig(), plan.scene_size, plan.downsample, plan.gate)
    scenes = (generate_scene(SCENE_SEED + i, plan.scene_size) for i in range(plan.scenes))
    res = crf_accuracy(seg, ((s.image, s.labels) for s in scenes), variants)
    res.model = seg.describe()
    res.data = f"{plan.scenes} synthetic scenes {format_resolution(plan.scene_size)} (seeds {SCENE_SEED}+)"
    res.grid_step = variants["fast"].grid_step(*plan.scene_size)
    return res


def _camvid_accuracy(plan: CRFBenchPlan, device: str) -> CRFAccuracy:
    assert plan.camvid is not None
    model, resolution, what, base = plan.camvid_model, None, DEFAULTS_NAME, CRFConfig()
    if plan.camvid_params:
        from seg_ros.config import crf_config, load_params_file, segmenter_kwargs

        values = load_params_file(plan.camvid_params)
        model, resolution = values["model"], segmenter_kwargs(values)["resolution"]
        base = crf_config({**values, "crf.enabled": True})
        what = f"CRF settings of {plan.camvid_params}"
    seg = Segmenter(model, resolution=resolution, device=device)
    data = FolderDataset(plan.camvid, "val")
    frame_size = data[0][0].shape[:2]
    variants = crf_variants(base, frame_size, plan.downsample, plan.gate)
    res = crf_accuracy(seg, (data[i] for i in range(len(data))), variants)
    res.model, res.data, res.crf = seg.describe(), f"{data.name} ({len(data)} frames)", what
    res.grid_step = variants["fast"].grid_step(*frame_size)
    return res


__all__ = ["CRFBenchPlan", "CRFBenchReport", "crf_variants", "run_crf_bench"]
