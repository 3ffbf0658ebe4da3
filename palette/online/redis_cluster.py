"""The Redis store over a Redis Cluster (redis-py's ``RedisCluster``), natively.

``redis+cluster://[[user]:password@]host:port,host:port/0`` (``rediss+cluster://`` for
TLS), with the single-node URL's query parameters (``timeout_ms``, ``write_timeout_ms``,
``prefix``, and redis-py's own). The hosts are startup nodes: any few of the cluster's
nodes; the client discovers the others and follows the cluster as it changes.

Same layout as ``RedisStore``, with the entity key hash-tagged,
``<prefix>:<entity>:<group>:{<key>}``, so every group's row of one entity key lives in
one slot: a request's reads of one entity are one MGET on one node. The keys of a read
(or of a written batch) are split by slot, one MGET (or one run of the write script) per
slot, written to every node at once before any reply is read. Reads go straight to the
master redis-py's slot table names, on the thread's own connection (``_mget_direct``:
redis-py's per-command cost would halve lookup throughput); a slot answered MOVED, ASK,
TRYAGAIN or CLUSTERDOWN, or on a failed node, is read again through the cluster client,
which follows redirections during a resharding and refreshes the slot table. Writes go
through the cluster client's pipeline. A written batch is atomic per
slot (per entity key), not across keys. A slot whose master is down or that no master
holds fails reads of it with ``OnlineStoreUnavailable`` (``palette serve``: 503), while the
other slots keep answering; the client picks up the promoted replica by itself.
"""
from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

from palette.errors import BadStoreURL

from .redis_store import RedisStore


