"""The digits sample preprocessed once as the platform preprocesses it (32x32; 90% train, 10%
validation), for the benchmarks whose baselines train outside the platform
(``bench/training.py``, ``bench/ga_vs_random.py``). Needs the repository root on ``sys.path``.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path


def prepared_digits(scratch: Path) -> Path:
    """Build, validate and preprocess the digits under ``scratch``; returns the folder that
    ``actors.datasets.preprocess.load_split`` reads."""
    from actors.datasets.layouts import discover, files_root
    from actors.datasets.preprocess import (
        PreprocessConfig,
        process_chunk,
        stratified_split,
        stratum,
    )
    from actors.datasets.samples import build_digits
    from actors.datasets.validate import check_candidates, summarize

    zipfile.ZipFile(build_digits(scratch / "digits.zip")).extractall(scratch / "digits")
    root = files_root(scratch / "digits")
    discovery = discover(root, "classification")
    entries, rejected = check_candidates(root, discovery.candidates)
    summarize(entries, rejected, discovery.layout)
    config = PreprocessConfig(image_size=(32, 32), split=(0.9, 0.1, 0.0))
    output = scratch / "prepared"
    output.mkdir()
    process_chunk(root, entries, config, output / "chunk_0000.npz")
    split = stratified_split(
        [e["id"] for e in entries], [stratum(e) for e in entries], config.split, 0
    )
    (output / "split.json").write_text(json.dumps(split))
    (output / "config.json").write_text(config.model_dump_json())
    return output
