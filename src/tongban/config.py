"""Settings, read from TONGBAN_* environment variables (and an optional .env file)."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class OidcProvider(BaseModel):
    """One external OpenID Connect provider (TONGBAN_OIDC_PROVIDERS)."""

    #: Short name in URLs (/login/oidc/<name>).
    name: str = Field(pattern=r"^[a-z0-9_-]{1,32}$")
    #: What the login button says.
    label: str = "统一身份认证平台"
    #: The issuer identifier; its /.well-known/openid-configuration is read.
    issuer: str
    client_id: str
    client_secret: str = ""
    #: This node's callback, registered with the provider.
    redirect_url: str
    #: The ID-token (or userinfo) claim carrying the GB 11643 ID number.
    id_number_claim: str = "id_number"
    #: The level a login through this provider proves.
    level: Literal["oidc_verified"] = "oidc_verified"
    scopes: str = "openid profile"
    #: Ask for the ID number in the ID token with the `claims` request parameter (OpenID
    #: Connect Core 5.5); false for a provider without it, which then must answer the
    #: claim at its userinfo endpoint for a scope in `scopes`.
    claims_parameter: bool = True
    #: Signature algorithms accepted for ID tokens (never "none" or HMAC).
    algorithms: list[Literal["RS256", "PS256", "ES256", "EdDSA"]] = ["RS256", "ES256", "EdDSA"]
    #: How the client authenticates at the token endpoint.
    token_auth: Literal["client_secret_basic", "client_secret_post"] = "client_secret_basic"
    #: Seconds of clock difference accepted on exp/iat.
    leeway: int = Field(default=60, ge=0, le=600)
    #: A CA bundle (PEM) to trust for this provider's TLS certificate instead of the
    #: system's (a provincial platform behind a government CA).
    ca_file: str | None = None


class TicketSettings(BaseSettings):
    """Settings of the tickets context (TONGBAN_TICKETS_* environment variables); a
    node's are `Settings.tickets` (tickets.config.ticket_settings(session))."""

    model_config = SettingsConfigDict(
        env_prefix="TONGBAN_TICKETS_", env_file=".env", extra="ignore"
    )

    #: A location within this many metres of another jurisdiction makes a joint work order.
    border_metres: float = 500.0
    #: A new report within this many metres of an open one of the same category is
    #: offered for merging.
    duplicate_metres: float = 150.0
    #: Area polygons (GeoJSON FeatureCollection); unset: the shipped synthetic ones.
    geojson_path: Path | None = None
    #: Category taxonomy (JSON); unset: the shipped data/categories.json.
    categories_path: Path | None = None
    #: Working hours, local time (Asia/Shanghai), for deadlines counted in hours.
    workday_start: str = "09:00"
    workday_end: str = "17:00"
    #: A reminder goes out once no more than this share of the allotted time is left.
    warn_fraction: float = 0.25
    #: Overdue by more than this many working hours: escalated from the authority's head
    #: to the supervisor.
    supervisor_after_hours: int = 8
    #: Working days the reporter has to give feedback before the work order closes itself.
    feedback_days: int = 3
    #: A grid cell (about 1 km) with at least this many work orders of one category in
    #: `hotspot_days` days is a hot spot.
    hotspot_min: int = 3
    hotspot_days: int = 90
    #: Seconds between runs of the reminder/escalation job.
    job_interval: float = 300.0


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
    #: Largest request body accepted, in bytes (413 above it); always kept above
    #: `max_upload_bytes` (raised to it plus 1 MiB), so a full upload and its form fit.
    max_body_bytes: int = 32 * 1024 * 1024
    #: The node this process runs as; the embedded default serves every jurisdiction.
    node_id: str = "local"
    #: Jurisdiction codes this node serves, comma-separated; "*" serves them all.
    served_jurisdictions: str = "*"
    #: Run the background worker in-process beside `tongban serve`.
    embedded_worker: bool = True
    #: Seconds between worker polls.
    worker_interval: float = 1.0
    #: At the app's start-up, collect once and move every object then alive (modules,
    #: mappings, routes, reference data) out of the cyclic garbage collector's reach
    #: (`gc.freeze()`), so its full collections walk only what requests create.
    gc_freeze: bool = True
    #: Cookies only over HTTPS (set in production behind TLS).
    secure_cookies: bool = False
    #: Sign-in throttling, never a lock of the account: failures are counted per
    #: (username, client) and per client; past the free failures each further one makes
    #: that pair (or that client) wait `login_delay_seconds`, doubling up to
    #: `login_max_delay_seconds` (429 with Retry-After). Counts restart after
    #: `login_window_minutes` without a failure.
    login_free_failures: int = Field(default=5, ge=1)
    login_client_free_failures: int = Field(default=30, ge=1)
    login_delay_seconds: float = Field(default=2.0, gt=0)
    login_max_delay_seconds: float = Field(default=900.0, gt=0)
    login_window_minutes: int = Field(default=30, ge=1)
    #: Web sessions (server-side, revocable): ended after this many idle minutes and at
    #: the latest this many minutes after sign-in.
    session_idle_minutes: int = Field(default=30, ge=1)
    session_max_minutes: int = Field(default=8 * 60, ge=1)
    #: Working days before the deadline at which an open case is flagged as approaching.
    deadline_warning_days: int = 2
    #: Signature suite of newly generated keys: EdDSA (Ed25519) or SM2 (SM2 with SM3).
    signature_alg: Literal["EdDSA", "SM2"] = "EdDSA"
    #: Encrypts the private keys stored in this node's database (PKCS#8); unset stores
    #: them unencrypted, which is fine only where the database itself is protected.
    key_passphrase: str | None = None
    #: Hash of new audit chain entries: sha-256 or sm3 (recorded per entry, so a change
    #: applies from the next entry on and the older ones still verify).
    audit_hash: Literal["sha-256", "sm3"] = "sha-256"
    #: Seconds between signed audit checkpoints made by the worker (when there are new
    #: entries).
    audit_checkpoint_seconds: float = 300.0
    #: The federation's name as residents know it (pages, API title): reference data of a
    #: deployment, not of the code.
    federation_name: str = "长三角"
    #: Public base URL of this node: issuer ids (<url>/issuers/<jurisdiction>) and
    #: status-list URIs of the licences it issues are built from it.
    public_url: str = "http://127.0.0.1:8000"
    #: Where `tongban trust sync` keeps the trust list and status lists for offline
    #: verification (`tongban licence verify`).
    trust_cache: Path = Path("var/trust-cache")
    #: Licence presentations: does a verifier require holder binding (a KB-JWT by the
    #: device key in the licence's `cnf`) unless it says otherwise; may a verifier accept
    #: an unbound (bearer) presentation at all; how old a time-window KB-JWT may be (s).
    licence_require_binding: bool = False
    licence_allow_unbound: bool = True
    licence_kb_window: int = Field(default=300, ge=30, le=86_400)
    #: Federation file (TOML) naming every node; unset = one embedded node serving "*".
    #: `tongban serve --node ID` takes node_id and served_jurisdictions from it.
    federation_file: Path | None = None
    #: Delivery attempts before a message goes to the dead-letter list.
    exchange_max_attempts: int = 8
    #: Seconds between delivery attempts, by attempt number (the last one repeats).
    exchange_backoff: str = "1,5,30,120,600"
    #: Accepted clock difference for a signed message's `created` (seconds, ±).
    exchange_max_skew: int = 300
    #: HTTP timeout for one delivery to another node (seconds).
    exchange_timeout: float = 10.0
    #: Messages one dispatcher pass keeps on the wire at once (threads); messages about
    #: the same case / work order / jurisdiction still go one after another. 1 = one at
    #: a time.
    exchange_concurrency: int = Field(default=8, ge=1, le=64)
    #: Deadline of one synchronous query to another node, in milliseconds (what a person
    #: waits for at a counter: eligibility, the reservation of medical accumulators).
    query_timeout_ms: int = Field(default=2000, ge=10, le=60_000)
    #: How long the insured node keeps a reservation of medical accumulators waiting for
    #: the hospital's confirmation before its worker asks the hospital's node what became
    #: of it, in seconds (far longer than a settlement request takes).
    medical_reservation_ttl_seconds: int = Field(default=600, ge=10, le=86_400)
    #: Where an officer's evidence request is answered at once, as a synchronous query
    #: (`evidence.lookup`) within TONGBAN_QUERY_TIMEOUT_MS, instead of an exchange
    #: message answered later: "off" (never, the default), "on" (every provider), or a
    #: comma-separated list of provider jurisdiction codes (e.g. "320000,340000"). A
    #: provider that is down or slow is asked by message instead.
    evidence_sync: str = Field(default="off", pattern=r"^(off|on|[0-9]{6}(,[0-9]{6})*)$")
    #: Virtual window (docs/virtual-window.md): TURN servers the browsers relay media
    #: through when no direct path exists (comma-separated `turn:`/`turns:` URLs; none on
    #: a LAN or loopback), and coturn's `static-auth-secret`, from which each room page
    #: gets credentials valid for `vw_turn_ttl_seconds` (coturn's TURN REST API scheme).
    vw_turn_urls: str = ""
    vw_turn_secret: str = ""
    vw_turn_ttl_seconds: int = Field(default=3600, ge=60, le=86_400)
    #: Virtual window media recording on this node's counters (off by default): the
    #: clerk's browser records the counter's camera and microphone and uploads a chunk
    #: every few seconds; each chunk is kept here under upload_dir/vw-recordings and its
    #: SHA-256 recorded as an event of the session on the competent node (sealed in its
    #: audit chain). Chunks older than `vw_recording_retention_days` are deleted by a job
    #: (their hashes stay); a chunk above `vw_recording_max_chunk_bytes` is refused.
    vw_recording: bool = False
    vw_recording_retention_days: int = Field(default=30, ge=1, le=3650)
    vw_recording_max_chunk_bytes: int = Field(default=8 * 1024 * 1024, ge=1024, le=64 * 1024**2)
    #: OpenID Connect providers residents may sign in with to prove their identity (a
    #: provincial unified identity platform), as a JSON list; none by default. Each:
    #: {"name": "zjzwfw", "label": "浙里办", "issuer": "https://…", "client_id": "…",
    #: "client_secret": "…", "redirect_url": "<public url>/login/oidc/zjzwfw/callback",
    #: "id_number_claim": "id_number", "level": "oidc_verified"}
    #: (see identity.oidc.OidcProvider for the optional fields).
    oidc_providers: list[OidcProvider] = []
    #: The tickets context's settings (TONGBAN_TICKETS_*).
    tickets: TicketSettings = Field(default_factory=TicketSettings)
    #: Notifications (docs/notifications.md): the SMTP server e-mail is sent through
    #: (unset: no e-mail channel is offered), its port, TLS (``starttls`` upgrades a
    #: plain connection, ``ssl`` connects over TLS), login, and the sender address.
    notify_smtp_host: str | None = None
    notify_smtp_port: int = Field(default=25, ge=1, le=65535)
    notify_smtp_tls: Literal["none", "starttls", "ssl"] = "none"
    notify_smtp_user: str | None = None
    notify_smtp_password: str | None = None
    notify_email_from: str = "tongban@localhost"
    #: The SMS gateway: ``log`` writes each text message to the log only (the default,
    #: until a deployment plugs in its operator); ``webhook`` POSTs JSON {"phone", "text",
    #: "id"} to notify_sms_webhook_url with the bearer token notify_sms_webhook_token.
    notify_sms_gateway: Literal["log", "webhook"] = "log"
    notify_sms_webhook_url: str | None = None
    notify_sms_webhook_token: str | None = None
    #: Seconds before each retry of a failed delivery, the last repeating (never given up).
    notify_backoff: str = Field(
        default="30,120,600,3600", pattern=r"^\s*[1-9]\d*(\s*,\s*[1-9]\d*)*\s*$"
    )
    #: Timeout of one SMTP or webhook delivery (seconds) and deliveries per worker pass.
    notify_timeout: float = Field(default=10.0, gt=0, le=120)
    notify_batch: int = Field(default=50, ge=1, le=1000)


def get_settings() -> Settings:
    """The process's settings, read from the environment (and .env) now. Called once, at
    an entry point (`tongban`'s main callback, `serve`, `worker`), which builds the node
    from them and passes that on; nothing below an entry point calls it (services read
    `kernel.node.settings_of(session)`), so it keeps no cache."""
    return Settings()
