"""Frozen benchmark cases shared by `python -m cconv.bench` and the asv suite (asv_bench/).

This module imports only NumPy, never cconv (the cconv module is passed in where a case runs),
so that asv can load it from the working tree by path while it benchmarks another build. Change
a shape and every earlier asv result for it becomes incomparable: add new keys instead of
editing old ones.

Everything here is described channels-first (N, C, *spatial); `to_layout` moves channels last
when a run asks for NHWC/NWC/NDHWC.

What it holds:
  * `Case`: one call of one public function (or one gradient pair) on fixed shapes;
  * the tables: SUITE and BATCH1 (the suite of docs/benchmarks.md), FUNCTIONS (every other public
    function), GRAD (gradients, used when cconv.grad exists), TINY (one small case per function,
    for smoke tests) and NETWORKS (named layers of real networks, for asv);
  * the arithmetic: stages, FLOPs, minimum bytes moved, output shapes;
  * a NumPy baseline for every case (forward and backward): im2col through
    sliding_window_view + tensordot/einsum, i.e. what a NumPy user writes without cconv (also
    the `peakmem_reference` of asv);
  * the same case in PyTorch (torch passed in as an argument, never imported here) and in
    ONNX Runtime (a model built in memory with onnx.helper; onnx and onnxruntime passed in too),
    and the interleaved timer both the script and asv's track_*_ratio use.
The machine's limits behind "% of peak" are measured by machine.py next to this file.
"""
from dataclasses import dataclass
import math
import statistics
import time

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

# --------------------------------------------------------------------------- cases

@dataclass(frozen=True)
class Case:
    """One benchmarked call: `fn(x, *weights, **kwargs)` (shapes channels-first).

    fn is a public function name ("conv2d", "separable_conv2d", ...), or "grad.<name>" for all
    the gradients of that function from cconv.grad (input and every weight, timed together):
    <name>_input + <name>_weight for the single convolutions (conv*, conv_transpose*,
    depthwise_conv2d), <name>_grads for the composites, channel_shuffle_input for the shuffle."""
    key: str
    name: str
    fn: str
    x: tuple
    weights: tuple
    kw: tuple = ()
    group: str = ""

    @property
    def kwargs(self):
        return dict(self.kw)

    @property
    def nd(self):
        return len(self.x) - 2

    @property
    def is_grad(self):
        return self.fn.startswith("grad.")

    @property
    def base_fn(self):
        """The forward function ("conv2d" for both "conv2d" and "grad.conv2d")."""
        return self.fn.split(".", 1)[1] if self.is_grad else self.fn


def _case(group, key, name, fn, x, *weights, **kw):
    return Case(key, name, fn, tuple(x), tuple(tuple(w) for w in weights),
                tuple(sorted(kw.items())), group)


def _table(group, rows):
    cases = [_case(group, *r[:-1], **r[-1]) if isinstance(r[-1], dict) else _case(group, *r)
             for r in rows]
    keys = [c.key for c in cases]
    assert len(set(keys)) == len(keys), f"duplicate keys in {group}"
    return cases


# The suite of docs/benchmarks.md, row by row (float32 NCHW 2 threads there; any dtype/layout here).
SUITE = _table("suite", [
    ("dense3x3", "dense 3x3, N8, 64->64, 56x56, pad 1", "conv2d",
     (8, 64, 56, 56), (64, 64, 3, 3), dict(padding=1)),
    ("dense3x3_s2", "dense 3x3 stride 2, N8, 128->256, 28->14", "conv2d",
     (8, 128, 28, 28), (256, 128, 3, 3), dict(stride=2, padding=1)),
    ("stem7x7", "stem 7x7 stride 2, N2, 3->64, 224", "conv2d",
     (2, 3, 224, 224), (64, 3, 7, 7), dict(stride=2, padding=3)),
    ("pointwise", "pointwise 1x1, N8, 256->64, 56x56", "conv2d",
     (8, 256, 56, 56), (64, 256, 1, 1), {}),
    ("depthwise", "depthwise 3x3, N8, C144, 56x56", "depthwise_conv2d",
     (8, 144, 56, 56), (144, 1, 3, 3), dict(padding=1)),
    ("depthwise_s2", "depthwise 3x3 stride 2, N8, C144, 56->28", "depthwise_conv2d",
     (8, 144, 56, 56), (144, 1, 3, 3), dict(stride=2, padding=1)),
    ("grouped_g32", "grouped 3x3 g32, N8, 128->128, 56x56", "conv2d",
     (8, 128, 56, 56), (128, 4, 3, 3), dict(padding=1, groups=32)),
    ("pointwise_g3", "pointwise grouped g3, N8, 240->240, 28x28", "conv2d",
     (8, 240, 28, 28), (240, 80, 1, 1), dict(groups=3)),
    ("dilated_d2", "dilated 3x3 d2, N4, 128->128, 64x64", "conv2d",
     (4, 128, 64, 64), (128, 128, 3, 3), dict(padding=2, dilation=2)),
    ("dilated_d4", "dilated 3x3 d4, N4, 128->128, 64x64", "conv2d",
     (4, 128, 64, 64), (128, 128, 3, 3), dict(padding=4, dilation=4)),
    ("transposed4x4_s2", "transposed 4x4 stride 2, N8, 256->128, 16->32", "conv_transpose2d",
     (8, 256, 16, 16), (256, 128, 4, 4), dict(stride=2, padding=1)),
    ("conv3d", "conv3d 3x3x3, N1, 64->64, 16x56x56", "conv3d",
     (1, 64, 16, 56, 56), (64, 64, 3, 3, 3), dict(padding=1)),
    ("conv1d", "conv1d k3, N8, 256->256, L4096", "conv1d",
     (8, 256, 4096), (256, 256, 3), dict(padding=1)),
    ("shuffle_g4", "channel shuffle g4, N8, 64x56x56", "channel_shuffle",
     (8, 64, 56, 56), dict(groups=4)),
])

BATCH1 = _table("batch1", [
    ("b1_dense3x3_64", "batch 1: dense 3x3, 64->64, 56x56", "conv2d",
     (1, 64, 56, 56), (64, 64, 3, 3), dict(padding=1)),
    ("b1_dense3x3_256", "batch 1: dense 3x3, 256->256, 14x14", "conv2d",
     (1, 256, 14, 14), (256, 256, 3, 3), dict(padding=1)),
    ("b1_pointwise", "batch 1: pointwise 1x1, 512->128, 28x28", "conv2d",
     (1, 512, 28, 28), (128, 512, 1, 1), {}),
    ("b1_depthwise", "batch 1: depthwise 3x3, C144, 56x56", "depthwise_conv2d",
     (1, 144, 56, 56), (144, 1, 3, 3), dict(padding=1)),
])

# Every public function the suite does not already call.
FUNCTIONS = _table("functions", [
    ("separable", "separable 3x3 + 1x1, N8, 144->24, 56x56 (MobileNetV2)", "separable_conv2d",
     (8, 144, 56, 56), (144, 1, 3, 3), (24, 144, 1, 1), dict(padding=1)),
    ("spatially_separable", "spatially separable 7x1 + 1x7, N8, 128->128->192, 17x17 (Inception)",
     "spatially_separable_conv2d",
     (8, 128, 17, 17), (128, 128, 7, 1), (192, 128, 1, 7), dict(padding=3)),
    ("flattened", "flattened 1x1 + 3x1 + 1x3, N8, 64->64, 56x56", "flattened_conv2d",
     (8, 64, 56, 56), (64, 64), (64, 3), (64, 3), dict(padding=1)),
    ("transposed1d", "transposed 1-D k16 stride 8, N8, 512->256, 64->512 (MelGAN)",
     "conv_transpose1d", (8, 512, 64), (512, 256, 16), dict(stride=8, padding=4)),
    ("transposed3d", "transposed 3-D 2x2x2 stride 2, N1, 128->64, 8x28x28 (3-D U-Net)",
     "conv_transpose3d", (1, 128, 8, 28, 28), (128, 64, 2, 2, 2), dict(stride=2)),
    ("conv1d_small", "conv1d k3, N1, 64->64, L256 (small: call overhead)", "conv1d",
     (1, 64, 256), (64, 64, 3), dict(padding=1)),
    ("shuffled_grouped_g3", "grouped 1x1 g3 + channel shuffle, N8, 240->240, 28x28 (ShuffleNet)",
     "shuffled_grouped_conv2d", (8, 240, 28, 28), (240, 80, 1, 1), dict(groups=3)),
])

