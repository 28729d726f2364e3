"""A lease in Redis: which one of several processes runs a periodic job (the sessions sweep).

``hold()`` takes the lease when nobody holds it (``SET NX PX`` with this holder's random token) or
renews it when this holder already does; it is True only for the holder. The lease lapses ``ttl``
after the holder's last renewal, so a holder that dies or stalls is replaced by another process;
``release()`` gives it up at once on a clean shutdown. Renewal and release compare the token in
one script, so a holder whose lease lapsed and was taken never renews or deletes the new one.

A lease is an optimisation, not the guarantee: jobs run under one stay correct when two processes
overlap for a moment (the sweep's conditional updates and row locks change each session once).
"""

from __future__ import annotations

import logging
import uuid

from redis import exceptions as redis_errors
from redis.asyncio import Redis

log = logging.getLogger(__name__)

_HOLD = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return 1 end
return 0
"""

_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class RedisLease:
    def __init__(self, redis: Redis, key: str, ttl: float) -> None:
        if ttl <= 0:
            raise ValueError("a lease needs a positive ttl")
        self.key = key
        self.token = uuid.uuid4().hex
        self._ttl_ms = str(max(1, int(ttl * 1000)))
        self._hold = redis.register_script(_HOLD)
        self._release = redis.register_script(_RELEASE)
        self._held = False

    async def hold(self) -> bool:
        """Take or renew the lease; False when another process holds it or Redis is down."""
        try:
            held = bool(await self._hold(keys=[self.key], args=[self.token, self._ttl_ms]))
        except (redis_errors.ConnectionError, redis_errors.TimeoutError) as exc:
            log.warning("lease not renewed key=%s: %s", self.key, exc)
            held = False
        if held != self._held:
            log.info("lease %s key=%s", "taken" if held else "lost", self.key)
        self._held = held
        return held

    async def release(self) -> None:
        """Give the lease up if this holder still has it (idempotent)."""
        if not self._held:
            return
        self._held = False
        try:
            await self._release(keys=[self.key], args=[self.token])
            log.info("lease released key=%s", self.key)
        except (redis_errors.ConnectionError, redis_errors.TimeoutError) as exc:
            log.warning("lease not released key=%s: %s", self.key, exc)
