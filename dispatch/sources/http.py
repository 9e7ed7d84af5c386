"""HTTP plumbing shared by every provider: timeouts, bounded retries, the last-good cache.

Role: the one home of the HTTP client (``requests``) in the package. ``HttpClient.get_json``
makes one GET with connect and read timeouts, retries connection errors, timeouts, HTTP 5xx and
429 with exponential back-off (bounded count, injectable ``sleep``), and turns every failure into
a ``SourceError`` naming the provider, the URL (secrets removed) and the cause. ``LastGoodCache``
and ``get_with_fallback`` keep the last good answer of each provider with its fetch time, so a
caller can keep planning on stale-but-known data and say so.

May import only ``dispatch.types`` and ``dispatch.sources.frames``. Reads no clock of its own:
``utc_now`` is only the default of the injectable ``clock`` arguments.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import pandas as pd
import requests

from dispatch.sources.frames import in_window
from dispatch.types import DispatchError, SourceError

Clock = Callable[[], pd.Timestamp]
log = logging.getLogger(__name__)

_SECRET_WORDS = ("key", "token", "secret", "password", "auth")
_BODY_SNIPPET_CHARS = 200


def utc_now() -> pd.Timestamp:
    """The current time as a tz-aware UTC timestamp (the default ``clock``)."""
    return pd.Timestamp.now(tz="UTC")


def safe_url(url: str, params: Mapping[str, Any] | None = None) -> str:
    """``url`` with its query, values of secret-looking parameters replaced by ``***``.

    Parameters
    ----------
    url : str
        Base URL without query.
    params : mapping, optional
        Query parameters.

    Returns
    -------
    str
        A URL fit for logs and error messages.
    """
    if not params:
        return url
    shown = {
        k: "***" if any(w in k.lower() for w in _SECRET_WORDS) else v for k, v in params.items()
    }
    return f"{url}?{urlencode(shown, safe=',:')}"


@dataclass(frozen=True)
class RetryPolicy:
    """Timeouts and retry schedule of one HTTP GET.

    Parameters
    ----------
    connect_timeout_s : float
        Time allowed to open the connection (s).
    read_timeout_s : float
        Time allowed between bytes of the answer (s).
    attempts : int
        Total tries, first one included (>= 1).
    backoff_s : float
        Wait before the second try (s); doubled before each further try.
    backoff_max_s : float
        Upper bound of any wait (s), also of a server's ``Retry-After``.
    """

    connect_timeout_s: float = 3.05
    read_timeout_s: float = 10.0
    attempts: int = 4
    backoff_s: float = 0.5
    backoff_max_s: float = 8.0

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError(f"attempts = {self.attempts} must be >= 1")
        if min(self.connect_timeout_s, self.read_timeout_s) <= 0 or self.backoff_s < 0:
            raise ValueError("timeouts must be > 0 and backoff_s >= 0")

    def delay_s(self, failed_tries: int, retry_after_s: float | None = None) -> float:
        """Wait (s) after ``failed_tries`` failures: exponential, at least ``Retry-After``."""
        delay = self.backoff_s * 2.0 ** (failed_tries - 1)
        if retry_after_s is not None:
            delay = max(delay, retry_after_s)
        return min(delay, self.backoff_max_s)


class _TransientError(Exception):
    """A failure worth another try; ``cause`` is the text for the final error."""

    def __init__(self, cause: str, retry_after_s: float | None = None) -> None:
        super().__init__(cause)
        self.cause = cause
        self.retry_after_s = retry_after_s


def _retry_after(resp: requests.Response) -> float | None:
    value = resp.headers.get("Retry-After")
    try:
        return float(value) if value is not None else None
    except ValueError:  # an HTTP date: fall back to our own schedule
        return None


class HttpClient:
    """GET JSON with timeouts and bounded, backed-off retries.

    Parameters
    ----------
    policy : RetryPolicy, optional
        Timeouts and retry schedule; the defaults suit a planning job.
    session : requests.Session, optional
        Connection pool to use; a new one is made when omitted.
    sleep : callable, optional
        ``sleep(seconds)``, replaced in tests to run without waiting.
    """

    def __init__(
        self,
        policy: RetryPolicy | None = None,
        *,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.policy = policy or RetryPolicy()
        self.session = session or requests.Session()
        self.sleep = sleep

    def close(self) -> None:
        """Close the pooled connections."""
        self.session.close()

    def get_json(
        self,
        provider: str,
        url: str,
        *,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Any:
        """GET ``url`` and decode its JSON body.

        Parameters
        ----------
        provider : str
            Name used in error messages, e.g. ``"open-meteo"``.
        url : str
            Endpoint without query.
        params : mapping, optional
            Query parameters (secret-looking ones are hidden in messages).
        headers : mapping, optional
            Request headers, e.g. an ``auth-token`` (never shown in messages).

        Returns
        -------
        Any
            The decoded JSON document.

        Raises
        ------
        SourceError
            After the last try of a transient failure (timeout, connection error, HTTP 5xx or
            429), at once on any other HTTP status, and on a body that is not JSON.
        """
        shown = safe_url(url, params)
        p = self.policy
        for attempt in range(1, p.attempts + 1):
            try:
                return self._once(provider, url, shown, params, headers)
            except _TransientError as exc:
                if attempt == p.attempts:
                    raise SourceError(
                        f"{provider}: GET {shown} failed after {attempt} tries: {exc.cause}"
                    ) from None
                delay = p.delay_s(attempt, exc.retry_after_s)
                log.info("%s: %s; try %d of %d in %.2f s", provider, exc.cause, attempt + 1,
                         p.attempts, delay)
                self.sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover

    def _once(
        self,
        provider: str,
        url: str,
        shown: str,
        params: Mapping[str, Any] | None,
        headers: Mapping[str, str] | None,
    ) -> Any:
        p = self.policy
        try:
            resp = self.session.get(
                url, params=params, headers=dict(headers or {}),
                timeout=(p.connect_timeout_s, p.read_timeout_s),
            )
        except requests.Timeout as exc:
            kind = "connect" if isinstance(exc, requests.ConnectTimeout) else "read"
            limit = p.connect_timeout_s if kind == "connect" else p.read_timeout_s
            raise _TransientError(f"timeout ({kind} timeout {limit:g} s)") from None
        except requests.ConnectionError as exc:
            raise _TransientError(f"connection error: {type(exc).__name__}") from None
        except requests.RequestException as exc:
            raise SourceError(f"{provider}: GET {shown} failed: {exc}") from None
        if resp.status_code >= 500 or resp.status_code == 429:
            raise _TransientError(f"HTTP {resp.status_code} {resp.reason}", _retry_after(resp))
        if resp.status_code != 200:
            body = resp.text[:_BODY_SNIPPET_CHARS].strip()
            raise SourceError(
                f"{provider}: GET {shown} failed: HTTP {resp.status_code} {resp.reason}: {body!r}"
            )
        try:
            return resp.json()
        except ValueError as exc:
            raise SourceError(f"{provider}: GET {shown}: malformed JSON: {exc}") from None


@contextmanager
def answer_shape(what: str) -> Iterator[None]:
    """Turn a parser's surprise at an odd answer (wrong types, nesting) into a ``SourceError``.

    Parameters
    ----------
    what : str
        Provider and URL for the message.
    """
    try:
        yield
    except (TypeError, ValueError, KeyError, IndexError, AttributeError) as exc:
        raise SourceError(
            f"{what}: unexpected answer shape: {type(exc).__name__}: {exc}"
        ) from None


@dataclass(frozen=True)
class Fetched:
    """A provider's answer with its provenance.

    Parameters
    ----------
    data : pandas.DataFrame
        UTC period-start indexed, unit-suffixed columns.
    fetched_at : pandas.Timestamp
        When the provider gave this answer (UTC).
    age_s : float
        Age of the answer at the time of the call (s); 0 for a fresh answer.
    stale : bool
        True when the provider failed and this is the cached last good answer.
    source : str
        Provider name.
    error : str, optional
        The failure that made a stale answer necessary.
    """

    data: pd.DataFrame
    fetched_at: pd.Timestamp
    age_s: float
    stale: bool
    source: str
    error: str | None = None


class LastGoodCache:
    """The last good answer per request key, with its fetch time.

    One instance lives with its owner (the daemon's composition root); nothing is held at module
    level.
    """

    def __init__(self) -> None:
        self._entries: dict[str, tuple[pd.DataFrame, pd.Timestamp]] = {}

    def put(self, key: str, data: pd.DataFrame, fetched_at: pd.Timestamp) -> None:
        """Remember ``data`` as the last good answer for ``key``."""
        self._entries[key] = (data, fetched_at)

    def get(self, key: str) -> tuple[pd.DataFrame, pd.Timestamp] | None:
        """The last good answer for ``key`` and its fetch time, or None."""
        return self._entries.get(key)


def get_with_fallback(
    fetch: Callable[[], pd.DataFrame],
    *,
    source: str,
    key: str,
    cache: LastGoodCache,
    clock: Clock = utc_now,
    allow_stale_s: float = 0.0,
    start: pd.Timestamp | None = None,
    end: pd.Timestamp | None = None,
) -> Fetched:
    """Call ``fetch``; on failure fall back to the cached last good answer if young enough.

    Parameters
    ----------
    fetch : callable
        Returns a fresh frame or raises ``DispatchError`` (usually ``SourceError``).
    source : str
        Provider name for the result and messages.
    key : str
        Cache key: the request without its time window.
    cache : LastGoodCache
        Where good answers are kept.
    clock : callable
        Returns the current UTC time; the fetch time and ages come from it.
    allow_stale_s : float
        Oldest cached answer (s) accepted when ``fetch`` fails; 0 disables the fallback.
    start, end : pandas.Timestamp, optional
        The requested window; a stale answer is cut to ``[start, end)`` and must keep a row.

    Returns
    -------
    Fetched
        Fresh (``stale=False``, ``age_s=0``) or the cached answer (``stale=True``).

    Raises
    ------
    SourceError
        When ``fetch`` fails and no cached answer is young enough or covers the window; the
        message gives the provider's failure and the cache's state.
    """
    try:
        data = fetch()
    except DispatchError as exc:
        return _stale(exc, source, key, cache, clock(), allow_stale_s, start, end)
    now = clock()
    cache.put(key, data, now)
    return Fetched(data=data, fetched_at=now, age_s=0.0, stale=False, source=source)


def _stale(
    exc: DispatchError,
    source: str,
    key: str,
    cache: LastGoodCache,
    now: pd.Timestamp,
    allow_stale_s: float,
    start: pd.Timestamp | None,
    end: pd.Timestamp | None,
) -> Fetched:
    entry = cache.get(key)
    if entry is None:
        raise SourceError(f"{exc} (no cached answer to fall back on)") from exc
    data, fetched_at = entry
    age_s = (now - fetched_at).total_seconds()
    if age_s > allow_stale_s:
        raise SourceError(
            f"{exc} (cached answer from {fetched_at.isoformat()} is {age_s:.0f} s old, "
            f"more than allow_stale_s = {allow_stale_s:g})"
        ) from exc
    cut = in_window(data, start, end)
    if cut.empty:
        raise SourceError(f"{exc} (cached answer does not cover {start} .. {end})") from exc
    log.warning("%s failed; planning on its last good answer, %.0f s old: %s", source, age_s, exc)
    return Fetched(cut, fetched_at, age_s, stale=True, source=source, error=str(exc))
