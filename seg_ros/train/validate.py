"""Validation: a model scored on full frames exactly as the Segmenter would run it from its model file."""

from __future__ import annotations

import torch
from torch import nn
from tqdm import tqdm

from seg_ros.core.metrics import ConfusionMatrix
from seg_ros.core.preprocess import FramePreprocessor, inference_size, upsampled_argmax
from seg_ros.models.modelfile import ModelMeta


@torch.inference_mode()
def validate(model: nn.Module, meta: ModelMeta, source, device: torch.device, *, keep_aspect: bool = True,
             progress: bool = False) -> ConfusionMatrix:
    """Confusion matrix of ``model`` (on ``device``) over every (image, labels) pair of ``source``.

    Each frame takes the Segmenter's path (:mod:`seg_ros.core.preprocess`) at the model file's defaults: resized to
    ``meta.input_size`` (keeping its aspect ratio unless ``keep_aspect`` is False), normalised with
    ``meta.mean`` / ``meta.std``, logits upsampled bilinearly back to the frame and scored against the (H, W)
    labels with ``meta.label_set``'s ignore id. Frames run one at a time; on CUDA they are resized on the GPU as
    the Segmenter does there. The model is evaluated in eval mode and left in the mode it was in.
    """
    preprocess = FramePreprocessor(meta.mean, meta.std, device, channels_last=True)
    label_set = meta.label_set
    was_training = model.training
    model.eval()
    cm = ConfusionMatrix(label_set.num_classes, label_set.ignore_id)
    try:
        for i in tqdm(range(len(source)), desc="val", leave=False, disable=not progress):
            image, labels = source[i]
            h, w = image.shape[:2]
            x = preprocess(preprocess.upload(image[None]), inference_size(h, w, meta.input_size, keep_aspect))
            predicted, _ = upsampled_argmax(model(x), (h, w), False)
            cm.update(predicted[0].to(torch.uint8).cpu().numpy(), labels)
    finally:
        model.train(was_training)
    return cm
