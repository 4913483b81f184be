"""The platform's configuration: one typed settings object read from ``CVP_*`` variables."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from cvplatform.schemas import check_password_length

LogLevel = Literal["DEBUG", "INFO", "WARN", "ERROR", "FATAL"]
ServeIngress = Literal["haproxy", "proxy"]

MIB = 1024 * 1024


class Settings(BaseSettings):
    """Everything an operator can set, with defaults that work on a laptop.

    Every field is read from the environment variable ``CVP_<FIELD NAME>``.
    """

    # hide_input_in_errors: a refused configuration must not print the admin password back.
    model_config = SettingsConfigDict(
        env_prefix="CVP_", frozen=True, extra="ignore", hide_input_in_errors=True
    )

    data_dir: Path = Field(Path(".cvp-data"), description="SQLite, artifacts, logs, secrets")
    host: str = Field("127.0.0.1", description="management API interface")
    port: int = Field(8080, ge=1, le=65535, description="management API port")
    serve_port: int = Field(8000, ge=1, le=65535, description="Ray Serve prediction port")
    dashboard_port: int = Field(8265, ge=1, le=65535, description="Ray dashboard port")
    dashboard_host: str = Field(
        "127.0.0.1",
        description="Ray dashboard interface; it can run code, so it stays local unless set",
    )
    log_level: LogLevel = "INFO"
    log_max_bytes: int = Field(10 * MIB, ge=4096, description="size at which a log file rotates")
    log_backups: int = Field(5, ge=1, description="rotated log files kept")

    gpu_slots: int = Field(2, ge=1, le=16, description="GPU jobs that may run at once")
    gpu_queue_max: int = Field(32, ge=1, description="queued GPU jobs before 429")
    gpu_memory_limit_mb: int = Field(16384, ge=256, description="per GPU worker process")
    inference_workers: int = Field(10, ge=1, description="inference pool size")
    inference_queue_max: int = Field(1000, ge=1, description="queued inference requests")
    queue_timeout_s: float = Field(30.0, gt=0)
    inference_timeout_s: float = Field(30.0, gt=0)
    serve_ingress: ServeIngress = Field(
        "haproxy",
        description="what answers on CVP_SERVE_PORT: haproxy (Ray Serve's high-throughput "
        "mode) or proxy (Serve's Python proxy; used whenever TLS is on)",
    )
    haproxy_stats_port: int = Field(
        8404, ge=1, le=65535, description="HAProxy's read-only stats page (haproxy ingress)"
    )
    haproxy_metrics_port: int = Field(
        9101, ge=1, le=65535, description="HAProxy's Prometheus exporter (haproxy ingress)"
    )
    inference_replicas: int | None = Field(
        None,
        ge=1,
        le=64,
        description="Serve replicas of the inference pool, workers and cores split among them "
        "(unset: one per CPU core, at most 4; one with a GPU)",
    )
    inference_max_batch: int = Field(32, ge=1, le=1024, description="images in one prediction")
    inference_batch_size: int = Field(
        16, ge=1, le=1024, description="requests for one model run together (dynamic batching)"
    )
    inference_batch_wait_ms: float = Field(
        0.0, ge=0, le=1000, description="how long an idle model waits for company before it runs"
    )
    inference_models_per_replica: int = Field(
        4, ge=1, le=64, description="models a replica keeps loaded (least recently used goes)"
    )
    inference_max_pixels: int = Field(
        40_000_000,
        ge=1,
        description="pixels an image's header may declare (checked before decoding)",
    )
    inference_threads: int | None = Field(
        None,
        ge=1,
        description="CPU threads per model run (unset: the cores divided among the replicas)",
    )

    tls_certfile: Path | None = None
    tls_keyfile: Path | None = None

    session_hours: float = Field(24.0, gt=0, description="lifetime of a login token")
    admin_password: SecretStr | None = Field(None, description="first admin's password")
    bcrypt_rounds: int = Field(12, ge=4, le=16, description="bcrypt cost factor")
    login_max_failures: int = Field(
        5, ge=1, description="failed logins from one address for one name before it backs off"
    )
    login_lockout_s: float = Field(
        900.0, ge=1, description="how long one address waits for one name after those failures"
    )
    login_per_address_per_minute: float = Field(
        30.0, gt=0, description="login attempts one client address may make per minute"
    )
    login_global_per_minute: float = Field(
        600.0, gt=0, description="login attempts the API checks per minute, all addresses"
    )
    auth_cache_s: float = Field(
        2.0,
        ge=0,
        le=60,
        description="how long an API key or token check is reused: a revocation made through "
        "the API applies at once, one made elsewhere (the CLI) within this time",
    )
    max_request_bytes: int = Field(MIB, ge=1024, description="JSON request body limit")
    max_multipart_fields: int = Field(32, ge=4, description="fields in one multipart upload")
    max_part_header_bytes: int = Field(
        16 * 1024, ge=1024, description="header bytes of one multipart part"
    )
    disk_reserve_mb: int = Field(
        512, ge=0, description="free space an upload must leave on the data disk (else 507)"
    )
    store_busy_timeout_s: float = Field(5.0, gt=0, description="wait for SQLite's write lock")
    store_call_timeout_s: float = Field(
        30.0, gt=0, description="how long the API waits for the store actor before a 503"
    )
    conversion_timeout_s: float = Field(
        600.0, gt=0, description="wall-clock limit of one model conversion and parity check"
    )
    conversion_memory_mb: int = Field(
        8192, ge=256, description="memory limit of a conversion's sandboxed process"
    )
    conversion_cpu_s: int = Field(
        1800, ge=10, description="CPU-time limit of a conversion's sandboxed process"
    )
    audit_retention_days: float = Field(
        90.0, gt=0, description="audit rows older than this are purged (see audit_purge_interval_s)"
    )
    audit_purge_interval_s: float = Field(
        86400.0, gt=0, description="how often audit rows past the retention are purged"
    )
    max_model_bytes: int = Field(1024 * MIB, ge=1, description="largest model upload")
    max_extract_bytes: int = Field(
        20 * 1024 * MIB, ge=1, description="most bytes an uploaded archive may unpack to"
    )
    max_extract_ratio: float = Field(
        200.0, gt=1, description="most an archive may expand relative to its own size"
    )
    max_dataset_bytes: int = Field(10 * 1024 * MIB, ge=1, description="largest dataset upload")
    upload_expiry_s: float = Field(
        24 * 3600.0,
        gt=0,
        description="a resumable upload that receives no bytes for this long is deleted",
    )
    import_dir: Path | None = Field(
        None, description="where a CSV-only dataset upload may point at files"
    )
    samples: str = Field(
        "digits,shapes-video",
        description="sample datasets registered at start (comma-separated; empty for none)",
    )
    weights_dir: Path | None = Field(None, description="pretrained weights for the presets")
    presets: str = Field(
        "yolov8n,resnet50,efficientnet_b0",
        description="preset models registered at start (comma-separated; empty for none)",
    )
    shutdown_timeout_s: float = Field(30.0, gt=0)

    @field_validator("data_dir")
    @classmethod
    def _absolute_data_dir(cls, data_dir: Path) -> Path:
        # Ray workers run in other directories: a relative path would point elsewhere there.
        return data_dir.expanduser().resolve()

    @field_validator("admin_password")
    @classmethod
    def _admin_password_length(cls, password: SecretStr | None) -> SecretStr | None:
        if password is not None:
            check_password_length(password.get_secret_value())
        return password

    @model_validator(mode="after")
    def _tls_pair(self) -> Settings:
        if (self.tls_certfile is None) != (self.tls_keyfile is None):
            raise ValueError("set both CVP_TLS_CERTFILE and CVP_TLS_KEYFILE, or neither")
        for tls_file in (self.tls_certfile, self.tls_keyfile):
            if tls_file is not None and not tls_file.is_file():
                raise ValueError(f"TLS file {tls_file} does not exist")
        return self

    @property
    def tls_enabled(self) -> bool:
        return self.tls_certfile is not None

    @property
    def db_path(self) -> Path:
        return self.data_dir / "cvp.db"

    @property
    def jwt_secret_path(self) -> Path:
        return self.data_dir / "jwt-secret"

    @property
    def admin_password_path(self) -> Path:
        return self.data_dir / "admin-password.txt"

    @property
    def log_dir(self) -> Path:
        return self.data_dir / "logs"

    @property
    def artifacts_dir(self) -> Path:
        return self.data_dir / "artifacts"

    @property
    def preset_names(self) -> list[str]:
        return [name.strip() for name in self.presets.split(",") if name.strip()]

    @property
    def sample_names(self) -> list[str]:
        return [name.strip() for name in self.samples.split(",") if name.strip()]

    @property
    def staging_dir(self) -> Path:
        """Uploads land here while they stream, then move under ``artifacts``."""
        return self.artifacts_dir / ".incoming"

    @property
    def run_dir(self) -> Path:
        """Files that describe the running platform (its Ray address); gone after ``cvp down``."""
        return self.data_dir / "run"

    @property
    def api_url(self) -> str:
        scheme = "https" if self.tls_enabled else "http"
        return f"{scheme}://{self.host}:{self.port}"

    def public_view(self) -> dict[str, Any]:
        """The effective configuration with every secret masked, as ``cvp config`` prints it."""
        view = self.model_dump(mode="json")
        view["admin_password"] = "***" if self.admin_password is not None else None
        return view