# Gradients (cconv.grad): input + weight gradients together, the suite's shapes and one case per
# other public function.
GRAD = _table("grad", [
    ("grad_dense3x3", "grad: dense 3x3, N8, 64->64, 56x56", "grad.conv2d",
     (8, 64, 56, 56), (64, 64, 3, 3), dict(padding=1)),
    ("grad_pointwise", "grad: pointwise 1x1, N8, 256->64, 56x56", "grad.conv2d",
     (8, 256, 56, 56), (64, 256, 1, 1), {}),
    ("grad_depthwise", "grad: depthwise 3x3, N8, C144, 56x56", "grad.depthwise_conv2d",
     (8, 144, 56, 56), (144, 1, 3, 3), dict(padding=1)),
    ("grad_grouped_g32", "grad: grouped 3x3 g32, N8, 128->128, 56x56", "grad.conv2d",
     (8, 128, 56, 56), (128, 4, 3, 3), dict(padding=1, groups=32)),
    ("grad_dilated_d2", "grad: dilated 3x3 d2, N4, 128->128, 64x64", "grad.conv2d",
     (4, 128, 64, 64), (128, 128, 3, 3), dict(padding=2, dilation=2)),
    ("grad_transposed4x4_s2", "grad: transposed 4x4 stride 2, N8, 256->128, 16->32",
     "grad.conv_transpose2d", (8, 256, 16, 16), (256, 128, 4, 4), dict(stride=2, padding=1)),
    ("grad_conv1d", "grad: conv1d k3, N8, 128->128, L1024", "grad.conv1d",
     (8, 128, 1024), (128, 128, 3), dict(padding=1)),
    ("grad_conv3d", "grad: conv3d 3x3x3, N1, 32->32, 8x28x28", "grad.conv3d",
     (1, 32, 8, 28, 28), (32, 32, 3, 3, 3), dict(padding=1)),
    ("grad_separable", "grad: separable 3x3 + 1x1, N8, 144->24, 56x56", "grad.separable_conv2d",
     (8, 144, 56, 56), (144, 1, 3, 3), (24, 144, 1, 1), dict(padding=1)),
    ("grad_shuffle_g4", "grad: channel shuffle g4, N8, 64x56x56", "grad.channel_shuffle",
     (8, 64, 56, 56), dict(groups=4)),
    ("grad_shuffled_grouped_g3", "grad: grouped 1x1 g3 + shuffle, N8, 240->240, 28x28",
     "grad.shuffled_grouped_conv2d", (8, 240, 28, 28), (240, 80, 1, 1), dict(groups=3)),
])

# One small case per public function: smoke tests and `--variants tiny`.
TINY = _table("tiny", [
    ("t_conv1d", "tiny conv1d", "conv1d", (2, 4, 16), (6, 4, 3), dict(padding=1)),
    ("t_conv2d", "tiny conv2d", "conv2d", (2, 4, 9, 8), (6, 4, 3, 3), dict(padding=1)),
    ("t_conv2d_g", "tiny conv2d grouped strided dilated", "conv2d",
     (2, 4, 11, 10), (6, 2, 3, 3), dict(stride=2, padding=2, dilation=2, groups=2)),
    ("t_conv3d", "tiny conv3d", "conv3d", (1, 3, 4, 6, 5), (4, 3, 3, 3, 3), dict(padding=1)),
    ("t_convT1d", "tiny conv_transpose1d", "conv_transpose1d", (2, 4, 7), (4, 3, 4),
     dict(stride=2, padding=1)),
    ("t_convT2d", "tiny conv_transpose2d", "conv_transpose2d", (2, 4, 5, 6), (4, 3, 3, 3),
     dict(stride=2, padding=1, output_padding=1)),
    ("t_convT3d", "tiny conv_transpose3d", "conv_transpose3d", (1, 4, 3, 4, 3), (4, 2, 2, 2, 2),
     dict(stride=2)),
    ("t_depthwise", "tiny depthwise_conv2d", "depthwise_conv2d", (2, 6, 8, 8), (12, 1, 3, 3),
     dict(padding=1)),
    ("t_separable", "tiny separable_conv2d", "separable_conv2d", (2, 6, 8, 8), (6, 1, 3, 3),
     (5, 6, 1, 1), dict(padding=1)),
    ("t_spatially_separable", "tiny spatially_separable_conv2d", "spatially_separable_conv2d",
     (2, 4, 8, 7), (5, 4, 3, 1), (6, 5, 1, 3), dict(padding=1)),
    ("t_flattened", "tiny flattened_conv2d", "flattened_conv2d", (2, 4, 8, 7), (5, 4), (5, 3),
     (5, 3), dict(padding=1)),
    ("t_shuffle", "tiny channel_shuffle", "channel_shuffle", (2, 6, 5, 4), dict(groups=3)),
    ("t_shuffled_grouped", "tiny shuffled_grouped_conv2d", "shuffled_grouped_conv2d",
     (2, 6, 5, 4), (6, 2, 3, 3), dict(groups=3, padding=1)),
    ("t_shuffled_grouped_s2", "tiny shuffled_grouped_conv2d, shuffle_groups=2",
     "shuffled_grouped_conv2d", (2, 8, 7, 6), (12, 4, 1, 1), dict(groups=2, shuffle_groups=2)),
    ("t_grad_conv1d", "tiny grad conv1d", "grad.conv1d", (2, 4, 16), (6, 4, 3), dict(padding=1)),
    ("t_grad_conv2d", "tiny grad conv2d", "grad.conv2d", (2, 4, 9, 8), (6, 2, 3, 3),
     dict(padding=1, groups=2)),
    ("t_grad_conv3d", "tiny grad conv3d", "grad.conv3d", (1, 3, 4, 6, 5), (4, 3, 3, 3, 3),
     dict(stride=2, padding=1)),
    ("t_grad_convT1d", "tiny grad conv_transpose1d", "grad.conv_transpose1d", (2, 4, 7),
     (4, 3, 4), dict(stride=2, padding=1)),
    ("t_grad_convT2d", "tiny grad conv_transpose2d", "grad.conv_transpose2d", (2, 4, 5, 6),
     (4, 3, 3, 3), dict(stride=2, padding=1, output_padding=1)),
    ("t_grad_convT3d", "tiny grad conv_transpose3d", "grad.conv_transpose3d", (1, 4, 3, 4, 3),
     (4, 2, 2, 2, 2), dict(stride=2)),
    ("t_grad_depthwise", "tiny grad depthwise_conv2d", "grad.depthwise_conv2d", (2, 6, 8, 8),
     (12, 1, 3, 3), dict(padding=1)),
    ("t_grad_separable", "tiny grad separable_conv2d", "grad.separable_conv2d", (2, 6, 8, 8),
     (6, 1, 3, 3), (5, 6, 1, 1), dict(padding=1)),
    ("t_grad_spatially_separable", "tiny grad spatially_separable_conv2d",
     "grad.spatially_separable_conv2d", (2, 4, 8, 7), (5, 4, 3, 1), (6, 5, 1, 3), dict(padding=1)),
    ("t_grad_flattened", "tiny grad flattened_conv2d", "grad.flattened_conv2d", (2, 4, 8, 7),
     (5, 4), (5, 3), (5, 3), dict(padding=1)),
    ("t_grad_shuffle", "tiny grad channel_shuffle", "grad.channel_shuffle", (2, 6, 5, 4),
     dict(groups=3)),
    ("t_grad_shuffled_grouped", "tiny grad shuffled_grouped_conv2d",
     "grad.shuffled_grouped_conv2d", (2, 6, 5, 4), (6, 2, 3, 3), dict(groups=3, padding=1)),
])

