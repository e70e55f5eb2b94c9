"""Presence across every instance sharing one Redis.

Keys (``prefix`` is ``gortc:presence`` by default):

- ``<prefix>:user:<user_id>``: a hash, field = instance id, value = that
  instance's connections of the user. An instance deletes its field when its
  count reaches zero, and Redis deletes the hash when no field is left.
- ``<prefix>:instance:<instance_id>``: the instance's heartbeat, a string
  with a TTL (``ttl``, 15 s by default) refreshed every ``heartbeat_interval``
  (a third of the TTL) and with every write.

Fields of an instance without a heartbeat belong to an instance that died:
every write skips them in the total and deletes them while it is at it, so a
crashed instance keeps its users online for at most ``ttl`` (and, for a user
nobody touches again, leaves one ignored field behind).

Each write is one Lua script (``_UPDATE``) that sets this instance's field to
its current local count and returns the total of the *other* live instances.
The answer combines both: ``connected`` is True when the local count went
0 → 1 and the others have none, ``disconnected`` when it went 1 → 0 and the
others have none. Redis runs scripts one at a time, so when two instances race
for the same user exactly one of them sees the other's field missing.

The script writes the absolute local count, never a delta. Together with one
writer task that sends the writes in order (batched in a pipeline), and that
reads the local count when it sends rather than when the call was made, this
makes Redis end up with exactly the local counts whatever interleaves; and
re-registering after an outage is the same write again, not a sum that could
count a connection twice.

Redis unreachable: ``connected`` and ``disconnected`` never raise and never
wait long; they answer from this instance's counts (as ``LocalPresence``
would) until Redis answers again, which is logged once each way. Then the
instance rewrites all its fields from its local counts (and deletes those of
users who left meanwhile): Redis may have restarted empty, or other instances
may have deleted the fields once the heartbeat lapsed. The same happens
whenever a heartbeat refresh finds the heartbeat gone (a stalled event loop),
even without a noticed outage.

Who is online now (``online``, for member lists) is one read-only script
per batch of users (``_ONLINE``), all in one pipeline: a user is online when
this instance counts a connection of theirs or another instance with a live
heartbeat has a field for them (the same rule as the writes; the read leaves
dead fields for the writes to delete). During an outage, or when Redis does
not answer within ``command_timeout``, the answer is this instance's counts.

What stays best effort: during an outage every instance answers for itself,
so a user connected on two instances is announced online (and offline) by
both; and users that another instance took offline because this one's
heartbeat lapsed come back without an announcement.

The script reads heartbeat keys it is not given in ``KEYS``: that is fine on
one Redis server (or a primary with replicas), not on Redis Cluster.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import uuid
from collections import Counter
from collections.abc import Callable, Collection, Iterable
from datetime import UTC, datetime

from redis.asyncio import Redis
from redis.exceptions import RedisError

from gortc.hub.redis_support import (
    Backoff,
    client_from_url,
    describe_failure,
    reraise_if_cancelled,
)

log = logging.getLogger(__name__)

# KEYS[1]: the user's hash. ARGV[1]: this instance's id, ARGV[2]: its count
# for the user now, ARGV[3]: the heartbeat key prefix (heartbeat = prefix .. id).
# Returns the connections of the user on the other live instances.
_UPDATE = """
local others = 0
local fields = redis.call('HGETALL', KEYS[1])
for i = 1, #fields, 2 do
  local instance = fields[i]
  if instance ~= ARGV[1] then
    if redis.call('EXISTS', ARGV[3] .. instance) == 1 then
      others = others + (tonumber(fields[i + 1]) or 0)
    else
      redis.call('HDEL', KEYS[1], instance)
    end
  end
end
if tonumber(ARGV[2]) > 0 then
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
else
  redis.call('HDEL', KEYS[1], ARGV[1])
end
return others
"""

# KEYS: users' hashes. ARGV[1]: this instance's id, ARGV[2]: the heartbeat
# key prefix. Returns one flag per key: 1 when another live instance counts a
# connection of that user. Each instance's liveness is checked once per call.
_ONLINE = """
local alive = {}
local answer = {}
for k = 1, #KEYS do
  local found = 0
  local fields = redis.call('HGETALL', KEYS[k])
  for i = 1, #fields, 2 do
    local instance = fields[i]
    if instance ~= ARGV[1] and (tonumber(fields[i + 1]) or 0) > 0 then
      if alive[instance] == nil then
        alive[instance] = redis.call('EXISTS', ARGV[2] .. instance) == 1
      end
      if alive[instance] then
        found = 1
        break
      end
    end
  end
  answer[k] = found
