"""Configuration: config.toml, then PORTAL_* environment variables, then a test mapping."""

from __future__ import annotations

import os
import secrets
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
CONFIG_FILE = ROOT / "config.toml"
ENV_PREFIX = "PORTAL_"


def _parse_env_value(raw: str) -> Any:
    """Read an environment value as a TOML scalar when it is one (true, 10, 1.5), else a string."""
    try:
        return tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        return raw


def load_config(overrides: Mapping[str, Any] | None = None, *, environ=os.environ) -> dict[str, Any]:
    """Build the Flask config mapping: config.toml < PORTAL_* variables < overrides."""
    with CONFIG_FILE.open("rb") as fh:
        config = {key.upper(): value for key, value in tomllib.load(fh).items()}
    for name, raw in environ.items():
        if name.startswith(ENV_PREFIX) and len(name) > len(ENV_PREFIX):
            config[name[len(ENV_PREFIX) :]] = _parse_env_value(raw)
    config.setdefault("DATABASE_URL_FROM_ENV", f"{ENV_PREFIX}DATABASE_URL" in environ)
    config.setdefault("EMBEDDED_DATABASE", False)
    if overrides:
        config.update({key.upper(): value for key, value in overrides.items()})
    config.setdefault("ASYNC_LOOP", "persistent")
    config.setdefault("DATABASE_POOL", "queue")
    return config


def instance_secret_key(instance_path: Path) -> str:
    """The development secret key, generated once into instance/secret_key (never committed)."""
    instance_path.mkdir(parents=True, exist_ok=True)
    key_file = instance_path / "secret_key"
    if not key_file.exists():
        fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_hex(32))
    return key_file.read_text().strip()