# Named layers of real networks (asv). Batch 1 unless the network is trained/used batched;
# shapes kept moderate so `asv run --quick` stays short.
NETWORKS = {
    "resnet50": _table("resnet50", [  # torchvision ResNet-50 v1.5, 224x224 input
        ("conv1", "conv1 7x7 s2 3->64 224", "conv2d", (1, 3, 224, 224), (64, 3, 7, 7),
         dict(stride=2, padding=3)),
        ("layer1_reduce", "layer1 1x1 256->64 56", "conv2d", (1, 256, 56, 56), (64, 256, 1, 1), {}),
        ("layer1_3x3", "layer1 3x3 64->64 56", "conv2d", (1, 64, 56, 56), (64, 64, 3, 3),
         dict(padding=1)),
        ("layer1_expand", "layer1 1x1 64->256 56", "conv2d", (1, 64, 56, 56), (256, 64, 1, 1), {}),
        ("layer2_3x3_s2", "layer2 3x3 s2 128->128 56->28", "conv2d", (1, 128, 56, 56),
         (128, 128, 3, 3), dict(stride=2, padding=1)),
        ("layer2_expand", "layer2 1x1 128->512 28", "conv2d", (1, 128, 28, 28), (512, 128, 1, 1), {}),
        ("layer3_3x3", "layer3 3x3 256->256 14", "conv2d", (1, 256, 14, 14), (256, 256, 3, 3),
         dict(padding=1)),
        ("layer3_reduce", "layer3 1x1 1024->256 14", "conv2d", (1, 1024, 14, 14),
         (256, 1024, 1, 1), {}),
        ("layer4_3x3", "layer4 3x3 512->512 7", "conv2d", (1, 512, 7, 7), (512, 512, 3, 3),
         dict(padding=1)),
        ("layer4_downsample", "layer4 downsample 1x1 s2 1024->2048 14->7", "conv2d",
         (1, 1024, 14, 14), (2048, 1024, 1, 1), dict(stride=2)),
    ]),
    "resnext": _table("resnext", [  # ResNeXt-50 32x4d's grouped 3x3 convolutions, 224x224 input
        ("layer1_g32", "layer1 3x3 g32 128->128 56", "conv2d", (1, 128, 56, 56), (128, 4, 3, 3),
         dict(padding=1, groups=32)),
        ("layer2_g32_s2", "layer2 3x3 s2 g32 256->256 56->28", "conv2d", (1, 256, 56, 56),
         (256, 8, 3, 3), dict(stride=2, padding=1, groups=32)),
        ("layer2_g32", "layer2 3x3 g32 256->256 28", "conv2d", (1, 256, 28, 28), (256, 8, 3, 3),
         dict(padding=1, groups=32)),
        ("layer3_g32", "layer3 3x3 g32 512->512 14", "conv2d", (1, 512, 14, 14), (512, 16, 3, 3),
         dict(padding=1, groups=32)),
        ("layer4_g32", "layer4 3x3 g32 1024->1024 7", "conv2d", (1, 1024, 7, 7), (1024, 32, 3, 3),
         dict(padding=1, groups=32)),
    ]),
    "mobilenet_v2": _table("mobilenet_v2", [  # 224x224 input, expansion 6
        ("expand_24_144", "expand 1x1 24->144 56", "conv2d", (1, 24, 56, 56), (144, 24, 1, 1), {}),
        ("dw_c144", "depthwise 3x3 C144 56", "depthwise_conv2d", (1, 144, 56, 56), (144, 1, 3, 3),
         dict(padding=1)),
        ("dw_c144_s2", "depthwise 3x3 s2 C144 56->28", "depthwise_conv2d", (1, 144, 56, 56),
         (144, 1, 3, 3), dict(stride=2, padding=1)),
        ("project_144_24", "project 1x1 144->24 56", "conv2d", (1, 144, 56, 56), (24, 144, 1, 1), {}),
        ("dw_c384", "depthwise 3x3 C384 14", "depthwise_conv2d", (1, 384, 14, 14), (384, 1, 3, 3),
         dict(padding=1)),
        ("dw_c960", "depthwise 3x3 C960 7", "depthwise_conv2d", (1, 960, 7, 7), (960, 1, 3, 3),
         dict(padding=1)),
        ("sep_c144", "separable dw3x3 + 1x1 144->24 56", "separable_conv2d", (1, 144, 56, 56),
         (144, 1, 3, 3), (24, 144, 1, 1), dict(padding=1)),
        ("sep_c384", "separable dw3x3 + 1x1 384->64 14", "separable_conv2d", (1, 384, 14, 14),
         (384, 1, 3, 3), (64, 384, 1, 1), dict(padding=1)),
    ]),
    "shufflenet": _table("shufflenet", [  # ShuffleNet v1 g=3 stage 2 (28x28), v2 stage 2
        ("gconv_compress_g3", "grouped 1x1 g3 240->60 28", "conv2d", (1, 240, 28, 28),
         (60, 80, 1, 1), dict(groups=3)),
        ("shuffle_g3", "channel shuffle g3 C60 28", "channel_shuffle", (1, 60, 28, 28),
         dict(groups=3)),
        ("dw_c60", "depthwise 3x3 C60 28", "depthwise_conv2d", (1, 60, 28, 28), (60, 1, 3, 3),
         dict(padding=1)),
        ("gconv_expand_g3", "grouped 1x1 g3 60->240 28", "conv2d", (1, 60, 28, 28),
         (240, 20, 1, 1), dict(groups=3)),
        ("v2_shuffle_g2", "v2 channel shuffle g2 C232 28", "channel_shuffle", (1, 232, 28, 28),
         dict(groups=2)),
        ("gconv_compress_g3_shuffled", "grouped 1x1 g3 240->60 28 + shuffle (fused)",
         "shuffled_grouped_conv2d", (1, 240, 28, 28), (60, 80, 1, 1), dict(groups=3)),
    ]),
    "deeplab": _table("deeplab", [  # DeepLabv3, 513x513 crop, output stride 16 (33x33)
        ("layer4_3x3_d2", "ResNet-101 layer4 3x3 d2 512->512 33", "conv2d", (1, 512, 33, 33),
         (512, 512, 3, 3), dict(padding=2, dilation=2)),
        ("aspp_d6", "ASPP 3x3 d6 320->256 33 (MobileNetV2 backbone)", "conv2d", (1, 320, 33, 33),
         (256, 320, 3, 3), dict(padding=6, dilation=6)),
        ("aspp_d12", "ASPP 3x3 d12 320->256 33", "conv2d", (1, 320, 33, 33), (256, 320, 3, 3),
         dict(padding=12, dilation=12)),
        ("aspp_d18", "ASPP 3x3 d18 320->256 33", "conv2d", (1, 320, 33, 33), (256, 320, 3, 3),
         dict(padding=18, dilation=18)),
    ]),
    "dcgan": _table("dcgan", [  # DCGAN 64x64 generator, batch 8
        ("g1_project", "convT 4x4 100->512 1->4", "conv_transpose2d", (8, 100, 1, 1),
         (100, 512, 4, 4), {}),
        ("g2", "convT 4x4 s2 512->256 4->8", "conv_transpose2d", (8, 512, 4, 4), (512, 256, 4, 4),
         dict(stride=2, padding=1)),
        ("g3", "convT 4x4 s2 256->128 8->16", "conv_transpose2d", (8, 256, 8, 8), (256, 128, 4, 4),
         dict(stride=2, padding=1)),
        ("g4", "convT 4x4 s2 128->64 16->32", "conv_transpose2d", (8, 128, 16, 16),
         (128, 64, 4, 4), dict(stride=2, padding=1)),
        ("g5_rgb", "convT 4x4 s2 64->3 32->64", "conv_transpose2d", (8, 64, 32, 32), (64, 3, 4, 4),
         dict(stride=2, padding=1)),
    ]),
    "volumetric": _table("volumetric", [  # C3D (16x112x112 clips) and a 3-D U-Net up-conv
        ("c3d_conv1a", "C3D conv1a 3x3x3 3->64 16x112x112", "conv3d", (1, 3, 16, 112, 112),
         (64, 3, 3, 3, 3), dict(padding=1)),
        ("c3d_conv5a", "C3D conv5a 3x3x3 512->512 2x7x7", "conv3d", (1, 512, 2, 7, 7),
         (512, 512, 3, 3, 3), dict(padding=1)),
        ("unet3d_upconv", "3-D U-Net up-conv 2x2x2 s2 128->64 8x28x28", "conv_transpose3d",
         (1, 128, 8, 28, 28), (128, 64, 2, 2, 2), dict(stride=2)),
    ]),
    "audio_text": _table("audio_text", [  # 1-D stacks
        ("wav2vec2_fe0", "wav2vec 2.0 feature encoder k10 s5 1->512 L16000", "conv1d",
         (1, 1, 16000), (512, 1, 10), dict(stride=5)),
        ("wav2vec2_fe1", "wav2vec 2.0 feature encoder k3 s2 512->512 L3199", "conv1d",
         (1, 512, 3199), (512, 512, 3), dict(stride=2)),
        ("tcn_d4", "TCN/WaveNet k3 d4 128->128 L1024, N8", "conv1d", (8, 128, 1024),
         (128, 128, 3), dict(padding=4, dilation=4)),
        ("quartznet_dw_k33", "QuartzNet depthwise k33 C256 L1024", "conv1d", (1, 256, 1024),
         (256, 1, 33), dict(padding=16, groups=256)),
        ("textcnn_k5", "text CNN k5 300->100 L64, N32", "conv1d", (32, 300, 64), (100, 300, 5),
         dict(padding=2)),
        ("melgan_up8", "MelGAN upsample convT k16 s8 512->256 L64", "conv_transpose1d",
         (1, 512, 64), (512, 256, 16), dict(stride=8, padding=4)),
    ]),
    "factorized": _table("factorized", [  # spatially separable / flattened filters
        ("inception_7x1_1x7", "Inception-v3 7x1 + 1x7 128->128->192 17", "spatially_separable_conv2d",
         (1, 128, 17, 17), (128, 128, 7, 1), (192, 128, 1, 7), dict(padding=3)),
        ("sobel_like_c64", "per-channel 3x1 + 1x3 C64 56 (groups=64)", "spatially_separable_conv2d",
         (1, 64, 56, 56), (64, 1, 3, 1), (64, 1, 1, 3), dict(padding=1, groups=64)),
        ("flattened_64", "flattened 1x1 + 3x1 + 1x3 64->64 56", "flattened_conv2d",
         (1, 64, 56, 56), (64, 64), (64, 3), (64, 3), dict(padding=1)),
        # fused (default) against stage by stage: asv's peakmem_cconv shows the intermediates
        ("flattened_64_n8", "flattened 1x1 + 3x1 + 1x3 64->64 56, N8 (fused)", "flattened_conv2d",
         (8, 64, 56, 56), (64, 64), (64, 3), (64, 3), dict(padding=1)),
        ("flattened_64_n8_steps", "flattened 1x1 + 3x1 + 1x3 64->64 56, N8 (fused=False)",
         "flattened_conv2d", (8, 64, 56, 56), (64, 64), (64, 3), (64, 3), dict(padding=1, fused=False)),
        ("separable_n8_steps", "separable 3x3 + 1x1 144->24 56, N8 (fused=False)", "separable_conv2d",
         (8, 144, 56, 56), (144, 1, 3, 3), (24, 144, 1, 1), dict(padding=1, fused=False)),
        # 9.5 MB intermediate: fused runs two chunks of 32 images
        ("inception_7x1_1x7_n64", "Inception-v3 7x1 + 1x7 128->128->192 17, N64 (fused)",
         "spatially_separable_conv2d", (64, 128, 17, 17), (128, 128, 7, 1), (192, 128, 1, 7),
         dict(padding=3)),
        ("inception_7x1_1x7_n64_steps", "Inception-v3 7x1 + 1x7 128->128->192 17, N64 (fused=False)",
         "spatially_separable_conv2d", (64, 128, 17, 17), (128, 128, 7, 1), (192, 128, 1, 7),
         dict(padding=3, fused=False)),
    ]),
}

