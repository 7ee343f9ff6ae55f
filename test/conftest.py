"""Shared fixtures: real model files written to tmp paths."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from seg_ros.core.labels import CAMVID
from seg_ros.models import build
from seg_ros.models.modelfile import ModelMeta, save_model


@pytest.fixture(scope="session")
def random_model_file(tmp_path_factory):
    """A LiteSeg-MobileNetV2 CamVid model file with random (seeded) weights, fp32, input size 64x96."""
    torch.manual_seed(0)
    model = build("liteseg_mobilenetv2", CAMVID.num_classes).eval()
    # Random BN statistics so the network's output varies with its input.
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 1.5)
    path = tmp_path_factory.mktemp("models") / "random.safetensors"
    save_model(path, model, ModelMeta("liteseg_mobilenetv2", CAMVID, (64, 96), provenance={"dataset": "none"}))
    return path


@pytest.fixture
def rng():
    return np.random.default_rng(1234)
