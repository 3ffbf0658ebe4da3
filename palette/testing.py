"""Helpers for tests and benchmarks that need real servers on loopback.

>>> with redis_server() as (url, process):          # doctest: +SKIP
...     store = open_store(url)
"""
from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import Iterator

from .errors import PaletteError


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServerNotStarted(PaletteError, RuntimeError):
    """A server a test or benchmark needs is not installed or did not start."""


def start_redis(port: int, workdir: str, persist: bool = False, timeout: float = 20.0,
                args: tuple[str, ...] = ()) -> subprocess.Popen:
    """Start ``redis-server`` on ``127.0.0.1:port`` (``persist``: an append-only file in
    ``workdir``, so a restart keeps the data; ``args``: more options) and wait until it
    answers PING."""
    exe = shutil.which("redis-server")
    if exe is None:
        raise ServerNotStarted("redis-server is not installed: `make test` installs it (apt-get install redis-server)")
    proc = subprocess.Popen([exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                             "--appendonly", "yes" if persist else "no", "--appendfsync", "always", "--dir", workdir, *args],
                            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2) as s:
                s.sendall(b"PING\r\n")
                if s.recv(16).startswith(b"+PONG"):
                    return proc
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise ServerNotStarted(f"redis-server did not start on port {port}")
        time.sleep(0.05)


def start_kitchen(port: int | None = None, delay_ms: float = 0.0, timeout: float = 20.0) -> tuple[subprocess.Popen, str]:
    """Start the ETA example's kitchen service (``palette.examples.kitchen``, an RPC
    feature's source) in its own process on loopback: ``(process, its URL)``."""
    port = port or free_port()
    proc = subprocess.Popen([sys.executable, "-m", "palette.examples.kitchen", "--port", str(port),
                             "--delay-ms", str(delay_ms)], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url + "/_stats", timeout=1).read()
            return proc, url
        except OSError:
            if proc.poll() is not None:
                break
            time.sleep(0.05)
    stop(proc)
    raise ServerNotStarted(f"the kitchen service did not start on port {port}")


def kitchen_mode(url: str, mode: str = "fast", **settings) -> dict:
    """Set the kitchen service's mode (and ``delay_ms``, ``slow_ms``, ``reset``); its stats."""
    import json
    body = json.dumps({"mode": mode, **settings}).encode()
    urllib.request.urlopen(urllib.request.Request(url + "/_mode", body, method="POST"), timeout=5).read()
    return json.loads(urllib.request.urlopen(url + "/_stats", timeout=5).read())


def kitchen_stats(url: str) -> dict:
    import json
    return json.loads(urllib.request.urlopen(url + "/_stats", timeout=5).read())


def save_lookup_stage(path, features: dict[str, str], entities, groups, uid: str = "PaletteTransformer_test") -> str:
    """A ``PaletteTransformer`` saved as its ``save()`` writes it (the metadata line with
    its definitions), without Spark: for tests and benchmarks of the serving path."""
    import json
    from pathlib import Path

    from .lookup_plan import Definitions
    meta = Path(path) / "metadata"
    meta.mkdir(parents=True, exist_ok=True)
    (meta / "part-00000").write_text(json.dumps({
        "class": "palette.transformers.palette_stage.PaletteTransformer", "uid": uid, "timestamp": 0,
        "sparkVersion": "4.0.1", "paramMap": {"features": features}, "defaultParamMap": {},
        "paletteFormatVersion": 1, "paletteDefinitions": Definitions.of(entities, groups).to_json()}) + "\n")
    return str(path)


