import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from seg_ros.core.errors import ConfigError, InputError
from seg_ros.core.preprocess import FramePreprocessor, inference_size, upsampled_argmax
from seg_ros.crf import CRFConfig
from seg_ros.models.modelfile import ModelFileError, load_model
from seg_ros.pipeline import Segmenter, parse_resolution, render
from seg_ros.synthetic import generate_scene


@pytest.fixture(scope="module")
def seg(random_model_file):
    return Segmenter(random_model_file, resolution=(64, 96), device="cpu")


def _frame(rng, h, w):
    return rng.integers(0, 256, (h, w, 3), dtype=np.uint8)


@pytest.mark.parametrize("text,size", [("360x640", (360, 640)), (" 512 X 1024 ", (512, 1024)), ("32x32", (32, 32)),
                                       ("2160x4096", (2160, 4096)), ("1080x8192", (1080, 8192))])
def test_parse_resolution(text, size):
    assert parse_resolution(text) == size


@pytest.mark.parametrize("text,message", [
    ("abc", "not of the form HxW"), ("0x0", "out of range"), ("100000x100000", "out of range"),
    ("360", "not of the form"), ("16x16", "out of range"), ("-3x4", "not of the form"),
    ("32x8193", "out of range"), ("8192x8192", r"8192x8192 = 67,108,864 pixels, more than the 8,847,360 a network"),
    ("2161x4096", "more than the 8,847,360"),
])
def test_bad_resolutions(text, message):
    with pytest.raises(ConfigError, match=message):
        parse_resolution(text)


@pytest.mark.parametrize("h,w", [(257, 333), (64, 96), (40, 300), (1, 1)])
def test_shapes_and_dtypes_at_odd_sizes(seg, rng, h, w):
    r = seg.segment(_frame(rng, h, w))
    assert r.labels.shape == (h, w) and r.labels.dtype == np.uint8
    assert r.color.shape == (h, w, 3) and r.color.dtype == np.uint8
    assert r.overlay.shape == (h, w, 3) and r.overlay.dtype == np.uint8
    assert r.confidence.shape == (h, w) and r.confidence.dtype == np.float32
    assert r.labels.max() < seg.label_set.num_classes
    assert set(r.timings) == {"preprocess", "infer", "crf", "postprocess", "render", "total"}
    assert r.timings["total"] == pytest.approx(sum(r.timings[s] for s in ("preprocess", "infer", "crf",
                                                                           "postprocess", "render")))


def test_outputs_are_consistent(seg, rng):
    frame = _frame(rng, 64, 96)
    r = seg.segment(frame)
    assert (r.color == seg.label_set.palette[r.labels]).all()
    blend = frame * (1 - seg.overlay_alpha) + r.color * seg.overlay_alpha
    assert np.abs(r.overlay.astype(float) - blend).max() <= 1.0
    c = seg.label_set.num_classes
    assert (r.confidence >= 1 / c - 1e-6).all() and (r.confidence <= 1 + 1e-6).all()


def test_labels_and_confidence_equal_the_network_argmax_and_softmax(random_model_file, rng):
    """At inference size == frame size the pipeline must equal normalise → model → softmax/argmax."""
    seg = Segmenter(random_model_file, resolution=(64, 96), device="cpu")
    model, meta = load_model(random_model_file)
    frame = _frame(rng, 64, 96)
    x = (torch.from_numpy(frame).float() / 255 - torch.tensor(meta.mean)) / torch.tensor(meta.std)
    with torch.inference_mode():
        prob = model(x.permute(2, 0, 1)[None]).softmax(1)[0]
    r = seg.segment(frame)
    agree = (r.labels == prob.argmax(0).numpy()).mean()
    assert agree > 0.999  # ties may break differently across memory layouts
    assert np.abs(r.confidence - prob.max(0).values.numpy()).max() < 1e-4


