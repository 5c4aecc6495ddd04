"""Where the workspace is and how it is configured. Standard library only.

A workspace is a folder with ``.keel/`` in it, found by walking up from the
current directory like git. ``KEEL_HOME`` names the workspace folder directly.
``.keel/config.toml`` may point the metadata store and the object store
elsewhere (PostgreSQL, S3); ``KEEL_DB_URL`` and ``KEEL_STORE_URL`` override it.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass
from pathlib import Path

from keel.errors import InvalidInput, WorkspaceNotFound

__all__ = ["KEEL_DIR", "Settings", "find_workspace", "load_settings"]

KEEL_DIR = ".keel"


@dataclass(frozen=True)
class Settings:
    """Everything needed to open a workspace."""

    root: Path
    db_url: str
    store_url: str

    @property
    def keel_dir(self) -> Path:
        return self.root / KEEL_DIR

    @property
    def local_cache(self) -> Path:
        """Per-machine state (the stat cache) that never goes to a shared store."""
        return self.keel_dir / "cache"


def find_workspace(start: Path | None = None, env: dict[str, str] | None = None) -> Path:
    """Return the workspace folder: ``KEEL_HOME`` or the nearest parent with ``.keel/``."""
    env = dict(os.environ) if env is None else env
    home = env.get("KEEL_HOME")
    if home and start is None:
        root = Path(home).expanduser().resolve()
        if not (root / KEEL_DIR).is_dir():
            raise WorkspaceNotFound(
                f"KEEL_HOME={home} has no {KEEL_DIR}/ folder; run `keel init {home}`"
            )
        return root
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / KEEL_DIR).is_dir():
            return folder
    raise WorkspaceNotFound(
        f"no keel workspace in {here} or any parent folder; run `keel init` to make one"
    )


def load_settings(root: Path, env: dict[str, str] | None = None) -> Settings:
    """Read ``.keel/config.toml`` under ``root`` and apply environment overrides."""
    env = dict(os.environ) if env is None else env
    keel_dir = root / KEEL_DIR
    db_url = f"sqlite:///{keel_dir / 'keel.db'}"
    store_url = str(keel_dir / "objects")
    cfg_path = keel_dir / "config.toml"
    if cfg_path.exists():
        try:
            cfg = tomllib.loads(cfg_path.read_text())
        except tomllib.TOMLDecodeError as exc:
            raise InvalidInput(f"{cfg_path} is not valid TOML: {exc}") from exc
        unknown = set(cfg) - {"metadata", "objects"}
        if unknown:
            raise InvalidInput(
                f"{cfg_path}: unknown section(s) {sorted(unknown)}; expected 'metadata', 'objects'"
            )
        db_url = str(cfg.get("metadata", {}).get("url", db_url))
        store_url = str(cfg.get("objects", {}).get("url", store_url))
    db_url = env.get("KEEL_DB_URL", db_url)
    store_url = env.get("KEEL_STORE_URL", store_url)
    return Settings(root=root, db_url=db_url, store_url=store_url)