def start_service(args: list[str], log_path: str, timeout: float = 120.0) -> tuple[subprocess.Popen, str]:
    """Start ``python -m palette.serve --port 0 ARGS`` (its output in ``log_path``) and wait
    until it answers ``/readyz``: ``(process, its URL)``."""
    log = open(log_path, "w")
    proc = subprocess.Popen([sys.executable, "-m", "palette.serve", "--port", "0", *args], stdout=log,
                            stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    deadline = time.monotonic() + timeout
    url = None
    while time.monotonic() < deadline:
        if url is None:
            found = re.search(r" on (http://\S+) ", open(log_path).read())
            url = found and found.group(1)
        if url is not None:
            try:
                urllib.request.urlopen(url + "/readyz", timeout=2).read()
                return proc, url
            except OSError:
                pass
        if proc.poll() is not None:
            break
        time.sleep(0.2)
    stop(proc)
    raise ServerNotStarted(f"palette serve did not become ready; its output ({log_path}):\n"
                           + open(log_path).read()[-3000:])


def stop(proc: subprocess.Popen, timeout: float = 10.0) -> None:
    """SIGTERM, then SIGKILL if it has not exited within ``timeout`` seconds."""
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@dataclass(frozen=True)
class S3Endpoint:
    """Where a test's S3-compatible server answers, and the static credentials it signs
    requests with (SigV4, like AWS S3)."""
    endpoint: str               # http://127.0.0.1:PORT
    access_key: str
    secret_key: str
    bucket: str
    region: str = "us-east-1"

    def uri(self, path: str = "") -> str:
        """``s3a://BUCKET/PATH``: what Spark and Delta (through hadoop-aws) read and write."""
        return f"s3a://{self.bucket}/{path.lstrip('/')}"

    def storage_options(self) -> dict[str, str]:
        """The options delta-rs (``deltalake``) and ``object_store`` take for this server."""
        return {"AWS_ENDPOINT_URL": self.endpoint, "AWS_ACCESS_KEY_ID": self.access_key,
                "AWS_SECRET_ACCESS_KEY": self.secret_key, "AWS_REGION": self.region,
                "AWS_ALLOW_HTTP": str(self.endpoint.startswith("http://")).lower()}

    def env(self) -> dict[str, str]:
        """The standard ``AWS_*`` environment variables for a subprocess (``palette.spark``'s
        session, the AWS CLI and SDKs, delta-rs read them)."""
        return {**self.storage_options(), "AWS_DEFAULT_REGION": self.region}


def weed_binary() -> str:
    """SeaweedFS's ``weed`` (``make s3`` builds it into the virtualenv's ``bin``)."""
    exe = os.path.join(os.path.dirname(sys.executable), "weed")
    exe = exe if os.access(exe, os.X_OK) else shutil.which("weed")
    if exe is None:
        raise ServerNotStarted("SeaweedFS's weed is not built: run `make s3` (it builds it with Go into .venv/bin/weed)")
    return exe


@contextmanager
def s3_server(bucket: str = "palette", timeout: float = 60.0) -> Iterator[S3Endpoint]:
    """A real S3-compatible server — SeaweedFS (``weed server``: master, volume server, filer
    and S3 gateway in one process) on free loopback ports, data in a temp dir, one identity
    with admin rights whose requests must be SigV4-signed — for the duration of the block.
    Yields an ``S3Endpoint`` once ``bucket`` exists and takes writes."""
    import json
    import secrets

    exe = weed_binary()
    creds = S3Endpoint("", "palette" + secrets.token_hex(6), secrets.token_urlsafe(30), bucket)
    # Every port explicit: weed's gRPC ports default to HTTP port + 10000, which may be taken.
    ports = {f"{name}.{kind}": free_port() for name in ("master", "volume", "filer", "s3") for kind in ("port", "port.grpc")}
    with tempfile.TemporaryDirectory(prefix="palette-s3-") as workdir:
        config = os.path.join(workdir, "s3.json")
        with open(config, "w") as f:
            json.dump({"identities": [{"name": "palette", "actions": ["Admin", "Read", "List", "Tagging", "Write"],
                                       "credentials": [{"accessKey": creds.access_key, "secretKey": creds.secret_key}]}]}, f)
        os.makedirs(os.path.join(workdir, "data"))
        args = [exe, "-logtostderr=true", "server", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
                f"-dir={os.path.join(workdir, 'data')}", "-filer", "-s3", f"-s3.config={config}",
                *(f"-{flag}={port}" for flag, port in ports.items()),
                "-s3.port.iceberg=0", "-s3.port.lance=0", "-master.telemetry=false",
                "-volume.max=32", "-master.volumeSizeLimitMB=64", "-volume.preStopSeconds=0",
                f"-filer.localSocket={workdir}/filer.sock", f"-s3.localSocket={workdir}/s3.sock"]
        log_path = os.path.join(workdir, "weed.log")
        with open(log_path, "wb") as log:
            proc = subprocess.Popen(args, cwd=workdir, stdout=log, stderr=subprocess.STDOUT)
        server = S3Endpoint(f"http://127.0.0.1:{ports['s3.port']}", creds.access_key, creds.secret_key, bucket)
        try:
            _wait_for_bucket(server, proc, timeout, log_path)
            yield server
        finally:
            # SIGTERM stops the volume server first, then the filer retries flushing its
            # metadata log to it for ~15 s: the data are thrown away, so 5 s, then SIGKILL,
            # and remove the gRPC sockets weed keeps in /tmp (it removes them on a clean exit).
            stop(proc, timeout=5)
            for service in ("master", "volume", "filer", "s3"):
                with suppress(FileNotFoundError):
                    os.remove(f"/tmp/seaweedfs-{service}-grpc-{ports[service + '.port.grpc']}.sock")


def _wait_for_bucket(server: S3Endpoint, proc: subprocess.Popen, timeout: float, log_path: str) -> None:
    """Create the bucket and write and delete an object in it, retrying until the gateway,
    filer and volume server all answer."""
    from pyarrow import fs
    s3 = fs.S3FileSystem(access_key=server.access_key, secret_key=server.secret_key, region=server.region,
                         endpoint_override=server.endpoint, scheme="http", connect_timeout=2, request_timeout=5,
                         allow_bucket_creation=True)
    probe = f"{server.bucket}/.palette-ready"
    deadline = time.monotonic() + timeout
    while True:
        try:
            s3.create_dir(server.bucket)
            with s3.open_output_stream(probe) as out:
                out.write(b"ok")
            s3.delete_file(probe)
            return
        except OSError as e:
            error = e
        if proc.poll() is not None or time.monotonic() > deadline:
            stop(proc)
            tail = open(log_path, errors="replace").read()[-3000:]
            raise ServerNotStarted(f"SeaweedFS did not start at {server.endpoint} ({error}); its log:\n{tail}")
        time.sleep(0.2)


@contextmanager
def redis_server(timeout: float = 20.0, persist: bool = False) -> Iterator[tuple[str, subprocess.Popen]]:
    """A real ``redis-server`` (from the OS packages) on a free loopback port for the
    duration of the block: yields ``(url, process)``. Without ``persist`` it keeps
    nothing on disk."""
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="palette-redis-") as workdir:
        proc = start_redis(port, workdir, persist, timeout)
        try:
            yield f"redis://127.0.0.1:{port}/0", proc
        finally:
            stop(proc)



