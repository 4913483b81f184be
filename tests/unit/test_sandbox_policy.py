"""The sandbox as plain values: the paths it opens, the environment it passes, the JSON it speaks,
the reasons it gives, the Landlock masks, and the architectures a state dict may name."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest

from actors.models import architectures, landlock, sandbox
from actors.models.conversion import ConversionRequest
from actors.models.sandbox import Limits, WorkerResult
from cvplatform.errors import ConversionFailed, InvalidModel

LIMITS = Limits(memory_mb=2048, cpu_s=60, timeout_s=30.0)


def _policy(tmp_path: Path, abi: int | None = 7) -> sandbox.SandboxPolicy:
    data_dir = tmp_path / "data"
    return sandbox.build_policy(
        abi,
        sandbox.python_environment(),
        data_dir / "artifacts" / "models" / "m1" / "source.pt",
        data_dir / "artifacts" / ".incoming" / "work",
        data_dir,
        LIMITS,
    )


def test_the_data_directory_is_neither_read_nor_written_but_for_the_upload_and_workdir(
    tmp_path: Path,
) -> None:
    policy = _policy(tmp_path)
    data_dir = tmp_path / "data"
    source = data_dir / "artifacts" / "models" / "m1" / "source.pt"
    for path in map(Path, policy.read_paths):
        if path != source:
            assert not data_dir.is_relative_to(path) and not path.is_relative_to(data_dir), path
    assert str(source) in policy.read_paths
    assert policy.write_paths == (str(data_dir / "artifacts" / ".incoming" / "work"), "/dev/null")
    assert str(Path(sys.prefix).resolve()) in policy.read_paths
    assert "/etc" not in policy.read_paths and "/" not in policy.read_paths
    assert (policy.landlock_abi, policy.limits) == (7, LIMITS)


def test_a_data_directory_inside_a_folder_the_worker_reads_is_refused(tmp_path: Path) -> None:
    environment = sandbox.python_environment()
    inside = environment[0] / "cvp-data"
    with pytest.raises(ConversionFailed, match="move CVP_DATA_DIR"):
        sandbox.build_policy(7, environment, inside / "s.pt", inside / "w", inside, LIMITS)


def test_the_worker_gets_no_secrets_in_its_environment(tmp_path: Path) -> None:
    parent = {
        "PATH": "/usr/bin",
        "LANG": "C.UTF-8",
        "CVP_ADMIN_PASSWORD": "hunter2hunter2",
        "CVP_STORE_SECRET": "s",
        "RAY_AUTH_TOKEN": "t",
        "AWS_SECRET_ACCESS_KEY": "k",
        "HOME": "/root",
    }
    env = sandbox.worker_environment(parent, tmp_path / "w")
    assert env["PATH"] == "/usr/bin" and env["LANG"] == "C.UTF-8"
    assert not {"CVP_ADMIN_PASSWORD", "CVP_STORE_SECRET", "RAY_AUTH_TOKEN"} & set(env)
    assert "AWS_SECRET_ACCESS_KEY" not in env
    for name in ("HOME", "TMPDIR", "XDG_CACHE_HOME", "YOLO_CONFIG_DIR"):
        assert Path(env[name]).is_relative_to(tmp_path / "w"), name
    assert env["CUDA_VISIBLE_DEVICES"] == ""


def test_the_worker_names_its_user_without_the_password_database(tmp_path: Path) -> None:
    # The rules hide /etc/passwd, and torch's caches ask getpass.getuser() (seen on a GPU host:
    # "KeyError: 'getpwuid(): uid not found: 0'" crashed every conversion there).
    env = sandbox.worker_environment({"PATH": "/usr/bin:/bin"}, tmp_path / "w")
    hidden_database = (
        "import getpass, pwd\n"
        "def refuse(uid):\n"
        "    raise KeyError(f'getpwuid(): uid not found: {uid}')\n"
        "pwd.getpwuid = refuse\n"
        "print(getpass.getuser())\n"
    )
    answer = subprocess.run(
        [sys.executable, "-c", hidden_database], env=env, capture_output=True, text=True, check=True
    )
    assert answer.stdout.strip() == "cvp-sandbox"


def test_the_request_goes_through_json_unchanged(tmp_path: Path) -> None:
    request = ConversionRequest(
        tmp_path / "source.pb",
        "tf_frozen_graph",
        "classification",
        num_classes=3,
        input_shape=[32, 32, 3],
        graph_inputs=["input:0"],
        graph_outputs=["logits:0"],
    )
    policy = _policy(tmp_path)
    text = sandbox.encode_request(request, policy, tmp_path / "w")
    assert sandbox.decode_request(text) == (request, policy, tmp_path / "w")


@pytest.mark.parametrize(
    "text",
    [
        "[]",
        '{"status": "hacked"}',
        '{"status": "ready", "details": "not an object"}',
        '{"status": "failed", "message": 3}',
    ],
)
def test_a_result_of_the_wrong_shape_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="result"):
        sandbox.decode_result(text)


def test_a_result_goes_through_json_and_only_true_means_an_onnx_file() -> None:
    result = WorkerResult("ready", details={"parity": {"max_abs_diff": 0.0}}, wrote_onnx=True)
    assert sandbox.decode_result(sandbox.encode_result(result)) == result
    assert not sandbox.decode_result('{"status": "ready", "wrote_onnx": "yes"}').wrote_onnx


def test_why_a_worker_ended_without_a_result() -> None:
    assert sandbox.ended_without_result(-signal.SIGXCPU, LIMITS, "") == (
        "the conversion used more than its CPU-time limit of 60 s and was stopped "
        "(CVP_CONVERSION_CPU_S)"
    )
    killed = sandbox.ended_without_result(-signal.SIGKILL, LIMITS, "std::bad_alloc")
    assert killed.startswith("the conversion process was killed by SIGKILL: std::bad_alloc")
    assert "memory limit of 2048 MiB (CVP_CONVERSION_MEMORY_MB)" in killed
    assert sandbox.ended_without_result(1, LIMITS, "ImportError: x") == (
        "the conversion process exited with status 1 and no result: ImportError: x"
    )
    assert sandbox.timed_out(LIMITS) == (
        "the conversion ran past its time limit of 30 s and was stopped (CVP_CONVERSION_TIMEOUT_S)"
    )


def test_the_details_say_what_held() -> None:
    policy = sandbox.SandboxPolicy(7, (), (), LIMITS)
    held = sandbox.describe(policy, {"landlock_abi": 7})
    assert held["sandboxed"] is True and held["network"] == "TCP refused"
    missing = sandbox.describe(policy, {"landlock": "missing: the kernel offers no Landlock"})
    assert missing["sandboxed"] is False and "unsandboxed" in missing["note"]
    assert (missing["memory_limit_mb"], missing["cpu_limit_s"], missing["timeout_s"]) == (
        2048,
        60,
        30.0,
    )


# --- Landlock masks -------------------------------------------------------------------------------


def test_landlock_masks_follow_the_abi_and_the_kind_of_path() -> None:
    assert landlock.handled_fs(1) & landlock.REFER == 0
    assert landlock.handled_fs(3) & landlock.TRUNCATE
    assert landlock.handled_fs(7) == landlock.handled_fs(5)
    on_a_file = landlock.rule_access(landlock.WRITE, 7, is_dir=False)
    assert on_a_file == landlock.WRITE_FILE | landlock.READ_FILE | landlock.TRUNCATE
    assert landlock.rule_access(landlock.WRITE, 1, is_dir=True) & landlock.REFER == 0
    assert landlock.READ & landlock.EXECUTE == 0  # nothing is started from the sandbox
    assert landlock.WRITE & landlock.MAKE_SYM == 0  # no link can point the job at a secret


# --- architectures --------------------------------------------------------------------------------


def test_the_written_down_torchvision_builders_are_torchvisions_own() -> None:
    from torchvision import models

    assert set(models.list_models(module=models)) == architectures.TORCHVISION_CLASSIFICATION
    detection = set(models.list_models(module=models.detection))
    assert detection == architectures.TORCHVISION_DETECTION


@pytest.mark.parametrize(
    ("name", "task_type"),
    [
        ("resnet18", "classification"),
        ("fasterrcnn_mobilenet_v3_large_320_fpn", "detection"),
        ("yolov8n.yaml", "detection"),
        ("yolo11s.yaml", "detection"),
        ("yolov8n-cls.yaml", "classification"),
    ],
)
def test_known_architectures_pass(name: str, task_type: str) -> None:
    architectures.check_architecture(name, task_type)


@pytest.mark.parametrize(
    ("name", "task_type", "message"),
    [
        ("/srv/cvp/.cvp-data/evil.yaml", "detection", "is a path or not a name"),
        ("../../jwt-secret.yaml", "detection", "is a path or not a name"),
        ("models/yolov8n.yaml", "detection", "is a path or not a name"),
        ("..\\evil.yaml", "detection", "is a path or not a name"),
        ("~/.ssh/id_rsa", "classification", "is a path or not a name"),
        ("resnet9000", "classification", "unknown classification architecture 'resnet9000'"),
        ("ssd300_vgg16", "classification", "a builder of the other task type"),
        ("yolov8n-seg.yaml", "detection", "unknown ultralytics model yaml"),
        ("yolov8n-cls.yaml", "detection", "builds a classification model, not a detection one"),
    ],
)
def test_unknown_architectures_and_paths_are_refused(
    name: str, task_type: str, message: str
) -> None:
    with pytest.raises(InvalidModel) as refused:
        architectures.check_architecture(name, task_type)
    assert message in refused.value.message