end
return answer
"""

# The answer for one call: the other instances' connections, or None for
# "Redis did not tell" (then the local count decides).
_Waiter = asyncio.Future[int | None]


class RedisPresence:
    """Implements ``PresenceRegistry`` for instances sharing one Redis.

    ``redis`` is a URL (``redis://host:6379/0``) or a function returning a new
    ``redis.asyncio.Redis`` that does not retry by itself; either way this
    registry owns that client and closes it.

    ``instance_id`` must be unique to this process (the default is random): a
    restarted process reusing an id would inherit the fields of its previous
    life, whose users would then never go offline.

    The writer task starts on first use; ``start()`` starts it earlier and
    waits for the first heartbeat. ``close()`` removes this instance's fields
    and heartbeat (for at most ``close_timeout`` seconds; otherwise they expire
    with the heartbeat) and closes the client. Nothing here raises because of
    Redis. Each round trip is given ``command_timeout`` seconds, and a call
    waits for at most two of them before answering from the local count.
    """

    def __init__(
        self,
        redis: str | Callable[[], Redis],
        *,
        prefix: str = "gortc:presence",
        instance_id: str | None = None,
        ttl: float = 15.0,
        heartbeat_interval: float | None = None,
        command_timeout: float = 1.0,
        close_timeout: float = 2.0,
        backoff_min: float = 0.1,
        backoff_max: float = 5.0,
        batch_size: int = 256,
    ) -> None:
        self.instance_id = instance_id if instance_id is not None else uuid.uuid4().hex
        if not self.instance_id:
            raise ValueError("instance_id must not be empty")
        interval = heartbeat_interval if heartbeat_interval is not None else ttl / 3
        if not 0 < interval < ttl:
            raise ValueError("the heartbeat needs 0 < heartbeat_interval < ttl")
        if min(command_timeout, close_timeout) <= 0:
            raise ValueError("command_timeout and close_timeout must be positive")
        if not 0 < backoff_min <= backoff_max:
            raise ValueError("backoff needs 0 < backoff_min <= backoff_max")
        if batch_size < 1:
            raise ValueError("batch_size must be positive")
        self._redis = redis
        self._user_prefix = f"{prefix}:user:"
        self._heartbeat_prefix = f"{prefix}:instance:"
        self.heartbeat_key = self._heartbeat_prefix + self.instance_id
        self._ttl_ms = max(1, round(ttl * 1000))
        self._heartbeat_interval = interval
        self._command_timeout = command_timeout
        self._close_timeout = close_timeout
        self._backoff_min = backoff_min
        self._backoff_max = backoff_max
        self._batch_size = batch_size

        # This instance's connections per user: the truth for its own fields,
        # and the answer while Redis is unreachable.
        self._counts: Counter[str] = Counter()
        # Users whose field waits to be written, with the calls awaiting it.
        self._pending: dict[str, list[_Waiter]] = {}
        # Users whose field may be wrong in Redis, rewritten on recovery.
        self._dirty: set[str] = set()
        self._wakeup = asyncio.Event()
        self._first_round = asyncio.Event()
        self._client: Redis | None = None
        self._task: asyncio.Task[None] | None = None
        self._up = True  # until a round trip fails
        self._down_since: datetime | None = None
        self._closed = False

    def user_key(self, user_id: str) -> str:
        return self._user_prefix + user_id

    @property
    def healthy(self) -> bool:
        """True while the last round trip to Redis succeeded."""
        return self._up and not self._closed

    # -- the PresenceRegistry protocol -------------------------------------

    async def connected(self, user_id: str) -> bool:
        self._counts[user_id] += 1
        first_here = self._counts[user_id] == 1
        others = await self._others(user_id)
        return first_here and not others

    async def disconnected(self, user_id: str) -> bool:
        count = self._counts[user_id] - 1
        if count > 0:
            self._counts[user_id] = count
            last_here = False
        else:
            del self._counts[user_id]
            last_here = True
        others = await self._others(user_id)
        return last_here and not others

    async def online(self, user_ids: Collection[str]) -> set[str]:
        wanted = list(dict.fromkeys(user_ids))
        # This instance's own counts are the truth for its connections (its
        # field in Redis may still be waiting to be written).
        here = {user_id for user_id in wanted if self._counts.get(user_id, 0) > 0}
        elsewhere = [user_id for user_id in wanted if user_id not in here]
        if not elsewhere or self._closed:
            return here
        self._ensure_started()
        if not self._up or self._client is None:
            # During an outage an answer must not wait for Redis.
            return here
        try:
            async with asyncio.timeout(self._command_timeout):
                flags = await self._read_online(self._client, elsewhere)
        except Exception as exc:  # a member list must never fail for presence
            reraise_if_cancelled(exc)
            if not isinstance(exc, RedisError | OSError | TimeoutError):
                log.error("presence query failed unexpectedly", exc_info=exc)
            return here
        return here | {user_id for user_id, flag in zip(elsewhere, flags, strict=True) if flag}

    async def start(self) -> None:
        """Starts the writer and waits (briefly) for the first heartbeat, so
        that the instance is registered before its first connection."""
        if self._closed:
            raise RuntimeError("the presence registry is closed")
        self._ensure_started()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(2 * self._command_timeout):
                await self._first_round.wait()

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._task is not None:
            self._task.cancel()
            # Bounded: shutting down must never hang on a task stuck in a driver.
            _, stuck = await asyncio.wait([self._task], timeout=self._close_timeout)
            if stuck:
                log.warning("presence writer did not stop in time")
            self._task = None
        written = set(self._counts) | self._dirty | set(self._pending)
        self._resolve(self._pending.values(), None)
        self._pending.clear()
        if self._client is not None:
            await self._remove_own_fields(self._client, written)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._close_timeout):
                    await self._client.aclose()
            self._client = None
        self._counts.clear()
        self._dirty.clear()

    # -- calls ----------------------------------------------------------------

    async def _others(self, user_id: str) -> int | None:
        """The user's connections on the other live instances, once this
        instance's field is written; None when Redis cannot tell in time."""
        if self._closed:
            return None
        self._ensure_started()
        if not self._up:
            # Not even queued: during an outage an answer must not wait for
            # Redis. The field is rewritten once Redis answers again.
            self._dirty.add(user_id)
            return None
        waiter: _Waiter = asyncio.get_running_loop().create_future()
        self._pending.setdefault(user_id, []).append(waiter)
        self._wakeup.set()
        try:
            # The round trip under way, then ours.
            async with asyncio.timeout(2 * self._command_timeout):
                return await waiter
        except TimeoutError:
            # The write stays queued; only this answer falls back.
            return None

    def _ensure_started(self) -> None:
        if self._task is not None or self._closed:
            return
        self._client = self._redis() if callable(self._redis) else client_from_url(self._redis)
        self._task = asyncio.create_task(
            self._write_forever(self._client), name=f"gortc-presence-{self.instance_id}"
        )

    # -- the writer -----------------------------------------------------------

    async def _write_forever(self, client: Redis) -> None:
        """The only sender of this instance's writes, so they reach Redis in
        the order their counts changed; it also keeps the heartbeat alive."""
        loop = asyncio.get_running_loop()
        backoff = Backoff(self._backoff_min, self._backoff_max)
        next_heartbeat = loop.time()
        while True:
            if not self._up:
                await asyncio.sleep(backoff.next_delay())
            elif not self._pending:
                self._wakeup.clear()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout_at(next_heartbeat):
                        await self._wakeup.wait()
            users = list(itertools.islice(self._pending, self._batch_size))
            batch = [(user, self._pending.pop(user)) for user in users]
            try:
                async with asyncio.timeout(self._command_timeout):
                    heartbeat_was_alive, others = await self._write(client, users)
            except Exception as exc:  # any failure means: answer locally, retry later
                reraise_if_cancelled(exc)
                self._failed(exc, batch)
                continue
            finally:
                self._first_round.set()
            next_heartbeat = loop.time() + self._heartbeat_interval
            backoff.reset()
            for (_, waiters), answer in zip(batch, others, strict=True):
                self._resolve([waiters], answer)
            rewrite = set(self._dirty)
            self._dirty.clear()
            if not self._up or not heartbeat_was_alive:
                # Other instances may have deleted any of our fields (our
                # heartbeat lapsed), Redis may have restarted empty or from an
                # older snapshot: every field is rewritten, not only those
                # whose count changed during the outage.
                rewrite.update(self._counts)
            if not self._up:
                self._recovered()
            for user in rewrite.difference(users):
                self._pending.setdefault(user, [])

    async def _write(self, client: Redis, users: list[str]) -> tuple[bool, list[int]]:
        """Refreshes the heartbeat, then writes each user's current count;
        returns whether the heartbeat was still there and each user's count
        on the other instances."""
        async with client.pipeline(transaction=False) as pipe:
            # First, so that the writes below never find this instance dead.
            pipe.set(self.heartbeat_key, "1", px=self._ttl_ms, get=True)
            for user in users:
                # EVAL rather than EVALSHA: a pipeline would check the script
                # cache with one more round trip per batch, and after a Redis
                # restart the cache is empty anyway.
                pipe.eval(
                    _UPDATE,
                    1,
                    self.user_key(user),
                    self.instance_id,
                    self._counts.get(user, 0),
                    self._heartbeat_prefix,
                )
            results = await pipe.execute()
        return results[0] is not None, [int(result) for result in results[1:]]

    async def _read_online(self, client: Redis, users: list[str]) -> list[int]:
        """For each user, 1 when another live instance counts a connection."""
        async with client.pipeline(transaction=False) as pipe:
            # Batches keep each script short: Redis runs nothing else meanwhile.
            for start in range(0, len(users), self._batch_size):
                batch = users[start : start + self._batch_size]
                pipe.eval(
                    _ONLINE,
                    len(batch),
                    *(self.user_key(user) for user in batch),
                    self.instance_id,
                    self._heartbeat_prefix,
                )
            results = await pipe.execute()
        return [int(flag) for result in results for flag in result]

    async def _remove_own_fields(self, client: Redis, users: Iterable[str]) -> None:
        try:
            async with asyncio.timeout(self._close_timeout):
                async with client.pipeline(transaction=False) as pipe:
                    for user in users:
                        pipe.hdel(self.user_key(user), self.instance_id)
                    pipe.delete(self.heartbeat_key)
                    await pipe.execute()
        except Exception as exc:  # shutting down: the heartbeat TTL cleans up instead
            reraise_if_cancelled(exc)
            log.warning(
                "could not remove this instance's presence from Redis (%s); "
                "the other instances ignore it once its heartbeat expires",
                self._reason(exc, self._close_timeout),
            )

    # -- bookkeeping ----------------------------------------------------------

    @staticmethod
    def _resolve(waiter_lists: Iterable[list[_Waiter]], answer: int | None) -> None:
        for waiters in waiter_lists:
            for waiter in waiters:
                if not waiter.done():  # a caller that gave up cancelled its own
                    waiter.set_result(answer)

    def _failed(self, exc: Exception, batch: list[tuple[str, list[_Waiter]]]) -> None:
        if not isinstance(exc, RedisError | OSError):
            log.error("presence write failed unexpectedly", exc_info=exc)
        # Every queued call answers locally now, and its user is rewritten
        # after the outage.
        self._resolve((waiters for _, waiters in batch), None)
        self._resolve(self._pending.values(), None)
        self._dirty.update(user for user, _ in batch)
        self._dirty.update(self._pending)
        self._pending.clear()
        if self._up:
            self._up = False
            self._down_since = datetime.now(UTC)
            log.warning(
                "Redis unreachable for presence (%s): online and offline are decided "
                "by this instance's connections only",
                self._reason(exc, self._command_timeout),
            )

    def _recovered(self) -> None:
        self._up = True
        since, self._down_since = self._down_since, None
        seconds = (datetime.now(UTC) - since).total_seconds() if since else 0.0
        log.info(
            "Redis reachable again for presence after %.1f s; re-registering this "
            "instance's connections",
            seconds,
        )

    @staticmethod
    def _reason(exc: Exception, timeout: float) -> str:
        if isinstance(exc, TimeoutError) and not str(exc):
            return f"no answer in {timeout} s"
        return describe_failure(exc)