class RedisClusterNodes:
    """A Redis Cluster on loopback (``redis_cluster``): its ``url`` (``redis+cluster://``),
    ``procs`` (port -> redis-server process, in creation order: masters first)."""

    def __init__(self, workdir: str, ports: list[int], node_timeout_ms: int):
        self.workdir, self.ports, self.node_timeout_ms = workdir, ports, node_timeout_ms
        self.bus_ports = {p: free_port() for p in ports}      # not port + 10000: that may be over 65535
        self.procs: dict[int, subprocess.Popen] = {}
        self.url = "redis+cluster://" + ",".join(f"127.0.0.1:{p}" for p in ports[:3]) + "/0"

    def start(self, port: int) -> subprocess.Popen:
        """Start (or restart, with its nodes.conf: it rejoins) the node on ``port``."""
        workdir = os.path.join(self.workdir, str(port))
        os.makedirs(workdir, exist_ok=True)
        self.procs[port] = start_redis(port, workdir, args=(
            "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf", "--cluster-port", str(self.bus_ports[port]),
            "--cluster-node-timeout", str(self.node_timeout_ms), "--cluster-require-full-coverage", "no"))
        return self.procs[port]

    def client(self, port: int):
        import redis
        return redis.Redis(host="127.0.0.1", port=port, socket_timeout=5)

    def masters(self) -> dict[int, str]:
        """The masters holding slots, as a running node sees them: port -> node id."""
        for port, proc in self.procs.items():
            if proc.poll() is None:
                return {int(address.rsplit(":", 1)[1]): node["node_id"]
                        for address, node in self.client(port).cluster("nodes").items()
                        if "master" in node["flags"] and "fail" not in node["flags"] and node["slots"]}
        raise ServerNotStarted("no node of the Redis Cluster is running")

    def wait_ok(self, timeout: float = 60.0) -> None:
        """Until every running node says ``cluster_state:ok``, knows every node and each
        replica's link to its master is up."""
        import redis
        deadline = time.monotonic() + timeout
        while True:
            try:
                if all(self._ok(port) for port, proc in self.procs.items() if proc.poll() is None):
                    return
            except (OSError, redis.RedisError):
                pass
            if time.monotonic() > deadline:
                raise ServerNotStarted(f"the Redis Cluster on ports {self.ports} did not become ok")
            time.sleep(0.1)

    def _ok(self, port: int) -> bool:
        c = self.client(port)
        info = c.cluster("info")
        replication = c.info("replication")
        return (info["cluster_state"] == "ok" and int(info["cluster_known_nodes"]) == len(self.ports)
                and (replication["role"] == "master" or replication.get("master_link_status") == "up"))


