"""Both sides of a cross-silo federation over Flower: ``fedray serve`` and ``fedray join``.

``serve`` starts a Flower SuperLink on this machine (TLS with the given certificate, SuperNode authentication on,
state in a SQLite file, no per-run dependency installation), registers the silos' public keys, starts fedray's
ServerApp as a Flower run, shows the rounds as the run directory records them, and stops the SuperLink at the end.
``join`` starts one silo's SuperNode with fedray's ClientApp, its client id, its private key and its own overrides.

Flower's command line tools (``flower-superlink``, ``flower-supernode``, ``flwr``) are the ones installed beside this
Python; each gets its own ``FLWR_HOME`` and telemetry off. Nothing here listens anywhere but on the address given.
"""

from __future__ import annotations

import json
import os
import signal
import ssl
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fedray.cluster.federation_config import FederatedConfig
from fedray.cluster.flower_app import CONFIG_KEY, WORKLOAD
from fedray.platform.config import to_yaml
from fedray.platform.errors import FedrayError
from fedray.platform.rundir import RunDir

CONNECTION = "fedray"  # the SuperLink connection's name in FLWR_HOME/config.toml
STATUS_POLL_S = 10.0
INSECURE_WARNING = (
    "fedray: warning: --insecure: traffic is not encrypted and SuperNodes are not authenticated; "
    "use it only on a trusted loopback"
)


def flower_env(home: Path) -> dict[str, str]:
    """This Python's tools first on PATH (Flower starts its helpers by name), a private FLWR_HOME, no telemetry."""
    home.mkdir(parents=True, exist_ok=True)
    bin_dir = str(Path(sys.executable).parent)
    return {
        **os.environ,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
        "FLWR_HOME": str(home.resolve()),
        "FLWR_TELEMETRY_ENABLED": "0",
        "FLWR_DISABLE_UPDATE_CHECK": "1",
    }