# Gradient layers for asv.
NETWORK_GRADS = _table("grad_layers", [
    ("resnet50_layer1_3x3", "ResNet-50 layer1 3x3 64->64 56, N8", "grad.conv2d", (8, 64, 56, 56),
     (64, 64, 3, 3), dict(padding=1)),
    ("resnet50_layer1_reduce", "ResNet-50 layer1 1x1 256->64 56, N8", "grad.conv2d",
     (8, 256, 56, 56), (64, 256, 1, 1), {}),
    ("mobilenet_v2_dw_c144", "MobileNetV2 depthwise 3x3 C144 56, N8", "grad.depthwise_conv2d",
     (8, 144, 56, 56), (144, 1, 3, 3), dict(padding=1)),
    ("mobilenet_v2_sep_c144", "MobileNetV2 separable dw3x3 + 1x1 144->24 56, N8",
     "grad.separable_conv2d", (8, 144, 56, 56), (144, 1, 3, 3), (24, 144, 1, 1), dict(padding=1)),
    ("shufflenet_gconv_g3", "ShuffleNet grouped 1x1 g3 240->60 28, N8", "grad.conv2d",
     (8, 240, 28, 28), (60, 80, 1, 1), dict(groups=3)),
    ("shufflenet_shuffle_g3", "ShuffleNet channel shuffle g3 C60 28, N8", "grad.channel_shuffle",
     (8, 60, 28, 28), dict(groups=3)),
    ("dcgan_g4", "DCGAN convT 4x4 s2 128->64 16->32, N8", "grad.conv_transpose2d",
     (8, 128, 16, 16), (128, 64, 4, 4), dict(stride=2, padding=1)),
    ("inception_7x1_1x7", "Inception-v3 7x1 + 1x7 128->128->192 17, N8",
     "grad.spatially_separable_conv2d", (8, 128, 17, 17), (128, 128, 7, 1), (192, 128, 1, 7),
     dict(padding=3)),
    ("flattened_64", "flattened 1x1 + 3x1 + 1x3 64->64 56, N8", "grad.flattened_conv2d",
     (8, 64, 56, 56), (64, 64), (64, 3), (64, 3), dict(padding=1)),
    ("deeplab_aspp_d6", "DeepLab ASPP 3x3 d6 320->256 33", "grad.conv2d", (1, 320, 33, 33),
     (256, 320, 3, 3), dict(padding=6, dilation=6)),
    ("tcn_d4", "TCN k3 d4 128->128 L1024, N8", "grad.conv1d", (8, 128, 1024), (128, 128, 3),
     dict(padding=4, dilation=4)),
    ("c3d_conv5a", "C3D conv5a 3x3x3 512->512 2x7x7", "grad.conv3d", (1, 512, 2, 7, 7),
     (512, 512, 3, 3, 3), dict(padding=1)),
    ("melgan_up8", "MelGAN upsample convT k16 s8 512->256 L64", "grad.conv_transpose1d",
     (1, 512, 64), (512, 256, 16), dict(stride=8, padding=4)),
    ("unet3d_upconv", "3-D U-Net up-conv 2x2x2 s2 128->64 8x28x28", "grad.conv_transpose3d",
     (1, 128, 8, 28, 28), (128, 64, 2, 2, 2), dict(stride=2)),
])