@contextmanager
def redis_cluster(masters: int = 3, replicas: int = 1, node_timeout_ms: int = 2000,
                  timeout: float = 60.0) -> Iterator[RedisClusterNodes]:
    """A real Redis Cluster on loopback for the duration of the block: ``masters`` x
    (1 + ``replicas``) ``redis-server`` processes (OS packages) with ``--cluster-enabled
    yes``, joined by ``redis-cli --cluster create``, yielded once every node says
    ``cluster_state:ok``. ``cluster-require-full-coverage no``: while a slot has no
    master, the other slots keep answering. Nothing is kept on disk but nodes.conf."""
    cli = shutil.which("redis-cli")
    if cli is None:
        raise ServerNotStarted("redis-cli is not installed: `make test` installs it (apt-get install redis-server)")
    with tempfile.TemporaryDirectory(prefix="palette-redis-cluster-") as workdir:
        cluster = RedisClusterNodes(workdir, [free_port() for _ in range(masters * (1 + replicas))], node_timeout_ms)
        try:
            for port in cluster.ports:
                cluster.start(port)
            created = subprocess.run([cli, "--cluster", "create", *[f"127.0.0.1:{p}" for p in cluster.ports],
                                      "--cluster-replicas", str(replicas), "--cluster-yes"],
                                     capture_output=True, text=True, timeout=timeout)
            if created.returncode != 0:
                raise ServerNotStarted(f"redis-cli --cluster create failed:\n{created.stdout[-2000:]}{created.stderr}")
            cluster.wait_ok(timeout)
            yield cluster
        finally:
            for proc in cluster.procs.values():
                if proc.poll() is None:
                    stop(proc)


_KRAFT = """process.roles=broker,controller
node.id=1
controller.quorum.bootstrap.servers=127.0.0.1:{controller}
listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller}
advertised.listeners=PLAINTEXT://127.0.0.1:{port}
controller.listener.names=CONTROLLER
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
log.dirs={logs}
num.partitions=2
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=true
"""


