"""Configuration lookup: explicit argument > environment > config file > DEFAULT_CONFIG.

Keys are lower-case names such as ``slippage_bps``; a dotted key (``paper.fee_bps``) walks nested mappings
in the YAML file. The environment variable for a key is ``LEDGER_`` + the key upper-cased with dots as
underscores (``LEDGER_SLIPPAGE_BPS``); its text is parsed as YAML, so ``5`` is a number and ``null`` is None.
The config file is ``$LEDGER_CONFIG`` when set, else ``config/ledger.yaml`` in the working directory if present.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

from ledger.constants import DEFAULT_CONFIG
from ledger.exceptions import ConfigError

_MISSING = object()


def env_var_name(key: str) -> str:
    return "LEDGER_" + key.upper().replace(".", "_")


def config_path() -> Path | None:
    """The config file in force, or None when there is none."""
    explicit = os.environ.get("LEDGER_CONFIG")
    if explicit:
        path = Path(explicit).expanduser()
        if not path.is_file():
            raise ConfigError(f"LEDGER_CONFIG points to {path}, which is not a file")
        return path
    default = Path("config") / "ledger.yaml"
    return default if default.is_file() else None


def _load_file(path: Path) -> dict[str, Any]:
    try:
        loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read config file {path}: {exc}") from exc
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise ConfigError(f"config file {path} must hold a mapping at the top level")
    return loaded


def _lookup(mapping: dict[str, Any], key: str) -> Any:
    node: Any = mapping
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return _MISSING
        node = node[part]
    return node


def get_cfg(key: str, default: Any = None, *, explicit: Any = None) -> Any:
    """Resolve one setting: ``explicit`` (when not None) > environment > config file > DEFAULT_CONFIG > ``default``.

    An explicit ``0`` or ``""`` is a value, not "unset": only None falls through.
    """
    if explicit is not None:
        return explicit
    raw = os.environ.get(env_var_name(key))
    if raw is not None:
        try:
            return yaml.safe_load(raw)
        except yaml.YAMLError as exc:
            raise ConfigError(f"{env_var_name(key)}={raw!r} is not a valid value: {exc}") from exc
    path = config_path()
    if path is not None:
        value = _lookup(_load_file(path), key)
        if value is not _MISSING:
            return value
    value = _lookup(DEFAULT_CONFIG, key)
    if value is not _MISSING and value is not None:
        return value
    return default