class RedisClusterStore(RedisStore):
    scheme = "redis+cluster"
    _KEY = b"%s{%s}"

    def _client(self, url: str, timeout: float, retry):
        from redis.cluster import ClusterNode, RedisCluster
        from redis.crc import key_slot
        from redis.exceptions import RedisClusterException

        if "{" in self.prefix or "}" in self.prefix:
            raise BadStoreURL(f"Redis Cluster URL {self.url!r}: prefix {self.prefix!r} has a brace; the keys' hash "
                              "tags ({<entity key>}) must be their only braces, or every key hashes to one slot")
        self._key_slot = key_slot
        parts = urlsplit(url)
        userinfo, at, hosts = parts.netloc.rpartition("@")
        nodes = [h.strip() for h in hosts.split(",") if h.strip()]
        if not nodes or parts.path.strip("/") not in ("", "0"):
            raise BadStoreURL(f"Redis Cluster URL {self.url!r}: name one or more nodes and database 0 (a cluster "
                              "has no other), e.g. redis+cluster://10.0.0.1:6379,10.0.0.2:6379/0")
        self._errors = (self._redis.RedisError, RedisClusterException)
        try:
            others = [ClusterNode(*_host_port(n)) for n in nodes]
        except ValueError as e:
            raise BadStoreURL(f"Redis Cluster URL {self.url!r}: {e}; nodes are host:port, separated by commas") from e
        first = urlunsplit(parts._replace(scheme=parts.scheme.split("+")[0], netloc=userinfo + at + nodes[0],
                                          path="/0"))
        try:
            return RedisCluster(url=first, startup_nodes=others[1:], socket_timeout=timeout,
                                socket_connect_timeout=timeout, retry=retry, require_full_coverage=False)
        except self._errors as e:
            self._fail(e, "discovering the cluster")

    def _by_slot(self, keys: list[bytes]) -> dict[int, list[int]]:
        """The positions of ``keys`` per hash slot."""
        slots: dict[int, list[int]] = {}
        key_slot = self._key_slot
        for i, k in enumerate(keys):
            slot = key_slot(k)
            if slot in slots:
                slots[slot].append(i)
            else:
                slots[slot] = [i]
        return slots

    def _pipelined(self, client, commands: list[tuple], doing: str, raise_on_error: bool = True) -> list:
        """``commands`` in one pipeline: one write per node, all nodes at once (one command,
        a request's read of one entity, goes without a pipeline)."""
        try:
            if len(commands) == 1:
                try:
                    return [client.execute_command(*commands[0])]
                except self._redis.ResponseError as e:
                    if raise_on_error:
                        raise
                    return [e]
            pipe = client.pipeline()
            for command in commands:
                pipe.execute_command(*command)
            return pipe.execute(raise_on_error=raise_on_error)
        except self._errors as e:
            self._fail(e, doing)

    def _connection_to(self, node):
        """This thread's own connection to ``node`` (a master, as the client's slot table has
        it), made from the client's pool for that node: its address, password and TLS."""
        conns = getattr(self._local, "nodes", None)
        if conns is None:
            conns = self._local.nodes = {}
        conn = conns.get(node.name)
        if conn is None:
            conn = conns[node.name] = self._reader.get_redis_connection(node).connection_pool.make_connection()
            with self._lock:
                self._connections.append(conn)
        return conn

    def _mget_direct(self, keys: list[bytes], slots: dict[int, list[int]], values: list) -> list[list[int]]:
        """One MGET per slot, sent straight to the master the client's slot table names, on
        this thread's connection to it: every node's MGETs written before any reply is
        read, as RedisStore reads. Fills ``values``; returns the slots' positions left
        unanswered: a reply of MOVED, ASK, TRYAGAIN or CLUSTERDOWN, or a node that failed
        (its connection is dropped; the next read connects again)."""
        owner = self._reader.nodes_manager.get_node_from_slot
        per_node, missed = {}, []
        for slot, positions in slots.items():
            try:
                node = owner(slot)
            except self._errors:                    # no master known for it
                missed.append(positions)
                continue
            per_node.setdefault(node.name, (node, []))[1].append(positions)
        sent = []
        try:
            for node, groups in per_node.values():
                conn = self._connection_to(node)
                try:
                    conn.send_packed_command([b"".join([_mget_command([keys[i] for i in p]) for p in groups])])
                    sent.append((conn, groups))
                except (self._redis.RedisError, OSError):
                    conn.disconnect()
                    missed += groups
            for conn, groups in sent:
                for j, positions in enumerate(groups):
                    try:
                        reply = conn.read_response()
                    except self._redis.ResponseError:   # a whole reply read: the connection stays in step
                        missed.append(positions)
                        continue
                    except (self._redis.RedisError, OSError):
                        conn.disconnect()
                        missed += groups[j:]
                        break
                    for i, v in zip(positions, reply):
                        values[i] = v
        except BaseException:                       # replies left unread would answer the next read
            for conn, _ in sent:
                conn.disconnect()
            raise
        return missed

    def _mget(self, key_lists: list[list[bytes]]) -> list[list]:
        """Straight to the slots' masters (``_mget_direct``); what that leaves unanswered
        goes through the cluster client, which follows MOVED, ASK and TRYAGAIN, refreshes
        its slot table (the next direct read uses it) or fails as an outage."""
        keys = [k for ks in key_lists for k in ks] if len(key_lists) > 1 else key_lists[0]
        values = [None] * len(keys)
        missed = self._mget_direct(keys, self._by_slot(keys), values)
        if missed:
            replies = self._pipelined(self._reader, [("MGET", *[keys[i] for i in s]) for s in missed], "reading")
            for positions, reply in zip(missed, replies):
                for i, v in zip(positions, reply):
                    values[i] = v
        if len(key_lists) == 1:
            return [values]
        out, start = [], 0
        for ks in key_lists:
            out.append(values[start:start + len(ks)])
            start += len(ks)
        return out

    def _script(self, script, keys, args, per_key, doing):
        """One run of ``script`` per slot (a script's keys must share one), pipelined."""
        from redis.exceptions import NoScriptError
        commands = []
        for positions in self._by_slot(keys).values():
            own = [a for i in positions for a in args[i * per_key:(i + 1) * per_key]] if per_key else args
            commands.append(("EVALSHA", script.sha, len(positions), *[keys[i] for i in positions], *own))
        replies = self._pipelined(self._writer, commands, doing, raise_on_error=False)
        missing = [i for i, r in enumerate(replies) if isinstance(r, NoScriptError)]
        if missing:                         # a master that never saw the script: a new or promoted one
            self._call(self._writer, doing, "SCRIPT LOAD", script.script)       # on every master
            for i, r in zip(missing, self._pipelined(self._writer, [commands[i] for i in missing], doing)):
                replies[i] = r
        for r in replies:
            if isinstance(r, Exception):
                self._fail(r, doing)
        return sum(int(r) for r in replies)

    def _scan(self, group_id: str, batch: int = 1000):
        pattern = self._key_prefix(group_id).replace(b"[", b"\\[").replace(b"*", b"\\*").replace(b"?", b"\\?") + b"*"
        keys = []
        try:
            for key in self._writer.scan_iter(match=pattern, count=batch):      # every master, in turn
                keys.append(key)
                if len(keys) == batch:
                    yield keys
                    keys = []
        except self._errors as e:
            self._fail(e, f"scanning {group_id}")
        if keys:
            yield keys

    def ping(self) -> None:
        """The cluster answers: any master does (one down fails only the reads of its slots)."""
        error = None
        for node in self._reader.get_primaries():
            try:
                self._reader.execute_command("PING", target_nodes=node)
                return
            except self._errors as e:
                error = e
        self._fail(error or self._redis.ConnectionError("no master known"), "answering a ping")

    def close(self) -> None:
        self._drop_connections()
        self._reader.close()
        self._writer.close()


def _mget_command(keys: list[bytes]) -> bytes:
    """``MGET keys`` in the Redis protocol (a fifth of the time of redis-py's packing, which
    handles any argument type: a batch's read sends one per slot)."""
    return b"*%d\r\n$4\r\nMGET\r\n" % (len(keys) + 1) + b"".join([b"$%d\r\n%s\r\n" % (len(k), k) for k in keys])


def _host_port(node: str) -> tuple[str, int]:
    host, sep, port = node.rpartition(":")
    if not sep or not port.isdigit():
        raise BadStoreURL(f"node {node!r} has no port")
    return host.strip("[]"), int(port)


__all__ = ["RedisClusterStore"]