GROUPS = {"suite": SUITE, "batch1": BATCH1, "functions": FUNCTIONS, "grad": GRAD, "tiny": TINY}
DEFAULT_GROUPS = ("suite", "batch1", "functions", "grad")

# Every public function a table must exercise (checked by tests/test_bench.py).
PUBLIC_FUNCTIONS = (
    "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d", "conv_transpose3d",
    "depthwise_conv2d", "separable_conv2d", "spatially_separable_conv2d", "flattened_conv2d",
    "channel_shuffle", "shuffled_grouped_conv2d",
)


def all_cases():
    out = []
    for g in GROUPS.values():
        out += g
    for g in NETWORKS.values():
        out += g
    return out + NETWORK_GRADS


def select(tokens=None):
    """Cases matching any token: a group name ("suite", "tiny", "grad", a network) or a function
    name ("conv2d", "grad.conv2d"); any other token matches the case with that key and the
    cases whose name contains it ("dense3x3", "depthwise"). None: the default groups."""
    if not tokens:
        return [c for g in DEFAULT_GROUPS for c in GROUPS[g]]
    pool = [c for g in GROUPS.values() for c in g]
    pool += [c for t in NETWORKS.values() for c in t] + NETWORK_GRADS
    chosen = []
    for tok in tokens:
        t = tok.strip().lower()
        if not t:
            continue
        exact = [c for c in pool if t in (c.group, c.fn)]
        for c in exact or [c for c in pool if t == c.key.lower() or t in c.name.lower()]:
            if c not in chosen:
                chosen.append(c)
    return chosen


# --------------------------------------------------------------------------- arithmetic

def _tup(v, nd):
    if isinstance(v, (tuple, list)):
        assert len(v) == nd, (v, nd)
        return tuple(int(a) for a in v)
    return (int(v),) * nd


@dataclass(frozen=True)
class Stage:
    """One plain convolution, channels-first, as torch.nn.functional.conv*/conv_transpose* take it.
    `weight` indexes Case.weights; `w_shape` is that weight reshaped for the conv."""
    nd: int
    transposed: bool
    x_shape: tuple
    w_shape: tuple
    weight: int
    stride: tuple
    padding: tuple
    dilation: tuple
    groups: int
    output_padding: tuple
    out_shape: tuple

    @property
    def flops(self):
        k = math.prod(self.w_shape[2:])
        if self.transposed:   # the adjoint: every input element meets every tap once
            n, cin = self.x_shape[:2]
            return 2 * n * cin * math.prod(self.x_shape[2:]) * (self.w_shape[1]) * k
        n, cout = self.out_shape[:2]
        return 2 * n * cout * math.prod(self.out_shape[2:]) * self.w_shape[1] * k


def stage(nd, x_shape, w_shape, weight=0, stride=1, padding=0, dilation=1, groups=1,
          transposed=False, output_padding=0):
    s, p, d = _tup(stride, nd), _tup(padding, nd), _tup(dilation, nd)
    op = _tup(output_padding, nd)
    k = w_shape[2:]
    if transposed:
        cout = w_shape[1] * groups
        size = tuple((i - 1) * ss - 2 * pp + dd * (kk - 1) + oo + 1
                     for i, kk, ss, pp, dd, oo in zip(x_shape[2:], k, s, p, d, op))
    else:
        cout = w_shape[0]
        size = tuple((i + 2 * pp - dd * (kk - 1) - 1) // ss + 1
                     for i, kk, ss, pp, dd in zip(x_shape[2:], k, s, p, d))
    return Stage(nd, transposed, tuple(x_shape), tuple(w_shape), weight, s, p, d, int(groups), op,
                 (x_shape[0], cout) + size)


def stages(case):
    """The plain convolutions a case amounts to (empty for channel_shuffle)."""
    fn, kw, x, w = case.base_fn, case.kwargs, case.x, case.weights
    nd = case.nd
    if fn == "channel_shuffle":
        return []
    if fn in ("conv1d", "conv2d", "conv3d"):
        return [stage(nd, x, w[0], **kw)]
    if fn.startswith("conv_transpose"):
        return [stage(nd, x, w[0], transposed=True, **kw)]
    s, p, d = (_tup(kw.get(a, dv), 2) for a, dv in (("stride", 1), ("padding", 0), ("dilation", 1)))
    if fn == "depthwise_conv2d":
        return [stage(2, x, w[0], 0, s, p, d, groups=x[1])]
    if fn == "shuffled_grouped_conv2d":   # + a channel shuffle (shuffle_after), no FLOPs
        return [stage(2, x, w[0], 0, s, p, d, groups=kw["groups"])]
    if fn == "separable_conv2d":
        dw = stage(2, x, w[0], 0, s, p, d, groups=x[1])
        return [dw, stage(2, dw.out_shape, w[1], 1)]
    if fn == "spatially_separable_conv2d":
        g = kw.get("groups", 1)
        v = stage(2, x, w[0], 0, (s[0], 1), (p[0], 0), (d[0], 1), g)
        return [v, stage(2, v.out_shape, w[1], 1, (1, s[1]), (0, p[1]), (1, d[1]), g)]
    if fn == "flattened_conv2d":
        cout = w[0][0]
        c = stage(2, x, (cout, w[0][1], 1, 1), 0)
        v = stage(2, c.out_shape, (cout, 1, w[1][1], 1), 1, (s[0], 1), (p[0], 0), (d[0], 1), cout)
        return [c, v, stage(2, v.out_shape, (cout, 1, 1, w[2][1]), 2, (1, s[1]), (0, p[1]),
                            (1, d[1]), cout)]
    raise ValueError(f"unknown function {fn!r}")


def shuffle_after(case):
    """The channel shuffle's groups when the case ends with one (shuffled_grouped_conv2d)."""
    if case.base_fn != "shuffled_grouped_conv2d":
        return None
    kw = case.kwargs
    return kw.get("shuffle_groups") or kw["groups"]


def out_shape(case):
    """Channels-first output shape (for a gradient case: the forward output = grad_output)."""
    st = stages(case)
    return tuple(case.x) if not st else st[-1].out_shape


def flops(case):
    """Own count, 2 x multiply-adds (grad: input + weight gradients, 2x the forward)."""
    f = sum(s.flops for s in stages(case))
    return 2 * f if case.is_grad else f


def bytes_moved(case, itemsize):
    """Minimum traffic: every input read once and every output written once (composites fused)."""
    x = math.prod(case.x)
    if case.base_fn == "channel_shuffle":
        return 2 * x * itemsize
    w = sum(math.prod(s) for s in case.weights)
    y = math.prod(out_shape(case))
    if case.is_grad:   # read x, weights, dy; write dx, the weights' gradients
        return (2 * x + 2 * w + y) * itemsize
    return (x + w + y) * itemsize