def test_resize_path_equals_manual_resize_and_upsample(random_model_file, rng):
    seg = Segmenter(random_model_file, resolution=(64, 96), keep_aspect=False, device="cpu")
    model, meta = load_model(random_model_file)
    frame = _frame(rng, 100, 120)
    small = cv2.resize(frame, (96, 64), interpolation=cv2.INTER_AREA)
    x = (torch.from_numpy(small).float() / 255 - torch.tensor(meta.mean)) / torch.tensor(meta.std)
    with torch.inference_mode():
        logits = F.interpolate(model(x.permute(2, 0, 1)[None]), size=(100, 120), mode="bilinear",
                               align_corners=False)
    assert (seg.segment(frame).labels == logits.argmax(1)[0].numpy()).mean() > 0.999


@pytest.mark.parametrize("n,c,small,size", [(1, 11, (45, 80), (135, 240)), (2, 19, (33, 47), (130, 75)),
                                             (1, 7, (64, 96), (64, 96))])
def test_upsampled_argmax_in_class_chunks_equals_the_whole_tensor(n, c, small, size):
    """Above the band budget the classes are upsampled a few at a time: same labels, same max softmax."""
    torch.manual_seed(n * c)
    logits = torch.randn(n, c, *small) * 4
    full = F.interpolate(logits, size=size, mode="bilinear", align_corners=False)
    top, labels = full.max(1)
    softmax_max = full.softmax(1).max(1).values
    for band_bytes in (n * size[0] * size[1] * 4, 3 * n * size[0] * size[1] * 4, 1 << 40):  # 1, 3, all classes
        got_labels, got_conf = upsampled_argmax(logits, size, True, band_bytes=band_bytes)
        assert torch.equal(got_labels, labels)
        assert (got_conf - softmax_max).abs().max() < 1e-5
        assert upsampled_argmax(logits, size, False, band_bytes=band_bytes)[1] is None


def test_a_dense_crf_too_large_for_memory_is_refused_per_frame(random_model_file):
    seg = Segmenter(random_model_file, device="cpu", crf=CRFConfig(method="fast", downsample=1, iterations=1))
    with pytest.raises(InputError) as e:
        seg.segment(np.zeros((2000, 2000, 3), np.uint8), ["labels"])
    assert str(e.value) == ("the fast dense CRF on a 2000x2000 grid × 11 classes = 44,000,000 is more than the "
                            "39,398,400 it is bounded to (memory); set crf.downsample to 0 (auto) or a coarser step, "
                            "or use smaller frames.")
    assert seg.segment(np.zeros((64, 96, 3), np.uint8), ["labels"]).labels.shape == (64, 96)
    seg.crf = CRFConfig(method="fast", downsample=0, iterations=1)  # automatic grid: 334x334 cells at 4000x4000
    with pytest.raises(InputError, match=r"the fast dense CRF on a 4000x4000 frame × 11 classes = 176,000,000 is "
                                         r"more than the 168,099,840 it is bounded to \(memory\); use smaller frames"):
        seg.segment(np.zeros((4000, 4000, 3), np.uint8), ["labels"])


def test_keep_aspect_fits_inside_the_resolution(random_model_file):
    seg = Segmenter(random_model_file, resolution="360x640", keep_aspect=True, device="cpu")
    assert seg.inference_size(360, 480) == (360, 480)
    assert seg.inference_size(1080, 1920) == (360, 640)
    assert seg.inference_size(720, 720) == (360, 360)
    seg.keep_aspect = False
    assert seg.inference_size(360, 480) == (360, 640)


def test_default_resolution_is_the_training_size(random_model_file):
    assert Segmenter(random_model_file, device="cpu").resolution == (64, 96)


