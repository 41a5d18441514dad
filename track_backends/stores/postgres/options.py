"""The options of a ``postgresql://`` or ``cockroach://`` URI, checked once.

Store options: ``schema`` and ``prefix`` (the namespace of the tables), ``pool_min``,
``pool_max``, ``pool_timeout``, ``connect_timeout``, ``isolation`` (``read_committed``,
``repeatable_read`` or ``serializable``), ``max_retries`` (of transactions that hit a
serialization failure or deadlock), ``lock_timeout`` and ``statement_timeout`` (seconds) and
``prepare_threshold``. libpq's ``host``, ``options``, ``sslmode``, ``sslrootcert``, ``sslcert``,
``sslkey``, ``sslpassword``, ``application_name`` and ``target_session_attrs`` are passed on.

>>> from track_backends.uri import parse_uri
>>> o = Options.from_uri(parse_uri("postgresql://u:pw@db:5433/track?schema=s1&pool_max=8"))
>>> o.where, o.schema, o.pool_max, o.isolation, o.cockroach
('db:5433', 's1', 8, 'read_committed', False)
>>> "pw" in o.conninfo
False
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import psycopg

from ...errors import InvalidURIError
from ...uri import StoreURI

_PASSTHROUGH = (
    "sslmode",
    "sslrootcert",
    "sslcert",
    "sslkey",
    "sslpassword",
    "application_name",
    "target_session_attrs",
)
OPTIONS = frozenset(
    _PASSTHROUGH
    + (
        "host",
        "options",
        "connect_timeout",
        "pool_min",
        "pool_max",
        "pool_timeout",
        "isolation",
        "max_retries",
        "schema",
        "prefix",
        "lock_timeout",
        "statement_timeout",
        "prepare_threshold",
    )
)
"""Every query-string option a URI may carry."""

_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
_PREFIX_RE = re.compile(r"^[a-z0-9_]{0,30}$")
ISOLATIONS = {"read_committed": "read committed", "repeatable_read": "repeatable read", "serializable": "serializable"}
COCKROACH_SCHEMES = ("cockroach", "cockroachdb")


@dataclass(frozen=True)
class Options:
    """Checked options of one store.

    Attributes:
        conninfo: The libpq connection string, without the password (kept in ``password``).
        where: ``host:port``, for messages.
    """

    scheme: str
    cockroach: bool
    schema: str
    prefix: str
    connect_timeout: float
    pool_min: int
    pool_max: int
    pool_timeout: float
    max_retries: int
    isolation: str
    prepare_threshold: int
    where: str
    conninfo: str
    password: str | None

    @classmethod
    def from_uri(cls, uri: StoreURI) -> Options:
        """Check and collect the options of ``uri``.

        Raises:
            InvalidURIError: An unknown option, a bad name, isolation level, pool size or timeout.
        """
        uri.check_options(OPTIONS)
        cockroach = uri.scheme in COCKROACH_SCHEMES
        schema, prefix = uri.option("schema", "public"), uri.option("prefix", "")
        if not _NAME_RE.match(schema):
            raise InvalidURIError(f"schema={schema!r} in {uri.redacted}: use letters, digits and '_'")
        if not _PREFIX_RE.match(prefix):
            raise InvalidURIError(f"prefix={prefix!r} in {uri.redacted}: use lower-case letters, digits and '_'")
        connect_timeout = uri.option("connect_timeout", 5.0, float)
        pool_min, pool_max = uri.option("pool_min", 1, int), uri.option("pool_max", 4, int)
        iso = uri.option("isolation", "serializable" if cockroach else "read_committed").lower()
        if iso not in ISOLATIONS:
            raise InvalidURIError(f"isolation={iso!r} in {uri.redacted}: use one of {sorted(ISOLATIONS)}")
        if pool_min < 0 or pool_max < max(1, pool_min) or connect_timeout <= 0:
            raise InvalidURIError(f"bad pool or timeout options in {uri.redacted}")
        host = uri.host or uri.params.get("host") or "localhost"
        port = uri.port or (26257 if cockroach else 5432)
        return cls(
            scheme=uri.scheme,
            cockroach=cockroach,
            schema=schema,
            prefix=prefix,
            connect_timeout=connect_timeout,
            pool_min=pool_min,
            pool_max=pool_max,
            pool_timeout=uri.option("pool_timeout", 30.0, float),
            max_retries=uri.option("max_retries", 20, int),
            isolation=iso,
            prepare_threshold=uri.option("prepare_threshold", 5, int),
            where=f"{host}:{port}",
            conninfo=_conninfo(uri, host, port, connect_timeout, cockroach, iso),
            password=uri.password,
        )


def _conninfo(uri: StoreURI, host: str, port: int, connect_timeout: float, cockroach: bool, iso: str) -> str:
    """The libpq connection string: server, passed-on options and session settings."""
    kw: dict[str, Any] = {
        "host": host,
        "port": str(port),
        "dbname": uri.path.lstrip("/") or None,
        "user": uri.username or None,
        "connect_timeout": str(max(1, int(-(-connect_timeout // 1)))),
    }
    for name in _PASSTHROUGH:
        if name in uri.params:
            kw[name] = uri.params[name]
    options = [uri.params["options"]] if "options" in uri.params else []
    if not cockroach or iso != "serializable":
        options.append(f"-c default_transaction_isolation={ISOLATIONS[iso].replace(' ', chr(92) + ' ')}")
    for opt in ("lock_timeout", "statement_timeout"):
        if opt in uri.params:
            options.append(f"-c {opt}={int(uri.option(opt, 0.0, float) * 1000)}")
    if options:
        kw["options"] = " ".join(options)
    return psycopg.conninfo.make_conninfo(**{k: v for k, v in kw.items() if v is not None})