def analysis_flops(case, analysis):
    """FLOPs of a forward case from cconv.analysis.cost (None for a gradient: it has no model
    for those). Only the FLOPs are taken: its bytes_moved counts unfused stages (intermediates
    written and read), while `bytes_moved` here is the fused minimum."""
    if case.is_grad:
        return None
    kw = case.kwargs
    args = (kw.pop("groups"),) if case.fn == "channel_shuffle" else case.weights
    return float(analysis.cost(case.fn, case.x, *args, **kw).flops)


# --------------------------------------------------------------------------- inputs and layouts

LAYOUT_NAMES = {1: ("NCW", "NWC"), 2: ("NCHW", "NHWC"), 3: ("NCDHW", "NDHWC")}


def is_channels_last(layout):
    """"NCHW"-style names (any rank) -> False; "NHWC"-style -> True."""
    if layout is None:
        return False
    layout = layout.upper()
    if layout in ("NCW", "NCHW", "NCDHW", "CHANNELS_FIRST"):
        return False
    if layout in ("NWC", "NHWC", "NDHWC", "CHANNELS_LAST"):
        return True
    raise ValueError(f"layout must be NCHW or NHWC (or the 1-D/3-D names), got {layout!r}")


def layout_name(nd, channels_last):
    return LAYOUT_NAMES[nd][1 if channels_last else 0]


def to_layout(a, channels_last):
    return np.ascontiguousarray(np.moveaxis(a, 1, -1)) if channels_last else a


def from_layout(a, channels_last):
    return np.moveaxis(a, -1, 1) if channels_last else a


def make_inputs(case, dtype, channels_last=False, seed=0):
    """Random inputs: x (in the layout asked for), weights (scaled by 1/sqrt(fan-in), so outputs
    stay O(1)), and for a gradient case dy (grad_output, in the layout)."""
    rng = np.random.default_rng(seed)
    dtype = np.dtype(dtype)
    x = to_layout(rng.standard_normal(case.x, dtype=dtype), channels_last)
    weights = []
    for shp in case.weights:
        fan = max(1, math.prod(shp[1:]))
        weights.append((rng.standard_normal(shp, dtype=dtype) / np.sqrt(fan)).astype(dtype))
    dy = None
    if case.is_grad:
        dy = to_layout(rng.standard_normal(out_shape(case), dtype=dtype), channels_last)
    return x, weights, dy


def call_kwargs(case, channels_last):
    kw = case.kwargs
    if channels_last:
        kw["layout"] = layout_name(case.nd, True)
    return kw


SINGLE_CONVOLUTIONS = ("conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d",
                       "conv_transpose3d", "depthwise_conv2d")
# The functions with a plan_ form (cconv.plan_conv2d, ...).
PLANNED_FUNCTIONS = ("conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d",
                     "conv_transpose3d")


def _cconv_grad_callable(cconv, case, x, weights, dy, kw):
    grad = cconv.grad
    base = case.base_fn
    if base in SINGLE_CONVOLUTIONS:
        fi, fw = getattr(grad, base + "_input"), getattr(grad, base + "_weight")
        w = weights[0]
        return lambda: (fi(x.shape, w, dy, **kw), fw(x, w.shape, dy, **kw))
    if base == "channel_shuffle":
        groups = kw.pop("groups")
        fs = grad.channel_shuffle_input
        return lambda: (fs(dy, groups, **kw),)
    fg = getattr(grad, base + "_grads")
    n = 1 + len(weights)   # (grad_x, grad of each weight[, grad_bias]): keep the comparable part
    return lambda: tuple(fg(x, *weights, dy, **kw)[:n])


def cconv_callable(cconv, case, x, weights, dy=None, channels_last=False):
    """A zero-argument callable running the case with cconv."""
    kw = call_kwargs(case, channels_last)
    if case.is_grad:
        return _cconv_grad_callable(cconv, case, x, weights, dy, kw)
    if case.fn == "channel_shuffle":
        fn = cconv.channel_shuffle
        groups = kw.pop("groups")
        return lambda: fn(x, groups, **kw)
    fn = getattr(cconv, case.fn)
    return lambda: fn(x, *weights, **kw)


def make_plan(cconv, case, x, weights, channels_last=False):
    """cconv.plan_<fn>(...) for this case, or None when the function has no plan_ form."""
    if case.fn not in PLANNED_FUNCTIONS:
        return None
    maker = getattr(cconv, "plan_" + case.fn)
    return maker(x.shape, weights[0], dtype=x.dtype, **call_kwargs(case, channels_last))


def cconv_planned(cconv, case, x, weights, channels_last=False):
    """A callable running a prepared plan (weights packed once), or None."""
    plan = make_plan(cconv, case, x, weights, channels_last)
    return None if plan is None else (lambda: plan(x))


# --------------------------------------------------------------------------- NumPy baseline

_LETTERS = "uvw"  # spatial output axes
_TAPS = "ijk"     # kernel taps


def _windows(xp, kernel, stride, dilation):
    """im2col as a view: (N, C, *out, *kernel) of a padded channels-first array."""
    nd = len(kernel)
    span = tuple(d * (k - 1) + 1 for k, d in zip(kernel, dilation))
    v = sliding_window_view(xp, span, axis=tuple(range(2, 2 + nd)))
    idx = (slice(None),) * 2 + tuple(slice(None, None, s) for s in stride) \
        + tuple(slice(None, None, d) for d in dilation)
    return v[idx]


def _pad(x, before, after):
    """Zero padding; negative amounts crop."""
    nd = x.ndim - 2
    if any(b < 0 for b in before) or any(a < 0 for a in after):
        idx = (slice(None),) * 2 + tuple(slice(max(-b, 0), x.shape[2 + i] - max(-a, 0))
                                         for i, (b, a) in enumerate(zip(before, after)))
        x = x[idx]
        before = [max(b, 0) for b in before]
        after = [max(a, 0) for a in after]
    if any(before) or any(after):
        x = np.pad(x, [(0, 0), (0, 0)] + list(zip(before, after)))
    return x