@pytest.mark.slow
def test_batches_equal_single_frames(seg, rng):
    frames = np.stack([_frame(rng, 48, 80) for _ in range(3)])
    batch = seg(frames)
    assert len(batch) == 3
    for f, r in zip(frames, batch):
        single = seg(f)
        assert (single.labels == r.labels).mean() > 0.999
        assert np.abs(single.confidence - r.confidence).max() < 1e-4
    mixed = seg.segment_batch([frames[0], _frame(rng, 30, 31), frames[1]])
    assert [r.labels.shape for r in mixed] == [(48, 80), (30, 31), (48, 80)]
    assert (mixed[2].labels == batch[1].labels).mean() > 0.999
    assert seg.segment_batch(np.zeros((0, 8, 8, 3), np.uint8)) == []


def test_only_requested_outputs_are_computed(seg, rng):
    r = seg.segment(_frame(rng, 32, 32), outputs=("labels",))
    assert r.color is None and r.overlay is None and r.confidence is None
    r = seg.segment(_frame(rng, 32, 32), outputs=("overlay",))
    assert r.overlay is not None and r.color is None
    with pytest.raises(ConfigError, match="unknown outputs"):
        seg.segment(_frame(rng, 32, 32), outputs=("depth",))


@pytest.mark.parametrize("frame,message", [
    (np.zeros((10, 10), np.uint8), "H×W×3"),
    (np.zeros((10, 10, 4), np.uint8), "H×W×3"),
    (np.zeros((0, 10, 3), np.uint8), "H×W×3"),
    (np.zeros((10, 10, 3), np.float32), "uint8"),
    ([[1, 2, 3]], "numpy array"),
])
def test_bad_frames(seg, frame, message):
    with pytest.raises(InputError, match=message):
        seg.segment(frame)


@pytest.mark.parametrize("kwargs,message", [
    (dict(precision="fp16", device="cpu"), "fp16 needs a CUDA device"),
    (dict(precision="int8", device="cpu"), "int8 needs the onnxruntime or tensorrt"),
    (dict(precision="fp64", device="cpu"), "precision must be one of"),
    (dict(backend="caffe", device="cpu"), "unknown backend 'caffe'"),
    (dict(device="cuda:99"), "cuda:99"),
    (dict(device="gpu"), "not valid"),
    (dict(resolution="0x0", device="cpu"), "out of range"),
    (dict(overlay_alpha=1.5, device="cpu"), "overlay_alpha"),
])
def test_bad_settings(random_model_file, kwargs, message):
    with pytest.raises(ConfigError, match=message):
        Segmenter(random_model_file, **kwargs)


def test_missing_model(tmp_path):
    with pytest.raises(ModelFileError, match="does not exist"):
        Segmenter(tmp_path / "gone.safetensors", device="cpu")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_fp16_agrees_with_fp32_on_cuda(random_model_file, rng):
    frames = [_frame(rng, 257, 333) for _ in range(3)]
    a = Segmenter(random_model_file, device="cuda:0", precision="fp32").segment_batch(frames)
    b = Segmenter(random_model_file, device="cuda:0", precision="fp16").segment_batch(frames)
    cpu_seg = Segmenter(random_model_file, device="cpu")
    cpu = cpu_seg.segment_batch(frames)
    for x, y, z in zip(a, b, cpu):
        assert (x.labels == y.labels).mean() > 0.99
        assert (x.labels == z.labels).mean() > 0.99
        assert np.abs(x.confidence - y.confidence).max() < 0.02
        assert (y.color == cpu_seg.label_set.palette[y.labels]).all()
        assert np.abs(y.overlay.astype(int) - z.overlay.astype(int)).mean() < 2.0


