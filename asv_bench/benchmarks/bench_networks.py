"""Named layers of real networks (frozen shapes, batch 1 unless the network runs batched):
ResNet-50, ResNeXt-50, MobileNetV2, ShuffleNet, DeepLabv3, DCGAN, C3D / 3-D U-Net, a 1-D
audio/text stack and factorised (spatially separable, flattened) filters. See src/cconv/bench/cases.py."""
from . import common

_NAMES = {
    "resnet50": "ResNet50", "resnext": "ResNeXt", "mobilenet_v2": "MobileNetV2", "shufflenet": "ShuffleNet",
    "deeplab": "DeepLab", "dcgan": "DCGAN", "volumetric": "Volumetric",
    "audio_text": "AudioText", "factorized": "Factorized",
}

for _key, _table in common.cases.NETWORKS.items():
    globals().update(common.benchmark_classes(_NAMES[_key], _table, dtypes=["float32"]))
