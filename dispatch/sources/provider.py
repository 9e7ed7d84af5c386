"""The base of the HTTP data providers (weather, prices, carbon intensity).

Role: hold what every provider has, its HTTP client, last-good cache and clock, and wrap its
fetches in ``get_with_fallback`` under a per-provider cache key. May import only
``dispatch.sources.http``; does no I/O of its own.
"""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd

from dispatch.sources.http import Clock, Fetched, HttpClient, LastGoodCache, get_with_fallback

__all__ = ["HttpProvider"]


class HttpProvider:
    """What every HTTP data provider holds: a client, a last-good cache and a clock.

    Subclasses set ``name`` and fetch with ``self.client``; ``with_fallback`` wraps a fetch in
    ``get_with_fallback`` with this provider's cache and clock.

    Parameters
    ----------
    client : HttpClient, optional
        Timeouts and retries; a default one is made when omitted.
    cache : LastGoodCache, optional
        Where the last good answers are kept; a new one is made when omitted.
    clock : callable
        Returns the current UTC time (used for ages only).
    """

    name = "http"

    def __init__(
        self, client: HttpClient | None, cache: LastGoodCache | None, clock: Clock
    ) -> None:
        self.client = client or HttpClient()
        self.cache = cache or LastGoodCache()
        self.clock = clock

    def with_fallback(
        self,
        fetch: Callable[[], pd.DataFrame],
        key: str,
        allow_stale_s: float,
        start: pd.Timestamp | None = None,
        end: pd.Timestamp | None = None,
    ) -> Fetched:
        """``get_with_fallback(fetch, ...)`` under the cache key ``"<name>:<key>"``.

        ``key`` names the request without its time window; ``allow_stale_s`` (s), ``start``
        and ``end`` are as for ``get_with_fallback``.
        """
        return get_with_fallback(
            fetch, source=self.name, key=f"{self.name}:{key}", cache=self.cache,
            clock=self.clock, allow_stale_s=allow_stale_s, start=start, end=end,
        )
