"""ray_cluster.yaml passes Ray's own cluster-config validation, as `ray up` would run it."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from ray.autoscaler._private.util import prepare_config, validate_config

CLUSTER_FILE = Path(__file__).parents[2] / "ray_cluster.yaml"


def _load() -> dict[str, Any]:
    config: dict[str, Any] = yaml.safe_load(CLUSTER_FILE.read_text())
    return config


def test_valid_for_ray_up() -> None:
    config = _load()
    validate_config(prepare_config(copy.deepcopy(config)))
    assert config["provider"] == {"type": "local", "head_ip": "127.0.0.1", "worker_ips": []}


def test_every_node_declares_gpu_slots() -> None:
    config = _load()
    for commands in (config["head_start_ray_commands"], config["worker_start_ray_commands"]):
        assert any("""--resources='{"gpu_slot": 2}'""" in command for command in commands)


def test_validation_would_catch_a_broken_file() -> None:
    broken = _load()
    broken["head_start_ray_commands"] = [{"not": "a command"}]
    with pytest.raises(jsonschema.ValidationError):
        validate_config(prepare_config(broken))
