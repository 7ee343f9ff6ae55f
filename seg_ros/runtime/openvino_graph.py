"""The whole per-frame pipeline as one OpenVINO graph: uint8 frames in, labels (and confidence) out.

What the Segmenter does around a network on the CPU (normalise, upsample the logits to the frame's size,
argmax, max softmax) is a handful of element-wise passes over the image and C × H × W logits. Inside the
compiled graph, OpenVINO fuses the normalisation into the first convolution and the argmax into the
upsampling, and the logits are never written out as float32, so the fused graph at 360×640 runs in about the
time of the bare network. The graph::

    (N, h, w, 3) uint8 RGB, the frame already resized to the inference size
      → float32, − mean·255, ÷ std·255, NHWC → NCHW      (PrePostProcessor; fused into the first convolution)
      → the network → (N, C, h', w') logits
      → bilinear resize to (H, W) when h', w' differ     (half-pixel centres, as torch's align_corners=False)
      → TopK(1) over C → (N, H, W) uint8 labels
      → [max of softmax over C → (N, H, W) float32 confidence]

Semantically the same steps as :mod:`seg_ros.core.preprocess`; labels agree with the pipeline's own steps
except where two classes tie to rounding.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


def fused_model(net: Any, input_name: str, output_name: str, input_shape: tuple[int, ...],
                output_size: tuple[int, int], mean: Sequence[float], std: Sequence[float], confidence: bool) -> Any:
    """An ``openvino.Model``: ``net`` (an ONNX network read by OpenVINO) wrapped as above.

    ``input_name``, ``output_name``: the network's image input and logits output (its other outputs are
    dropped); ``input_shape``: the network's (N, 3, h, w) input; ``output_size``: the frames' (H, W); ``mean``, ``std``:
    per-channel normalisation of RGB/255. The result takes (N, h, w, 3) uint8 and returns labels (N, H, W)
    uint8 and, with ``confidence``, the max softmax (N, H, W) float32.
    """
    import openvino as ov
    import openvino.opset13 as ops
    from openvino.preprocess import PrePostProcessor

    net.reshape({input_name: list(input_shape)})
    logits = net.output(output_name).get_node().input_value(0)
    parameter = net.input(input_name).get_node()
    height, width = output_size
    if tuple(logits.get_partial_shape().to_shape())[2:] != (height, width):
        logits = ops.interpolate(logits, ops.constant(np.array([height, width], np.int64)), mode="linear_onnx",
                                 shape_calculation_mode="sizes", coordinate_transformation_mode="half_pixel",
                                 axes=ops.constant(np.array([2, 3], np.int64))).output(0)
    axis = ops.constant(np.int64(1))
    top = ops.topk(logits, ops.constant(np.int64(1)), axis=1, mode="max", sort="none", index_element_type="i32")
    outputs = [ops.result(ops.convert(ops.squeeze(top.output(1), axis), "u8"))]
    if confidence:
        # Softmax then max: one fused pass, and accurate in bf16 too (Σ exp(l − max) in bf16 is not).
        outputs.append(ops.result(ops.reduce_max(ops.softmax(logits, 1), axis, keep_dims=False)))
    model = ov.Model(outputs, [parameter], "seg_ros_fused")
    ppp = PrePostProcessor(model)
    ppp.input().tensor().set_element_type(ov.Type.u8).set_layout(ov.Layout("NHWC"))
    ppp.input().model().set_layout(ov.Layout("NCHW"))
    ppp.input().preprocess().convert_element_type(ov.Type.f32) \
        .mean([255.0 * float(m) for m in mean]).scale([255.0 * float(s) for s in std])
    return ppp.build()


__all__ = ["fused_model"]