def test_gpu_code_path_matches_the_cpu_path_when_run_on_the_cpu(seg, rng):
    """The CUDA stages (torch resize/normalise/colour/blend on device tensors) run here on CPU tensors."""
    frames = np.stack([_frame(rng, 64, 96) for _ in range(2)])
    pre = seg.preprocessor
    x_np = pre(frames, (64, 96))
    x_t = pre(torch.from_numpy(frames), (64, 96))
    assert torch.allclose(x_np, x_t, atol=1e-5)
    assert x_t.is_contiguous(memory_format=torch.channels_last)
    scene = generate_scene(5, (128, 192)).image[None]
    small_np = pre(scene, (32, 48))
    small_t = pre(torch.from_numpy(scene), (32, 48))
    assert (small_np - small_t).abs().mean() < 0.05  # INTER_AREA vs antialiased bilinear, on a real scene
    labels = rng.integers(0, 11, (2, 64, 96)).astype(np.uint8)
    palette, alpha = seg.label_set.palette, seg.overlay_alpha
    c_np, o_np = render(frames, labels, palette, alpha)
    c_t, o_t = render(torch.from_numpy(frames), torch.from_numpy(labels), torch.tensor(palette), alpha)
    assert (c_np == c_t).all() and (c_np == palette[labels]).all()
    assert np.abs(o_np.astype(int) - o_t.astype(int)).max() <= 1
    assert render(frames, labels, palette, alpha, color=False)[0] is None
    assert render(torch.from_numpy(frames), labels, palette, alpha, overlay=False)[1] is None


@pytest.mark.parametrize("frame,resolution,keep_aspect,size", [
    ((360, 480), (540, 720), True, (540, 720)), ((50, 131), (64, 96), True, (37, 96)),
    ((130, 61), (64, 96), True, (64, 30)), ((50, 131), (64, 96), False, (64, 96)), ((1, 1), (64, 96), True, (64, 64)),
])
def test_inference_size_keeps_the_aspect_ratio_inside_the_resolution(frame, resolution, keep_aspect, size):
    assert inference_size(*frame, resolution, keep_aspect) == size


def test_frame_preprocessor_normalises_with_the_model_files_mean_and_std(rng):
    mean, std = (0.3, 0.5, 0.7), (0.2, 0.25, 0.1)
    frames = np.stack([_frame(rng, 37, 53) for _ in range(2)])
    expected = (torch.from_numpy(frames).float() / 255 - torch.tensor(mean)) / torch.tensor(std)
    expected = expected.permute(0, 3, 1, 2)
    nhwc = FramePreprocessor(mean, std, "cpu")(frames, (37, 53))
    planar = FramePreprocessor(mean, std, "cpu", channels_last=False)(frames, (37, 53))
    on_tensors = FramePreprocessor(mean, std, "cpu", channels_last=False)(torch.from_numpy(frames), (37, 53))
    for x in (nhwc, planar, on_tensors):
        assert x.shape == (2, 3, 37, 53) and x.dtype == torch.float32
        assert torch.allclose(x, expected, atol=1e-4)
    assert nhwc.is_contiguous(memory_format=torch.channels_last)
    assert planar.is_contiguous() and on_tensors.is_contiguous()
    resized = FramePreprocessor(mean, std, "cpu")(frames, (20, 70))  # shrink one side, stretch the other
    assert resized.shape == (2, 3, 20, 70)


def test_network_input_is_what_the_segmenter_infers_on(random_model_file, rng):
    """network_input → backend → upsampled argmax reproduces segment()'s labels at non-multiple frame sizes."""
    for keep_aspect in (True, False):
        seg = Segmenter(random_model_file, resolution=(45, 70), keep_aspect=keep_aspect, device="cpu")
        for h, w in ((72, 97), (50, 131)):
            frames = np.stack([_frame(rng, h, w) for _ in range(2)])
            x = seg.network_input(frames)
            assert x.shape == (2, 3, *seg.inference_size(h, w))
            with torch.inference_mode():
                labels, _ = upsampled_argmax(seg.backend.infer(x), (h, w), False)
            for got, r in zip(labels.numpy(), seg.segment_batch(frames, ["labels"])):
                assert (got == r.labels).all()
    with pytest.raises(InputError, match=r"an \(N, H, W, 3\) array of N ≥ 1 frames"):
        seg.network_input(_frame(rng, 8, 8))
    with pytest.raises(InputError, match="uint8"):
        seg.network_input(np.zeros((1, 8, 8, 3), np.float32))
