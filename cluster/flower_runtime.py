"""The parameter server's runtime when the clients are Flower silos: calls become messages through the Grid.

:class:`~fedray.server.parameter_server.ParameterServer` only needs ``handle.method.remote(*args)``, ``wait``, ``get``
and ``put``. Here a client handle is a silo (a Flower SuperNode): ``fit`` and ``evaluate`` push ``train`` and
``evaluate`` messages, the hand-shake and the rollback push ``query`` messages, and ``wait`` pulls replies until enough
have arrived or the round's time is up. The server itself lives in the ServerApp's process (as in the inline
runtime). So the round logic — sampling, timeout and quorum, validation, aggregation, checkpoints — is fedray's own,
unchanged, on Ray and across silos alike.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from flwr.app import Message
from flwr.serverapp import Grid

from fedray.cluster import flower_wire as wire
from fedray.cluster.runtime import InlineRef, InlineRuntime
from fedray.platform.errors import FedrayError

POLL_SECONDS = 0.2
MESSAGE_TYPES = {"fit": "train", "evaluate": "evaluate"}  # every other call is a fedray query


@dataclass(eq=False)  # hashed by identity, like Ray's ObjectRef
class GridRef:
    """A message sent to a silo; ``reply`` once it has been pulled."""

    message_id: str | None
    client_id: int
    call: str
    reply: Message | None = None


class Silo:
    """The handle of client ``client_id``, which runs on the SuperNode ``node_id``."""

    def __init__(self, runtime: GridRuntime, node_id: int, client_id: int) -> None:
        self.runtime, self.node_id, self.client_id = runtime, node_id, client_id

    def __getattr__(self, call: str) -> _SiloCall:
        if call.startswith("__") or call in ("runtime", "node_id", "client_id"):
            raise AttributeError(call)
        return _SiloCall(self, call)


class _SiloCall:
    def __init__(self, silo: Silo, call: str) -> None:
        self.silo, self.call = silo, call

    def remote(self, *args: Any) -> GridRef:
        return self.silo.runtime.send(self.silo, self.call, *args)


class GridRuntime(InlineRuntime):
    """Messages to silos for client calls; the server's own calls run inline, in this process."""

    mode = "flower"

    def __init__(self, grid: Grid, ttl: float) -> None:
        self.grid, self.ttl = grid, ttl

    def send(self, silo: Silo, call: str, *args: Any) -> GridRef:
        if call in MESSAGE_TYPES:
            shared, round_idx = args
            content = wire.request(shared, round_idx)
        else:
            content = wire.query(call, **{f"arg{i}": a for i, a in enumerate(args)})
        message = Message(
            content, dst_node_id=silo.node_id, message_type=MESSAGE_TYPES.get(call, "query"), ttl=self.ttl
        )
        (message_id,) = self.grid.push_messages([message])
        return GridRef(message_id, silo.client_id, call)

    def put(self, value: Any) -> Any:
        return value  # every message carries its own copy of the arrays

    def wait(self, refs: list[Any], num_returns: int, timeout: float | None) -> tuple[list[Any], list[Any]]:
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            waiting = {r.message_id: r for r in refs if isinstance(r, GridRef) and r.reply is None and r.message_id}
            if waiting:
                for reply in self.grid.pull_messages(list(waiting)):
                    waiting[reply.metadata.reply_to_message_id].reply = reply
            ready = [r for r in refs if not isinstance(r, GridRef) or r.reply is not None or r.message_id is None]
            if len(ready) >= num_returns or (deadline is not None and time.monotonic() >= deadline):
                return ready, [r for r in refs if r not in ready]
            time.sleep(POLL_SECONDS)

    def get(self, ref: Any, timeout: float | None = None) -> Any:
        timeout = self.ttl if timeout is None else timeout
        if isinstance(ref, list):
            self.wait(ref, len(ref), timeout)
            return [self.get(r, timeout=0) for r in ref]
        if isinstance(ref, InlineRef):
            return super().get(ref)
        if ref.reply is None:
            self.wait([ref], 1, timeout)
        if ref.message_id is None:
            raise FedrayError(f"silo of client {ref.client_id}: the message could not be delivered")
        if ref.reply is None:
            raise FedrayError(f"silo of client {ref.client_id}: no answer to {ref.call} within {timeout} s")
        if ref.reply.has_error():
            error = ref.reply.error
            raise FedrayError(f"silo of client {ref.client_id}: {ref.call} failed ({error.code}): {error.reason}")
        if ref.call == "fit":
            return wire.parse_fit_reply(ref.reply.content, ref.client_id)
        if ref.call == "evaluate":
            return wire.parse_eval_reply(ref.reply.content, ref.client_id)
        return wire.parse_query(ref.reply.content)

    def kill(self, handle: Any) -> None:
        """A silo belongs to its organisation: the server can only stop sending to it."""

    def total_cpus(self) -> float:
        return 1.0

    def total_gpus(self) -> float:
        return 0.0
