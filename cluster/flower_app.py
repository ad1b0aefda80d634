"""fedray as a Flower app: ``server_app`` drives the federation, ``client_app`` is one silo's client.

Deployment: a Flower SuperLink runs ``server_app`` (fedray's driver and parameter server, the run directory on the
server's machine); each organisation runs a Flower SuperNode with ``client_app`` on its own machine, with its own
data, and keeps its personal state there between rounds. ``fedray serve`` and ``fedray join``
(:mod:`fedray.cluster.flower_deploy`) start both sides; the apps are plain Flower apps, so ``flwr run`` works too.

The run's resolved fedray config travels in the run config (``fedray-config``, YAML). A SuperNode's node config
names its client (``client-id``), where it keeps state (``state-dir``) and its own overrides (``overrides``, e.g.
``data.path=/silo/frames``): the data never leaves the silo, and only the silo decides where it lives.
"""

from __future__ import annotations

import shlex
import shutil
import time
import traceback
from pathlib import Path
from typing import Any

from flwr.app import Context, Message
from flwr.clientapp import ClientApp
from flwr.serverapp import Grid, ServerApp

from fedray.clients.config import ClientSpec
from fedray.clients.federated_client import FederatedClient
from fedray.cluster import flower_wire as wire
from fedray.cluster.federation import Federation, drive, resume_point
from fedray.cluster.federation_config import FederatedConfig
from fedray.cluster.flower_runtime import GridRuntime, Silo
from fedray.platform.config import load_config, to_yaml
from fedray.platform.data.federated import FederatedData
from fedray.platform.data.silo_cache import cached_silo_data
from fedray.platform.errors import FedrayError
from fedray.platform.rundir import RunDir

CONFIG_KEY = "fedray-config"
NO_QUERY_HANDLER = "No query function registered"  # what a ClientApp without a query function answers (flwr 1.42)
WORKLOAD = "federated"

server_app = ServerApp()
client_app = ClientApp()


def config_from_text(text: str, overrides: list[str] | tuple[str, ...] = ()) -> FederatedConfig:
    """The federated config a run carries as YAML, with a silo's own overrides on top."""
    return load_config(FederatedConfig, overrides=list(overrides), text=text)


# --- the server side -----------------------------------------------------------------------------------------------


def connect_silos(runtime: GridRuntime, cfg: FederatedConfig, fresh: bool) -> Federation:
    """Wait for ``clients.num_clients`` SuperNodes, shake hands, and give every silo its client id.

    A fedray silo answers with its client id and the shape of its data; a plain Flower ``ClientApp`` (no query
    handler) is given the free ids in node order. ``fresh`` tells fedray silos to forget the personal state of an
    earlier run with the same name.
    """
    wanted, grid = cfg.clients.num_clients, runtime.grid
    deadline = time.monotonic() + cfg.clients.startup_timeout_s
    while len(grid.get_node_ids()) < wanted and time.monotonic() < deadline:
        time.sleep(1.0)
    nodes = sorted(grid.get_node_ids())
    if len(nodes) != wanted:
        raise FedrayError(
            f"{len(nodes)} SuperNodes connected within {cfg.clients.startup_timeout_s:g} s, "
            f"clients.num_clients={wanted} expected"
        )
    hellos = [Silo(runtime, node, -1).ready.remote(fresh) for node in nodes]
    runtime.wait(hellos, len(hellos), cfg.clients.startup_timeout_s)
    ids: dict[int, int] = {}
    answers: list[dict[str, Any]] = []
    for node, hello in zip(nodes, hellos, strict=True):
        try:
            answer = runtime.get(hello, timeout=0)
        except FedrayError as exc:
            if NO_QUERY_HANDLER in str(exc):
                continue  # a plain Flower client
            raise FedrayError(f"the silo on node {node} failed to start: {exc}") from None
        ids[node] = int(answer["client_id"])
        answers.append(answer)
    if len(set(ids.values())) != len(ids) or not set(ids.values()) <= set(range(wanted)):
        raise FedrayError(f"silos claim client ids {sorted(ids.values())}; each of 0..{wanted - 1} exactly once")
    free = iter(sorted(set(range(wanted)) - set(ids.values())))
    for node in nodes:
        if node not in ids:
            ids[node] = next(free)
    by_client = sorted(nodes, key=ids.__getitem__)
    clients = [Silo(runtime, node, ids[node]) for node in by_client]
    if not answers:
        raise FedrayError("no fedray silo answered the hand-shake; at least one must say what its data looks like")
    shapes = {(a["in_channels"], a["num_classes"]) for a in answers}
    if len(shapes) != 1:
        raise FedrayError(f"silos disagree on (input channels, classes): {sorted(shapes)}")
    in_channels, num_classes = shapes.pop()
    placement = {"placement": "flower", "workers": wanted, "nodes": {ids[n]: n for n in nodes}, "max_concurrent": None}
    facts = {
        "dataset": answers[0]["dataset"],
        "data_skipped_images": sum(int(a.get("skipped_images", 0)) for a in answers),
        "plain_flower_clients": wanted - len(answers),
    }
    return Federation(clients, clients, placement, int(in_channels), int(num_classes), facts)


