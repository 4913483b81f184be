"""Which kind of model file an upload is, decided from its name and then its first bytes."""

from __future__ import annotations

import zipfile
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Literal

from cvplatform.errors import InvalidInput, InvalidModel

Framework = Literal["pytorch", "tensorflow", "onnx"]
SourceFormat = Literal[
    "onnx", "torchscript", "torch_state_dict", "keras_h5", "tf_frozen_graph", "tf_saved_model"
]

EXTENSIONS: dict[str, Framework] = {
    ".onnx": "onnx",
    ".pt": "pytorch",
    ".pth": "pytorch",
    ".h5": "tensorflow",
    ".pb": "tensorflow",
    ".zip": "tensorflow",  # a zipped SavedModel directory
}
HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
_HDF5_USER_BLOCK_MIN = 512
TENSORFLOW_INSTALL = "pip install 'cv-platform[tensorflow]' (in a checkout: make install)"


def check_upload_filename(filename: str) -> str:
    """The file's extension, after refusing names that are paths.

    Raises:
        InvalidInput: an empty name, a path (``../x``, ``/etc/x``, ``C:\\x``) or an unsupported
            extension.
    """
    if not filename or filename in (".", ".."):
        raise InvalidInput("the upload needs a file name, e.g. model.onnx")
    posix, windows = PurePosixPath(filename), PureWindowsPath(filename)
    if len(posix.parts) > 1 or len(windows.parts) > 1 or posix.is_absolute() or "\0" in filename:
        raise InvalidInput(
            f"file name {filename!r} is a path; send the bare file name (e.g. model.onnx)"
        )
    extension = posix.suffix.lower()
    if extension not in EXTENSIONS:
        supported = ", ".join(sorted(EXTENSIONS))
        raise InvalidInput(
            f"unsupported file type {extension or '(none)'!r}; use one of {supported}"
        )
    return extension


def framework_of(extension: str) -> Framework:
    return EXTENSIONS[extension]


def hdf5_signature_offsets(size: int) -> list[int]:
    """Where an HDF5 file of ``size`` bytes may start its superblock: at 0, or after a user block
    of 512, 1024, 2048... bytes (the HDF5 file format specification, "Format Signature")."""
    offsets, offset = [0], _HDF5_USER_BLOCK_MIN
    while offset + len(HDF5_SIGNATURE) <= size:
        offsets.append(offset)
        offset *= 2
    return offsets


def is_hdf5(path: Path) -> bool:
    """Whether the file carries the HDF5 signature where the specification allows it: a few
    bytes read at each place, never the whole file."""
    with path.open("rb") as source:
        size = source.seek(0, 2)
        for offset in hdf5_signature_offsets(size):
            source.seek(offset)
            if source.read(len(HDF5_SIGNATURE)) == HDF5_SIGNATURE:
                return True
    return False


def _is_zip(path: Path) -> bool:
    return zipfile.is_zipfile(path)


def _is_torchscript_archive(path: Path) -> bool:
    # torch.jit.save writes code/ and constants.pkl; torch.save (a state dict) writes neither.
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
    return any("/code/" in name for name in names) or any(
        name.endswith("/constants.pkl") for name in names
    )


def detect_source_format(path: Path, extension: str, has_graph_names: bool) -> SourceFormat:
    """Tell the format by content where the extension leaves a choice.

    Raises:
        InvalidModel: the file is empty, or its content does not match its extension.
    """
    size = path.stat().st_size
    if size == 0:
        raise InvalidModel("the file is empty")
    if extension == ".onnx":
        return "onnx"
    if extension in (".pt", ".pth"):
        if _is_zip(path) and _is_torchscript_archive(path):
            return "torchscript"
        return "torch_state_dict"
    if extension == ".h5":
        if not is_hdf5(path):
            raise InvalidModel("a .h5 file must be a Keras HDF5 model; this one is not HDF5")
        return "keras_h5"
    if extension == ".zip":
        if not _is_zip(path):
            raise InvalidModel("a .zip upload must be a zipped TensorFlow SavedModel directory")
        return "tf_saved_model"
    if not has_graph_names:
        raise InvalidModel(
            "a .pb frozen graph needs the fields input_names and output_names "
            "(comma-separated tensor names, e.g. input:0 and logits:0)"
        )
    return "tf_frozen_graph"
