"""Settings, read from TONGBAN_* environment variables (and an optional .env file)."""

from __future__ import annotations

import secrets
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TONGBAN_", env_file=".env", extra="ignore")

    #: SQLAlchemy URL. SQLite is the embedded default; production uses
    #: postgresql+psycopg://user:pass@host/db
    database_url: str = "sqlite:///var/tongban.db"
    #: Signs session cookies. Generated per process when unset, which logs
    #: everybody out on restart: set it in any real deployment.
    secret_key: str = Field(default_factory=lambda: secrets.token_urlsafe(32))
    #: Where uploaded materials are stored (outside the web root), by content hash.
    upload_dir: Path = Path("var/uploads")
    #: Largest upload accepted, in bytes.
    max_upload_bytes: int = 10 * 1024 * 1024
    #: The node this process runs as; the embedded default serves every jurisdiction.
    node_id: str = "local"
    #: Jurisdiction codes this node serves, comma-separated; "*" serves them all.
    served_jurisdictions: str = "*"
    #: Run the background worker in-process beside `tongban serve`.
    embedded_worker: bool = True
    #: Seconds between worker polls.
    worker_interval: float = 1.0
    #: Cookies only over HTTPS (set in production behind TLS).
    secure_cookies: bool = False
    #: Failed logins before an account is locked for `login_lock_minutes`.
    login_max_failures: int = 5
    login_lock_minutes: int = 15
    #: Working days before the deadline at which an open case is flagged as approaching.
    deadline_warning_days: int = 2
    #: Signature suite of newly generated keys: EdDSA (Ed25519) or SM2 (SM2 with SM3).
    signature_alg: Literal["EdDSA", "SM2"] = "EdDSA"
    #: Encrypts the private keys stored in this node's database (PKCS#8); unset stores
    #: them unencrypted, which is fine only where the database itself is protected.
    key_passphrase: str | None = None


@lru_cache
def get_settings() -> Settings:
    return Settings()