@server_app.main()
def serve_federation(grid: Grid, context: Context) -> None:
    """The federated workload's driver, with silos for clients; results go to the run directory as on Ray."""
    started = time.perf_counter()
    cfg = config_from_text(str(context.run_config[CONFIG_KEY]))
    run_dir = RunDir.create(cfg.run.root, WORKLOAD, cfg.run.name)
    run_dir.write_config(to_yaml(cfg))
    try:
        resume_from = resume_point(cfg, run_dir)
        runtime = GridRuntime(grid, ttl=cfg.server.round_timeout_s)
        federation = connect_silos(runtime, cfg, fresh=resume_from is None)
        summary = drive(cfg, runtime, run_dir, federation, resume_from, started)
    except Exception as exc:  # the ServerApp's output is not shown anywhere: leave the reason in the run directory
        failure = {"status": "failed", "error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc()}
        run_dir.write_summary({"workload": WORKLOAD, **failure})
        raise
    summary["run_dir"] = str(run_dir.path)
    run_dir.write_summary(summary)


# --- the silo side -------------------------------------------------------------------------------------------------


class SiloClient:
    """What one message to a silo needs: its config, its data and its client (a ClientApp is a process per message;
    the personal state lives on disk under ``state-dir``, so nothing is lost between messages)."""

    def __init__(self, context: Context) -> None:
        node = context.node_config
        if "client-id" not in node:
            raise FedrayError("the SuperNode's node config has no client-id (start it with `fedray join --client-id`)")
        self.client_id = int(node["client-id"])
        overrides = shlex.split(str(node.get("overrides", "")))
        self.cfg = config_from_text(str(context.run_config[CONFIG_KEY]), overrides)
        self.state_dir = Path(str(node.get("state-dir", "fedray-state"))).expanduser().resolve() / self.cfg.run.name

    def data(self) -> FederatedData:
        """This silo's data (``clients`` holds its client only), prepared by the first message that needs it."""
        cfg = self.cfg
        data, _ = cached_silo_data(cfg.data, cfg.clients.num_clients, self.client_id, cfg.seed, self.state_dir)
        return data

    def client(self) -> FederatedClient:
        cfg = self.cfg
        spec = ClientSpec(
            cfg.model, cfg.clients, cfg.seed, cfg.method, cfg.strategy == "fedprox", cfg.privacy, str(self.state_dir)
        )
        return FederatedClient(self.client_id, self.data().clients[0], spec)


@client_app.train()
def train(msg: Message, context: Context) -> Message:
    shared, round_idx = wire.parse_request(msg.content)
    result = SiloClient(context).client().fit(shared, round_idx)
    return Message(wire.fit_reply(result), reply_to=msg)


@client_app.evaluate()
def evaluate(msg: Message, context: Context) -> Message:
    shared, round_idx = wire.parse_request(msg.content)
    result = SiloClient(context).client().evaluate(shared, round_idx)
    return Message(wire.eval_reply(result), reply_to=msg)


@client_app.query()
def query(msg: Message, context: Context) -> Message:
    """fedray's hand-shake (``ready``: client id and data shape; a fresh run forgets old state) and ``rollback``."""
    call = wire.parse_query(msg.content)
    silo = SiloClient(context)
    if call.get("call") == "ready":
        if call.get("arg0"):
            shutil.rmtree(silo.state_dir, ignore_errors=True)
        data = silo.data()
        return Message(
            wire.answer(
                client_id=silo.client_id,
                in_channels=data.in_channels,
                num_classes=data.num_classes,
                dataset=data.name,
                num_train=data.clients[0].num_train,
                skipped_images=data.skipped_images,
            ),
            reply_to=msg,
        )
    if call.get("call") == "rollback":
        return Message(wire.answer(state_round=silo.client().rollback(int(call["arg0"]))), reply_to=msg)
    raise FedrayError(f"unknown fedray query {call.get('call')!r}")
