"""The architectures a state dict may name: torchvision's builders and ultralytics' model yamls.

Checked when the model is uploaded (the API process, which never imports PyTorch: hence the
written-down torchvision names, kept equal to torchvision's own list by a test) and again before
a module is built. ultralytics would read any yaml path it is given, so a name is refused unless
it is one of ultralytics' own files; a path is never one.
"""

from __future__ import annotations

import functools
import importlib.util
import re
from pathlib import Path

import yaml

from cvplatform.errors import InvalidModel

# torchvision 0.29: models.list_models(module=models) and (module=models.detection).
TORCHVISION_CLASSIFICATION = frozenset(
    {
        "alexnet",
        "convnext_base",
        "convnext_large",
        "convnext_small",
        "convnext_tiny",
        "densenet121",
        "densenet161",
        "densenet169",
        "densenet201",
        "efficientnet_b0",
        "efficientnet_b1",
        "efficientnet_b2",
        "efficientnet_b3",
        "efficientnet_b4",
        "efficientnet_b5",
        "efficientnet_b6",
        "efficientnet_b7",
        "efficientnet_v2_l",
        "efficientnet_v2_m",
        "efficientnet_v2_s",
        "googlenet",
        "inception_v3",
        "maxvit_t",
        "mnasnet0_5",
        "mnasnet0_75",
        "mnasnet1_0",
        "mnasnet1_3",
        "mobilenet_v2",
        "mobilenet_v3_large",
        "mobilenet_v3_small",
        "regnet_x_16gf",
        "regnet_x_1_6gf",
        "regnet_x_32gf",
        "regnet_x_3_2gf",
        "regnet_x_400mf",
        "regnet_x_800mf",
        "regnet_x_8gf",
        "regnet_y_128gf",
        "regnet_y_16gf",
        "regnet_y_1_6gf",
        "regnet_y_32gf",
        "regnet_y_3_2gf",
        "regnet_y_400mf",
        "regnet_y_800mf",
        "regnet_y_8gf",
        "resnet101",
        "resnet152",
        "resnet18",
        "resnet34",
        "resnet50",
        "resnext101_32x8d",
        "resnext101_64x4d",
        "resnext50_32x4d",
        "shufflenet_v2_x0_5",
        "shufflenet_v2_x1_0",
        "shufflenet_v2_x1_5",
        "shufflenet_v2_x2_0",
        "squeezenet1_0",
        "squeezenet1_1",
        "swin_b",
        "swin_s",
        "swin_t",
        "swin_v2_b",
        "swin_v2_s",
        "swin_v2_t",
        "vgg11",
        "vgg11_bn",
        "vgg13",
        "vgg13_bn",
        "vgg16",
        "vgg16_bn",
        "vgg19",
        "vgg19_bn",
        "vit_b_16",
        "vit_b_32",
        "vit_h_14",
        "vit_l_16",
        "vit_l_32",
        "wide_resnet101_2",
        "wide_resnet50_2",
    }
)
TORCHVISION_DETECTION = frozenset(
    {
        "fasterrcnn_mobilenet_v3_large_320_fpn",
        "fasterrcnn_mobilenet_v3_large_fpn",
        "fasterrcnn_resnet50_fpn",
        "fasterrcnn_resnet50_fpn_v2",
        "fcos_resnet50_fpn",
        "keypointrcnn_resnet50_fpn",
        "maskrcnn_resnet50_fpn",
        "maskrcnn_resnet50_fpn_v2",
        "retinanet_resnet50_fpn",
        "retinanet_resnet50_fpn_v2",
        "ssd300_vgg16",
        "ssdlite320_mobilenet_v3_large",
    }
)
# ultralytics yamls for tasks the platform has no head for (segmentation, pose, open vocabulary).
_OTHER_TASKS = ("-seg", "-pose", "-obb", "-world", "-sem", "-depth", "yoloe", "rtdetr")
_SCALES = "nslmx"  # the scale letters ultralytics reads from a name (yolov8n.yaml)
# libyaml where present: ten times faster than the pure-Python safe loader.
_SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
# What a builder or yaml name looks like: dot-separated words, so no folder, parent, home or
# hidden file. The API's schema carries it, so a client knows before sending.
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_-]*(\.[A-Za-z0-9_-]+)*$"
_HINT = (
    "name a torchvision builder (resnet18, efficientnet_b0, fasterrcnn_mobilenet_v3_large_320_fpn"
    "...) or an ultralytics model yaml (yolov8n.yaml)"
)


def _scaled(stem: str, scales: object) -> list[str]:
    """``yolov8-cls`` at scales n, s is ``yolov8n-cls``, ``yolov8s-cls``: the letter follows
    the version. A file already named for one scale (``yolov10n``) has no other."""
    version = re.fullmatch(r"(.*?\d+)(-.*)?", stem)
    if version is None or not isinstance(scales, dict):
        return []
    return [f"{version[1]}{s}{version[2] or ''}" for s in scales if s in _SCALES]


@functools.cache
def ultralytics_yamls() -> frozenset[str]:
    """Every yaml name ultralytics builds a detection or classification model from: its own
    files under ``cfg/models``, and the scaled names of those that list scales. Found without
    importing ultralytics (which loads PyTorch)."""
    spec = importlib.util.find_spec("ultralytics")
    if spec is None or spec.origin is None:
        return frozenset()
    names = set()
    for path in (Path(spec.origin).parent / "cfg" / "models").rglob("*.yaml"):
        if any(marker in path.stem for marker in _OTHER_TASKS):
            continue
        names.add(path.name)
        described = yaml.load(path.read_text(), Loader=_SAFE_LOADER)  # noqa: S506 (a safe loader)
        scales = described.get("scales") if isinstance(described, dict) else None
        names.update(f"{scaled}.yaml" for scaled in _scaled(path.stem, scales))
    return frozenset(names)


def path_refusal(name: str) -> str | None:
    """Why ``name`` cannot be an architecture, if it is a path or not a name at all."""
    if re.fullmatch(NAME_PATTERN, name) is None:
        return (
            f"architecture {name!r} is a path or not a name (files on the server are never "
            f"read): {_HINT}"
        )
    return None


def check_architecture(name: str, task_type: str) -> None:
    """Refuse an architecture the platform cannot build for ``task_type``.

    Raises:
        InvalidModel: a path (a file on the server), an unknown name, or a builder of the other
            task.
    """
    refused = path_refusal(name)
    if refused is not None:
        raise InvalidModel(refused)
    if name.endswith((".yaml", ".yml")):
        _check_yaml(name, task_type)
        return
    known = TORCHVISION_DETECTION if task_type == "detection" else TORCHVISION_CLASSIFICATION
    if name not in known:
        other = TORCHVISION_CLASSIFICATION if task_type == "detection" else TORCHVISION_DETECTION
        builds = " (a builder of the other task type)" if name in other else ""
        raise InvalidModel(f"unknown {task_type} architecture {name!r}{builds}: {_HINT}")


def _check_yaml(name: str, task_type: str) -> None:
    if name not in ultralytics_yamls():
        raise InvalidModel(f"unknown ultralytics model yaml {name!r}: {_HINT}")
    builds = "classification" if "-cls" in name else "detection"
    if builds != task_type:
        raise InvalidModel(f"{name} builds a {builds} model, not a {task_type} one")
