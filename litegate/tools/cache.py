"""SearchCache: recent search results kept in memory for a while, so a model repeating itself
(or several clients asking the same thing) costs one backend call.

Owned by the app (one instance under an AppKey), never a module global. Keys are
(backend, normalised query, num); `backend` is whatever label the caller chooses, so folding the
region/language or the backend address into it keeps their results apart. Only successes are
stored. The clock is injectable so tests need no sleeps.

With shared state (litegate.state, Redis) `lookup` and `remember` also read and write the team's
copy, so a search one instance paid for serves them all; a miss here that the team has is kept
here too. `get` and `put` stay this process's own.
"""

from __future__ import annotations

import hashlib
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any

import msgspec

from litegate.tools.search import SearchResult

Key = tuple[str, str, int]


def normalise(query: str) -> str:
    """Case and spacing do not change what a search engine returns."""
    return " ".join(query.casefold().split())


class SearchCache:
    """TTL + LRU: an entry lives the ttl_s it was put with; beyond max_entries the least recently
    used goes. A ttl_s <= 0 stores nothing; max_entries <= 0 turns the cache off."""

    def __init__(self, max_entries: int, *, clock: Callable[[], float] = time.monotonic, shared: Any = None) -> None:
        self.max_entries = max_entries
        self._clock = clock
        self._items: OrderedDict[Key, tuple[float, tuple[SearchResult, ...]]] = OrderedDict()
        self.shared = shared  # a state backend (get/put of bytes), or None

    async def lookup(self, backend: str, query: str, num: int, *, ttl_s: float) -> list[SearchResult] | None:
        """This process's entry, else the team's (kept here for the rest of ttl_s)."""
        found = self.get(backend, query, num)
        if found is not None or self.shared is None or ttl_s <= 0:
            return found
        raw = await self.shared.get("search", _name(self.key(backend, query, num)))
        if raw is None:
            return None
        try:
            results = msgspec.json.decode(raw, type=list[SearchResult])
        except msgspec.DecodeError:
            return None
        self.put(backend, query, num, results, ttl_s=ttl_s)
        return results

    async def remember(self, backend: str, query: str, num: int, results: Sequence[SearchResult], *,
                       ttl_s: float) -> None:
        self.put(backend, query, num, results, ttl_s=ttl_s)
        if self.shared is not None and ttl_s > 0 and self.max_entries > 0:
            await self.shared.put("search", _name(self.key(backend, query, num)), msgspec.json.encode(list(results)),
                                  ttl_s)

    @staticmethod
    def key(backend: str, query: str, num: int) -> Key:
        return (backend, normalise(query), num)

    def get(self, backend: str, query: str, num: int) -> list[SearchResult] | None:
        k = self.key(backend, query, num)
        hit = self._items.get(k)
        if hit is None:
            return None
        if hit[0] <= self._clock():
            del self._items[k]
            return None
        self._items.move_to_end(k)
        return list(hit[1])

    def put(self, backend: str, query: str, num: int, results: Sequence[SearchResult], *, ttl_s: float) -> None:
        if ttl_s <= 0 or self.max_entries <= 0:
            return
        k = self.key(backend, query, num)
        self._items[k] = (self._clock() + ttl_s, tuple(results))
        self._items.move_to_end(k)
        self._evict()

    def _evict(self) -> None:
        if len(self._items) <= self.max_entries:
            return
        now = self._clock()
        for k in [k for k, (expires, _) in self._items.items() if expires <= now]:
            del self._items[k]
        while len(self._items) > self.max_entries:
            self._items.popitem(last=False)

    def __len__(self) -> int:
        return len(self._items)


def _name(key: Key) -> str:
    """A cache key as one Redis-safe name (the query may hold any character)."""
    return hashlib.sha256(msgspec.json.encode(key)).hexdigest()