@contextmanager
def kafka_server(timeout: float = 90.0) -> Iterator[tuple[str, subprocess.Popen]]:
    """A real single-node Apache Kafka broker (KRaft: broker and controller in one JVM, no
    ZooKeeper) from Kafka's own jars (``make jars`` fetches them with Maven) on free
    loopback ports, for the duration of the block: yields ``(bootstrap servers, process)``."""
    import base64
    import uuid

    from .spark import classpath
    jars = classpath("kafka-broker")
    if not jars:
        raise ServerNotStarted("Kafka's broker jars are not fetched: run `make jars` (python -m palette.spark fetch-jars)")
    java = shutil.which("java")
    if java is None:
        raise ServerNotStarted("java is not on PATH: Kafka's broker needs a JVM (Java 17)")
    port, controller = free_port(), free_port()
    with tempfile.TemporaryDirectory(prefix="palette-kafka-") as workdir:
        config = os.path.join(workdir, "server.properties")
        with open(config, "w") as f:
            f.write(_KRAFT.format(port=port, controller=controller, logs=os.path.join(workdir, "logs")))
        cp = os.pathsep.join(jars)
        cluster = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        subprocess.run([java, "-cp", cp, "kafka.tools.StorageTool", "format", "-t", cluster, "-c", config,
                        "--standalone"], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        with open(os.path.join(workdir, "kafka.log"), "wb") as log:
            proc = subprocess.Popen([java, "-Xmx512m", "-XX:+UseSerialGC", "-cp", cp, "kafka.Kafka", config],
                                    stdout=log, stderr=subprocess.STDOUT)
        servers = f"127.0.0.1:{port}"
        try:
            _wait_for_broker(servers, proc, timeout, os.path.join(workdir, "kafka.log"))
            yield servers, proc
        finally:
            stop(proc, timeout=20)


def create_topics(servers: str, names: list[str], partitions: int = 2, timeout: float = 30.0) -> None:
    """Create Kafka topics (one replica each) and wait until they exist."""
    from confluent_kafka.admin import AdminClient, NewTopic
    admin = AdminClient({"bootstrap.servers": servers, "log_level": 0})
    for future in admin.create_topics([NewTopic(n, partitions, 1) for n in names]).values():
        try:
            future.result(timeout)
        except Exception as e:                 # an existing topic is fine
            if "TOPIC_ALREADY_EXISTS" not in str(e) and "already exists" not in str(e):
                raise


def _wait_for_broker(servers: str, proc: subprocess.Popen, timeout: float, log: str) -> None:
    """Until the broker answers a metadata request."""
    from confluent_kafka.admin import AdminClient
    deadline = time.monotonic() + timeout
    admin = AdminClient({"bootstrap.servers": servers, "log_level": 0})
    while True:
        if proc.poll() is not None:
            tail = open(log, errors="replace").read()[-2000:]
            raise ServerNotStarted(f"the Kafka broker exited ({proc.returncode}):\n{tail}")
        try:
            if admin.list_topics(timeout=1).brokers:
                return
        except Exception:            # KafkaException until the broker listens
            pass
        if time.monotonic() > deadline:
            proc.kill()
            raise ServerNotStarted(f"the Kafka broker did not answer on {servers} within {timeout:.0f}s")
        time.sleep(0.2)



def spark_home() -> str:
    """The pinned pyspark's own Spark distribution (its ``bin/spark-class``, ``bin/spark-submit``)."""
    import pyspark
    return os.path.dirname(pyspark.__file__)


@contextmanager
def spark_cluster(workers: int = 2, cores: int = 1, memory: str = "1536m",
                  timeout: float = 90.0) -> Iterator[tuple[str, str]]:
    """A Spark standalone cluster on loopback for the duration of the block: a master and
    ``workers`` workers (``cores`` and ``memory`` each), each its own JVM started from the
    pinned pyspark's ``spark-class``, on free ports (web UIs too), work dirs in a temp
    dir. Yields ``(master URL spark://…, master web UI URL)`` once every worker is ALIVE."""
    import json

    home = spark_home()
    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        raise ServerNotStarted("java is not on PATH: Spark's master and workers need a JVM (Java 17)")
    port, ui = free_port(), free_port()
    url, ui_url = f"spark://127.0.0.1:{port}", f"http://127.0.0.1:{ui}"
    with tempfile.TemporaryDirectory(prefix="palette-spark-cluster-") as workdir:
        env = {**os.environ, "SPARK_HOME": home, "SPARK_LOCAL_IP": "127.0.0.1", "SPARK_LOG_DIR": workdir,
               "SPARK_DAEMON_MEMORY": "256m", "SPARK_DAEMON_JAVA_OPTS": "-XX:+UseSerialGC",
               "PYSPARK_PYTHON": os.environ.get("PYSPARK_PYTHON", sys.executable)}
        spark_class = os.path.join(home, "bin", "spark-class")
        commands = [("master", ["org.apache.spark.deploy.master.Master", "--host", "127.0.0.1", "--port", str(port),
                                "--webui-port", str(ui)])]
        for i in range(workers):
            os.makedirs(os.path.join(workdir, f"worker-{i}"))
            commands.append((f"worker-{i}", ["org.apache.spark.deploy.worker.Worker", "--host", "127.0.0.1",
                                             "--port", str(free_port()), "--webui-port", str(free_port()),
                                             "--cores", str(cores), "--memory", memory,
                                             "--work-dir", os.path.join(workdir, f"worker-{i}"), url]))
        procs: list[subprocess.Popen] = []
        try:
            for name, args in commands:
                with open(os.path.join(workdir, f"{name}.log"), "wb") as log:
                    procs.append(subprocess.Popen([spark_class, *args], env=env, stdout=log,
                                                  stderr=subprocess.STDOUT, start_new_session=True))
            deadline = time.monotonic() + timeout
            alive = 0
            while alive < workers:
                dead = [name for (name, _), p in zip(commands, procs) if p.poll() is not None]
                if dead or time.monotonic() > deadline:
                    logs = "\n".join(f"== {name}.log\n" + open(os.path.join(workdir, f"{name}.log"),
                                                             errors="replace").read()[-1500:] for name, _ in commands)
                    raise ServerNotStarted(f"the Spark standalone cluster did not start ({alive} of {workers} "
                                           f"workers alive{', exited: ' + ', '.join(dead) if dead else ''}):\n{logs}")
                try:
                    state = json.loads(urllib.request.urlopen(ui_url + "/json", timeout=2).read())
                    alive = state.get("aliveworkers", 0)
                except (OSError, ValueError):
                    pass
                time.sleep(0.3)
            yield url, ui_url
        finally:
            for p in reversed(procs):
                stop(p, timeout=20)



def submit_command(master: str, job: str, args: list[str], conf: dict[str, str] | None = None) -> list[str]:
    """The ``spark-submit`` command line (the pinned pyspark's own) that runs palette job
    ``job`` (``palette/jobs/<job>.py``, or an application's ``.py`` file) on ``master`` as docs/scaling.md shows: Delta's jars
    and Spark's Kafka source (when fetched) by ``--jars``, S3A's hadoop-aws (when fetched) on the
    driver's and executors' class path, Delta's SQL extension, UTC, and this interpreter —
    where palette is installed — as the executors' Python."""
    import importlib

    from .spark import delta_conf
    settings = {**delta_conf(), "spark.sql.session.timeZone": "UTC", "spark.pyspark.python": sys.executable,
                "spark.pyspark.driver.python": sys.executable, **(conf or {})}
    jars = settings.pop("spark.jars")
    return [os.path.join(spark_home(), "bin", "spark-submit"), "--master", master,
            "--jars", jars, *[a for k, v in settings.items() for a in ("--conf", f"{k}={v}")],
            job if job.endswith(".py") else importlib.import_module(f"palette.jobs.{job}").__file__, *args]


__all__ = ["free_port", "redis_server", "redis_cluster", "RedisClusterNodes", "kafka_server", "create_topics", "start_redis", "start_kitchen", "kitchen_mode",
           "kitchen_stats", "save_lookup_stage", "stop", "ServerNotStarted", "spark_cluster", "spark_home",
           "submit_command", "s3_server", "S3Endpoint", "weed_binary"]


if __name__ == "__main__":
    # python -m palette.testing kafka: a broker on loopback until interrupted (``make kafka``).
    if sys.argv[1:] not in (["kafka"], ["spark-cluster"], ["s3"]):
        sys.exit("usage: python -m palette.testing kafka|spark-cluster|s3")
    import signal
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))      # stop the servers on SIGTERM too
    if sys.argv[1] == "spark-cluster":             # ``make spark-cluster``
        with spark_cluster() as (master, ui):
            print(f"Spark standalone cluster (a master, 2 workers of 1 core) at {master}, web UI {ui}; "
                  "Ctrl-C stops it", flush=True)
            try:
                signal.pause()
            except KeyboardInterrupt:
                pass
        sys.exit(0)
    if sys.argv[1] == "s3":                        # ``make s3`` builds weed
        with s3_server() as s3:
            print(f"SeaweedFS S3 at {s3.endpoint}, bucket {s3.bucket}; Ctrl-C stops it. Its environment:", flush=True)
            print("\n".join(f"export {k}={v}" for k, v in s3.env().items()), flush=True)
            try:
                signal.pause()
            except KeyboardInterrupt:
                pass
        sys.exit(0)
    with kafka_server() as (servers, proc):
        print(f"Kafka broker (KRaft, single node) at {servers}; Ctrl-C stops it", flush=True)
        try:
            proc.wait()
        except KeyboardInterrupt:
            pass
