"""TLS to Redis: ``rediss://`` URLs for the store and the broker, checked as the URL says.

A managed Redis on a PaaS hands out ``rediss://`` URLs; Heroku's presents a self-signed
certificate, to be accepted with ``ssl_cert_reqs=none``. The certificate options live in the
URL's query, named as redis-py names them: ``ssl_cert_reqs=none|optional|required``,
``ssl_ca_certs``, ``ssl_certfile``, ``ssl_keyfile``, ``ssl_check_hostname=true|false``.

redis-py (the store, the command line, the workers' lease keeper) reads them from the URL,
and so does kombu, Celery's Redis transport; but where the URL names no ``ssl_cert_reqs``,
redis-py checks the certificate and kombu does not. The settings therefore make it explicit
in every ``rediss://`` URL (``required`` unless configured otherwise), so that each client
checks the server alike and no ``broker_use_ssl`` is needed.
"""

from typing import Literal, get_args
from urllib.parse import parse_qsl, urlsplit, urlunsplit

CertReqs = Literal["none", "optional", "required"]
CERT_REQS: tuple[str, ...] = get_args(CertReqs)
#: What the check of a boolean option accepts: both redis-py and kombu read these alike.
BOOLEANS = ("true", "false")
TLS_SCHEME = "rediss"
REDIS_SCHEMES = ("redis", TLS_SCHEME)


def with_tls_options(url: str, cert_reqs: CertReqs, *, name: str = "REDIS_URL") -> str:
    """``url`` with ``ssl_cert_reqs=<cert_reqs>`` added where a ``rediss://`` URL names none.

    Raises ValueError, naming the setting but never the URL (it holds a password), for
    certificate options that the clients would refuse or read differently.
    """
    parts = urlsplit(url)
    if parts.scheme not in REDIS_SCHEMES:
        return url  # another broker (amqp://...): its options are its own
    options = dict(parse_qsl(parts.query))
    tls_options = sorted(key for key in options if key.startswith("ssl_"))
    if parts.scheme != TLS_SCHEME:
        if tls_options:
            raise ValueError(
                f"{name}: {', '.join(tls_options)} needs a rediss:// URL (TLS); "
                "this one is redis://"
            )
        return url
    given = options.get("ssl_cert_reqs")
    if given is not None and given not in CERT_REQS:
        raise ValueError(
            f"{name}: ssl_cert_reqs must be one of {', '.join(CERT_REQS)}, not {given!r}"
        )
    check_hostname = options.get("ssl_check_hostname")
    if check_hostname is not None and check_hostname not in BOOLEANS:
        raise ValueError(
            f"{name}: ssl_check_hostname must be true or false, not {check_hostname!r}"
        )
    if given is not None:
        return url
    query = f"{parts.query}&" if parts.query else ""
    return urlunsplit(parts._replace(query=f"{query}ssl_cert_reqs={cert_reqs}"))