def np_conv(x, w, stride, padding, dilation, groups):
    """Channels-first convolution through im2col (sliding_window_view) and tensordot/einsum."""
    nd = x.ndim - 2
    kernel = w.shape[2:]
    cols = _windows(_pad(x, padding, padding), kernel, stride, dilation)
    n, c = x.shape[:2]
    cout = w.shape[0]
    if groups == 1:
        y = np.tensordot(cols, w, axes=([1] + list(range(2 + nd, 2 + 2 * nd)),
                                         list(range(1, 2 + nd))))      # (N, *out, C_out)
        return np.moveaxis(y, -1, 1)
    o, t = _LETTERS[:nd], _TAPS[:nd]
    cg = cols.reshape((n, groups, c // groups) + cols.shape[2:])
    wg = w.reshape((groups, cout // groups) + w.shape[1:])
    y = np.einsum(f"ngc{o}{t},gdc{t}->ngd{o}", cg, wg, optimize=True)
    return y.reshape((n, cout) + y.shape[3:])


def _transposed_as_conv_weight(w, groups):
    """(C_in, C_out/g, *k) of a transposed conv -> (C_out, C_in/g, *k) flipped: the direct conv."""
    cin, og = w.shape[:2]
    k = w.shape[2:]
    wg = w.reshape((groups, cin // groups, og) + k).swapaxes(1, 2).reshape((groups * og, cin // groups) + k)
    return wg[(slice(None), slice(None)) + (slice(None, None, -1),) * len(k)]


def np_conv_transpose(x, w, stride, padding, output_padding, dilation, groups):
    """Transposed convolution: insert stride-1 zeros, pad by d(k-1)-p, convolve flipped weights."""
    nd = x.ndim - 2
    k = w.shape[2:]
    n, c = x.shape[:2]
    up = np.zeros((n, c) + tuple((i - 1) * s + 1 for i, s in zip(x.shape[2:], stride)), x.dtype)
    up[(slice(None), slice(None)) + tuple(slice(None, None, s) for s in stride)] = x
    before = [d * (kk - 1) - p for kk, d, p in zip(k, dilation, padding)]
    after = [b + o for b, o in zip(before, output_padding)]
    return np_conv(_pad(up, before, after), _transposed_as_conv_weight(w, groups), (1,) * nd,
                   (0,) * nd, dilation, groups)


def np_conv_weight_grad(x, dy, w_shape, stride, padding, dilation, groups):
    nd = x.ndim - 2
    cols = _windows(_pad(x, padding, padding), w_shape[2:], stride, dilation)
    n, c = x.shape[:2]
    cout = dy.shape[1]
    if groups == 1:
        return np.tensordot(dy, cols, axes=([0] + list(range(2, 2 + nd)),
                                            [0] + list(range(2, 2 + nd))))
    o, t = _LETTERS[:nd], _TAPS[:nd]
    cg = cols.reshape((n, groups, c // groups) + cols.shape[2:])
    dg = dy.reshape((n, groups, cout // groups) + dy.shape[2:])
    return np.einsum(f"ngd{o},ngc{o}{t}->gdc{t}", dg, cg, optimize=True).reshape(w_shape)


def np_shuffle(x, groups, channels_last=False):
    axis = x.ndim - 1 if channels_last else 1
    c = x.shape[axis]
    split = x.reshape(x.shape[:axis] + (groups, c // groups) + x.shape[axis + 1:])
    return np.ascontiguousarray(np.swapaxes(split, axis, axis + 1)).reshape(x.shape)


def run_stage(st, x, w):
    w = w.reshape(st.w_shape)
    if st.transposed:
        return np_conv_transpose(x, w, st.stride, st.padding, st.output_padding, st.dilation,
                                 st.groups)
    return np_conv(x, w, st.stride, st.padding, st.dilation, st.groups)


def np_backward(case, sts, x, weights, dy, channels_last):
    """(grad_x, grad of each weight) by backpropagation through the stages, in NumPy."""
    acts = [from_layout(x, channels_last)]
    for st in sts[:-1]:   # forward intermediates
        acts.append(run_stage(st, acts[-1], weights[st.weight]))
    g = from_layout(dy, channels_last)
    if shuffle_after(case):   # the inverse permutation first
        g = np_shuffle(g, g.shape[1] // shuffle_after(case))
    grads = [None] * len(weights)
    for st, a in zip(reversed(sts), reversed(acts)):
        w = weights[st.weight].reshape(st.w_shape)
        if st.transposed:   # adjoint of a transposed conv: the plain conv, same arguments
            dw = np_conv_weight_grad(g, a, st.w_shape, st.stride, st.padding, st.dilation, st.groups)
            g = np_conv(g, w, st.stride, st.padding, st.dilation, st.groups)
        else:
            dw = np_conv_weight_grad(a, g, st.w_shape, st.stride, st.padding, st.dilation, st.groups)
            op = tuple(i - ((o - 1) * s - 2 * p + d * (k - 1) + 1) for i, o, s, p, d, k in zip(
                st.x_shape[2:], st.out_shape[2:], st.stride, st.padding, st.dilation,
                st.w_shape[2:]))
            g = np_conv_transpose(g, w, st.stride, st.padding, op, st.dilation, st.groups)
        grads[st.weight] = dw.reshape(weights[st.weight].shape)
    return (to_layout(g, channels_last), *grads)


def numpy_callable(case, x, weights, dy=None, channels_last=False):
    """What a NumPy user writes instead of cconv (layouts converted on the way in and out)."""
    if case.fn == "channel_shuffle":
        g = case.kwargs["groups"]
        return lambda: np_shuffle(x, g, channels_last)
    if case.fn == "grad.channel_shuffle":   # the inverse permutation
        g = case.x[1] // case.kwargs["groups"]
        return lambda: (np_shuffle(dy, g, channels_last),)
    sts = stages(case)
    if case.is_grad:
        return lambda: np_backward(case, sts, x, weights, dy, channels_last)
    sg = shuffle_after(case)

    def fwd():
        y = from_layout(x, channels_last)
        for st in sts:
            y = run_stage(st, y, weights[st.weight])
        if sg:
            y = np_shuffle(y, sg)
        return to_layout(y, channels_last)
    return fwd


def reference_memory_bytes(case, itemsize):
    """Rough size of the im2col matrix the NumPy baseline materialises (to skip huge ones)."""
    if case.base_fn == "channel_shuffle":
        return 2 * math.prod(case.x) * itemsize
    total = 0
    for st in stages(case):
        k = math.prod(st.w_shape[2:])
        # transposed: the zero-inserted input, unfolded at every output pixel
        total = max(total, st.x_shape[0] * st.x_shape[1] * math.prod(st.out_shape[2:]) * k * itemsize)
    return total * (2 if case.is_grad else 1)


# --------------------------------------------------------------------------- PyTorch (optional)

def _torch_tensor(torch, a, channels_last):
    """The NumPy array as a logical NC... torch tensor sharing its memory: for channels-last
    arrays a permuted view, i.e. torch's channels_last memory format (no copy)."""
    t = torch.from_numpy(a)
    if channels_last:
        nd = a.ndim - 2
        t = t.permute(0, nd + 1, *range(1, nd + 1))
    return t


def _to_numpy_layout(t, channels_last):
    if channels_last:
        nd = t.dim() - 2
        t = t.permute(0, *range(2, nd + 2), 1)
    return t.numpy()


def torch_callable(torch, case, x, weights, dy=None, channels_last=False):
    """(run, to_numpy): run() computes the case with torch.nn.functional on the same memory;
    to_numpy(result) gives arrays comparable with cconv's (same layout)."""
    F = torch.nn.functional
    xt = _torch_tensor(torch, x, channels_last)
    conv = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}
    convt = {1: F.conv_transpose1d, 2: F.conv_transpose2d, 3: F.conv_transpose3d}
    if case.fn == "channel_shuffle":
        g = case.kwargs["groups"]

        def run():
            with torch.no_grad():
                return F.channel_shuffle(xt, g)
        return run, lambda y: _to_numpy_layout(y, channels_last)

    sts = stages(case)
    if case.is_grad and case.base_fn in SINGLE_CONVOLUTIONS:
        # aten.convolution_backward: the input and weight gradients torch's autograd runs
        st = sts[0]
        wt = torch.from_numpy(weights[0])
        dyt = _torch_tensor(torch, dy, channels_last)
        backward = torch.ops.aten.convolution_backward

        def run():
            with torch.no_grad():
                dx, dw, _ = backward(dyt, xt, wt, None, list(st.stride), list(st.padding),
                                     list(st.dilation), st.transposed, list(st.output_padding),
                                     st.groups, [True, True, False])
            return dx, dw
        return run, lambda r: (_to_numpy_layout(r[0], channels_last), r[1].numpy())
    if case.is_grad:
        # composites: autograd through the same chain, the graph built once and kept, so each
        # timed call is the backward pass only
        leaves = [xt.detach().requires_grad_()] + [
            torch.from_numpy(w).requires_grad_() for w in weights]
        dyt = _torch_tensor(torch, dy, channels_last)
        if case.base_fn == "channel_shuffle":
            out = F.channel_shuffle(leaves[0] * 1, case.kwargs["groups"])  # (* 1: a graph node)
        else:
            out = leaves[0]
            for st in sts:
                out = conv[st.nd](out, leaves[1 + st.weight].reshape(st.w_shape), None,
                                  st.stride, st.padding, st.dilation, st.groups)
            if shuffle_after(case):
                out = F.channel_shuffle(out, shuffle_after(case))

        def run():
            return torch.autograd.grad(out, leaves, dyt, retain_graph=True,
                                       allow_unused=case.base_fn == "channel_shuffle")
        return run, lambda r: (_to_numpy_layout(r[0], channels_last),
                               *[g.numpy() for g in r[1:]])

    wts = [torch.from_numpy(np.ascontiguousarray(weights[st.weight].reshape(st.w_shape)))
           for st in sts]
    sg = shuffle_after(case)

    def run():
        y = xt
        with torch.no_grad():
            for st, w in zip(sts, wts):
                if st.transposed:
                    y = convt[st.nd](y, w, None, st.stride, st.padding, st.output_padding,
                                     st.groups, st.dilation)
                else:
                    y = conv[st.nd](y, w, None, st.stride, st.padding, st.dilation, st.groups)
            if sg:
                y = F.channel_shuffle(y, sg)
        return y
    return run, lambda y: _to_numpy_layout(y, channels_last)


# --------------------------------------------------------------------------- ONNX Runtime (optional)

# Opset and IR version of the models built here: old enough for every onnxruntime >= 1.17
# (Conv and ConvTranspose have not changed since opset 11).
ONNX_OPSET = 17
ONNX_IR_VERSION = 8


def ort_unsupported(case, dtype):
    """Why ONNX Runtime's CPU engine cannot run this case as cconv does (a short reason for the
    report), or None when it can (either layout: see onnx_model)."""
    if case.is_grad:
        return "gradient"          # ORT's inference sessions have no backward pass
    if case.fn == "channel_shuffle" or shuffle_after(case):
        return "shuffle"           # no ONNX operator (only Reshape + Transpose + Reshape)
    if np.dtype(dtype) != np.float32:
        return "float64"           # ORT's CPU Conv/ConvTranspose kernels are float32 only
    return None


def onnx_model(onnx, x_shape, dtype, convs, channels_last=False):
    """A serialized ONNX model chaining Conv/ConvTranspose nodes: graph input "x" (`x_shape`),
    output "y", the weights as initializers. `convs` lists (weight, transposed, stride, padding,
    dilation, groups, output_padding) per node; padding holds per spatial axis an int or a
    (before, after) pair (ONNX pads: all befores, then all afters).

    ONNX Conv is channels-first only. With channels_last, "x" and "y" are channels-last and the
    graph moves the channels with a Transpose node before the first Conv and after the last one,
    as converters of channels-last models (tf2onnx) emit them: ORT gets the same array as cconv,
    returns the same layout, and its time includes the layout changes (which its graph
    optimiser may fuse into its own blocked-layout reorders)."""
    helper = onnx.helper
    elem = helper.np_dtype_to_tensor_dtype(np.dtype(dtype))
    nodes, inits, name = [], [], "x"
    nd = len(x_shape) - 2
    if channels_last:
        nodes.append(helper.make_node("Transpose", ["x"], ["x_cf"],
                                      perm=[0, nd + 1] + list(range(1, nd + 1))))
        name = "x_cf"
    for i, (w, transposed, stride, padding, dilation, groups, output_padding) in enumerate(convs):
        pairs = [(int(p), int(p)) if np.ndim(p) == 0 else (int(p[0]), int(p[1])) for p in padding]
        attrs = dict(strides=[int(s) for s in stride], dilations=[int(d) for d in dilation],
                     group=int(groups), pads=[b for b, _ in pairs] + [a for _, a in pairs])
        if transposed:
            attrs["output_padding"] = [int(o) for o in output_padding]
        out = "y" if i == len(convs) - 1 and not channels_last else f"t{i}"
        inits.append(onnx.numpy_helper.from_array(np.ascontiguousarray(w, dtype), f"w{i}"))
        nodes.append(helper.make_node("ConvTranspose" if transposed else "Conv",
                                      [name, f"w{i}"], [out], **attrs))
        name = out
    if channels_last:
        nodes.append(helper.make_node("Transpose", [name], ["y"],
                                      perm=[0] + list(range(2, nd + 2)) + [1]))
    graph = helper.make_graph(nodes, "cconv_bench", [helper.make_tensor_value_info(
        "x", elem, list(x_shape))], [helper.make_tensor_value_info("y", elem, None)], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", ONNX_OPSET)])
    model.ir_version = ONNX_IR_VERSION   # (the output's shape is left to ORT's inference)
    return model.SerializeToString()


def ort_session(ort, model, threads):
    """An InferenceSession on the CPU engine with `threads` intra-op threads, one inter-op
    thread, sequential execution and every graph optimisation. Its pool's threads do not spin
    after a run: timed interleaved with cconv (and torch) on the same cores, spinning threads
    take the cores the next library needs, and both sides' times suffer."""
    so = ort.SessionOptions()
    so.intra_op_num_threads = int(threads)
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.log_severity_level = 3      # warnings about unused initializers etc. are noise here
    return ort.InferenceSession(model, so, providers=["CPUExecutionProvider"])


def ort_callable(onnx, ort, case, x, weights, threads, channels_last=False):
    """run(): the case's convolutions as one ONNX model, through a session created here once
    (like a reused plan), on the same array as cconv (channels-last: see onnx_model); check
    ort_unsupported first."""
    convs = [(weights[st.weight].reshape(st.w_shape), st.transposed, st.stride, st.padding,
              st.dilation, st.groups, st.output_padding) for st in stages(case)]
    model = onnx_model(onnx, x.shape, x.dtype, convs, channels_last)
    session = ort_session(ort, model, threads)
    feed = {"x": x}
    return lambda: session.run(None, feed)[0]


# --------------------------------------------------------------------------- timing

# glibc's mallopt parameters.
_M_TRIM_THRESHOLD, _M_MMAP_MAX = -1, -4


def steady_allocator():
    """Make glibc malloc serve every block from its heap and never give freed memory back
    (mallopt M_MMAP_MAX 0, M_TRIM_THRESHOLD 2 GiB), so that whether a call's output and
    temporaries land on pages already mapped does not depend on what else ran in the process:
    after its first calls every library reuses freed memory. By default glibc maps large blocks
    anew, raises that threshold each time such a block is freed, trims the heap's top, and
    serves any request from a large enough free chunk: one library's allocations (an ONNX
    Runtime session, torch's temporaries) decide whether the next library's pages are reused or
    freshly faulted in, inside its timed call. Returns False where there is no glibc (nothing
    changed)."""
    import ctypes
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (AttributeError, OSError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    return bool(mallopt(_M_MMAP_MAX, 0) and mallopt(_M_TRIM_THRESHOLD, 2**31 - 1))


def _time_calls(fn, number):
    t0 = time.perf_counter()
    for _ in range(number):
        fn()
    return (time.perf_counter() - t0) / number


def _calibrate(fn, target):
    """Warm-up (first touch, plan caches, thread pools), then calls per sample so that one
    sample lasts about `target` seconds."""
    fn()
    t = _time_calls(fn, 1)
    return max(1, min(10000, int(target / max(t, 1e-7))))


def time_interleaved(fns, repeat, target):
    """Median seconds per call of each function, sampled in turn: A B A B ..."""
    numbers = [_calibrate(f, target) for f in fns]
    samples = [[] for _ in fns]
    for _ in range(repeat):
        for i, f in enumerate(fns):
            samples[i].append(_time_calls(f, numbers[i]))
    return [statistics.median(s) for s in samples]