def stop(proc: subprocess.Popen, grace_s: float = 10.0) -> None:
    """SIGTERM the process group (a Flower process starts helpers of its own), then SIGKILL what is left."""
    if proc.poll() is not None:
        return
    for sig, wait in ((signal.SIGTERM, grace_s), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


@dataclass
class Link:
    """Where the SuperLink listens and how to trust it."""

    host: str
    port: int
    ca: Path | None  # None: --insecure

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"


def wait_until_healthy(
    link: Link, proc: subprocess.Popen | None, timeout_s: float = 60.0, log: Path | None = None
) -> None:
    """Poll the SuperLink's ``/health`` endpoint (over TLS, checking its certificate against the CA); a SuperLink
    that exits or never answers is a one-line error with the last reason seen and where its log is."""
    scheme = "http" if link.ca is None else "https"
    context = None if link.ca is None else ssl.create_default_context(cafile=str(link.ca))
    see = f"; see {log}" if log is not None else ""
    last = "no answer"
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise FedrayError(f"the SuperLink exited with status {proc.returncode} while starting{see}")
        try:
            with urllib.request.urlopen(f"{scheme}://{link.address}/health", context=context, timeout=2) as reply:
                if reply.status == 200:
                    return
        except OSError as exc:  # refused while it starts; a certificate the CA does not vouch for stays
            last = str(getattr(exc, "reason", exc)) or type(exc).__name__
        time.sleep(0.5)
    raise FedrayError(f"the SuperLink at {link.address} did not answer within {timeout_s:g} s (last: {last}){see}")


def start_superlink(link: Link, credentials: Path | None, home: Path, authenticate: bool) -> subprocess.Popen:
    cmd = ["flower-superlink", "--host", link.host, "--port", str(link.port), "--database", str(home / "state.db"),
           "--disable-runtime-dependency-installation"]  # fmt: skip
    if credentials is None:
        cmd.append("--insecure")
    else:
        cmd += ["--ssl-ca-certfile", str(credentials / "ca.crt"), "--ssl-certfile", str(credentials / "server.pem"),
                "--ssl-keyfile", str(credentials / "server.key")]  # fmt: skip
        if authenticate:
            cmd.append("--enable-supernode-auth")
    home.mkdir(parents=True, exist_ok=True)
    log = open(home / "superlink.log", "ab")  # noqa: SIM115 - the child writes to it for as long as it runs
    return subprocess.Popen(cmd, env=flower_env(home), stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def write_connection(home: Path, link: Link) -> None:
    """The ``flwr`` CLI's connection to the SuperLink (its config file in FLWR_HOME)."""
    lines = ["[superlink]", f'default = "{CONNECTION}"', f"[superlink.{CONNECTION}]", f'address = "{link.address}"']
    lines.append("insecure = true" if link.ca is None else f"root-certificates = {json.dumps(str(link.ca.resolve()))}")
    home.mkdir(parents=True, exist_ok=True)
    (home / "config.toml").write_text("\n".join(lines) + "\n")


def flwr(home: Path, *args: str) -> dict[str, Any]:
    """Run a ``flwr`` CLI command against the connection and return its JSON answer."""
    proc = subprocess.run(["flwr", *args, "--format", "json"], env=flower_env(home), capture_output=True, text=True)
    try:
        answer = json.loads(proc.stdout)
    except json.JSONDecodeError:
        answer = {"success": False, "error-message": (proc.stdout + proc.stderr).strip()[-500:]}
    if not answer.get("success", False):
        raise FedrayError(f"flwr {args[0]} failed: {answer.get('error-message', answer)}")
    return answer


def register_silos(home: Path, public_keys: list[Path]) -> dict[str, int]:
    """Register each silo's public key with the SuperLink; SuperNodes without a registered key are refused."""
    nodes = {}
    for key in public_keys:
        answer = flwr(home, "supernode", "register", str(key), CONNECTION, "--name", key.stem)
        nodes[key.stem] = int(answer["node-id"])
    return nodes


def write_app(folder: Path, cfg: FederatedConfig) -> Path:
    """A Flower app folder for fedray's apps (already installed), carrying the run's resolved config."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "pyproject.toml").write_text(
        "\n".join(
            [
                "[project]",
                'name = "fedray-federated"',
                'version = "1.0.0"',
                "[tool.flwr.app]",
                'publisher = "fedray"',
                "[tool.flwr.app.components]",
                'serverapp = "fedray.cluster.flower_app:server_app"',
                'clientapp = "fedray.cluster.flower_app:client_app"',
                "[tool.flwr.app.config]",
                f"{CONFIG_KEY} = {json.dumps(to_yaml(cfg))}",
                "",
            ]
        )
    )
    return folder


def _show_new_rounds(run_dir: RunDir, shown: int, total: int) -> int:
    records = run_dir.records()  # the SuperLink's app may be appending the next line right now
    for record in records[shown:]:
        details = "  ".join(f"{k}={record[k]:.4g}" for k in ("train_loss", "mean_auc", "seconds") if k in record)
        print(f"round {record['round']}/{total}  {details}", file=sys.stderr, flush=True)
    return len(records)


def _has_fresh_summary(run_dir: RunDir, started: float) -> bool:
    """Whether this run (begun at ``started``, wall clock) wrote its metrics.json, not an earlier run of the name."""
    summary_file = run_dir.summary_file
    return summary_file.is_file() and summary_file.stat().st_mtime >= started


def run_federation(home: Path, cfg: FederatedConfig, timeout_s: float | None = None) -> dict[str, Any]:
    """Start fedray's ServerApp as a Flower run, follow its rounds, and return its metrics.json summary."""
    run_dir = RunDir(Path(cfg.run.root) / WORKLOAD / cfg.run.name)
    started = time.time()
    run_id = flwr(home, "run", str(write_app(home / "app", cfg)), CONNECTION)["run-id"]
    shown, next_status = 0, time.monotonic() + STATUS_POLL_S
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    while True:
        shown = _show_new_rounds(run_dir, shown, cfg.server.rounds)
        if _has_fresh_summary(run_dir, started):
            summary = json.loads(run_dir.summary_file.read_text())
            if summary.get("status") == "failed":
                raise FedrayError(f"the federation failed: {summary.get('error')}")
            run = flwr(home, "ls", CONNECTION, "--run-id", str(run_id))["runs"][0]
            summary["flower_run"] = {"run_id": run_id, "network_traffic": run.get("network-traffic")}
            run_dir.write_summary(summary)
            return summary
        if time.monotonic() >= next_status:
            status = flwr(home, "ls", CONNECTION, "--run-id", str(run_id))["runs"][0]["status"]
            if status.startswith("finished"):
                # The ServerApp writes the summary before it finishes, so it may have landed after the check above:
                # one more look settles whether the run left results.
                if _has_fresh_summary(run_dir, started):
                    continue
                raise FedrayError(f"Flower run {run_id} ended ({status}) without results; see `flwr log {run_id}`")
            next_status = time.monotonic() + STATUS_POLL_S
        if deadline is not None and time.monotonic() > deadline:
            raise FedrayError(f"Flower run {run_id} did not finish within {timeout_s:g} s")
        time.sleep(0.5)


def serve(
    cfg: FederatedConfig,
    link: Link,
    credentials: Path | None,
    authorized_keys: list[Path],
    home: Path,
) -> dict[str, Any]:
    """Start a SuperLink, register the silos, run the federation, stop the SuperLink; the run's summary."""
    if credentials is None:
        print(INSECURE_WARNING, file=sys.stderr)
    elif not authorized_keys:
        raise FedrayError("no silo public keys to register (--authorized-keys DIR with <silo>.pub files)")
    superlink = start_superlink(link, credentials, home, authenticate=credentials is not None)
    try:
        wait_until_healthy(link, superlink, log=home / "superlink.log")
        write_connection(home / "cli", link)
        if credentials is not None:
            nodes = register_silos(home / "cli", authorized_keys)
            print(f"registered silos: {', '.join(nodes)}", file=sys.stderr)
        return run_federation(home / "cli", cfg)
    finally:
        stop(superlink)


def supernode_command(
    link: Link, client_id: int, key: Path | None, state_dir: Path, port: int, overrides: list[str]
) -> list[str]:
    """``flower-supernode`` for one silo: its client id, state folder and overrides travel in its node config."""
    node_config = " ".join(
        [
            f"client-id={client_id}",
            f"state-dir={json.dumps(str(state_dir.resolve()))}",
            f"overrides={json.dumps(' '.join(overrides))}",
        ]
    )
    cmd = ["flower-supernode", "--superlink", link.address, "--port", str(port), "--node-config", node_config]
    if link.ca is None:
        return [*cmd, "--insecure"]
    cmd += ["--root-certificates", str(link.ca)]
    return [*cmd, "--auth-supernode-private-key", str(key)] if key is not None else cmd


def join(
    link: Link,
    client_id: int,
    key: Path | None,
    state_dir: Path,
    port: int,
    overrides: list[str],
    retry_s: float = 120.0,
) -> int:
    """Run this silo's SuperNode until it stops; its exit status.

    A SuperNode that the SuperLink refuses exits at once: its key may not be registered yet, or the SuperLink still
    counts an earlier, killed instance of this silo as online. So a failed start is retried for ``retry_s`` seconds.
    """
    if link.ca is None:
        print(INSECURE_WARNING, file=sys.stderr)
    home = state_dir / "flwr-home"
    cmd = supernode_command(link, client_id, key, state_dir, port, overrides)
    deadline = time.monotonic() + retry_s
    while True:
        proc = subprocess.Popen(cmd, env=flower_env(home), start_new_session=True)
        try:
            status = proc.wait()
        finally:
            stop(proc)
        if status == 0 or time.monotonic() >= deadline:
            return status
        print(
            f"fedray: the SuperNode exited with status {status}; retrying (registered? still online?)", file=sys.stderr
        )
        time.sleep(5.0)
