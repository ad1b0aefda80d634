"""A single-node Ray cluster of its own, started with ``ray start --head`` on 127.0.0.1 and stopped afterwards.

What a user's cluster looks like to ``fedray submit`` and ``ray job submit``, on one machine: used by the
integration tests and the submission benchmark. Every port is its own, so it coexists with another local Ray
cluster (a second dashboard agent on the default port 52365 would fail to start, and the Jobs API would then have
no agent to run jobs). It gets its own temp dir, so the address ``ray start`` records for later ``ray.init()`` calls
does not land in /tmp/ray, where it would send every other program on the machine to a cluster that is gone.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from fedray.cluster.runtime import GPU_VISIBILITY_ENV, LOOPBACK_ENV

BIN = Path(sys.executable).parent


@dataclass(frozen=True)
class LocalHead:
    jobs_url: str  # the Jobs API (``fedray submit --address``)
    env: dict[str, str]  # the environment to run ``fedray``/``ray`` commands against it


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for_jobs_api(url: str, head: subprocess.Popen, timeout: float) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if head.poll() is not None:
            output = head.stdout.read()[-2000:] if head.stdout else ""
            raise RuntimeError(f"ray start exited with {head.returncode}: {output}")
        try:
            with urllib.request.urlopen(f"{url}/api/version", timeout=2):
                return
        except OSError:
            time.sleep(0.5)
    raise TimeoutError(f"the Ray Jobs API at {url} did not come up in {timeout} s")


@contextmanager
def local_head(num_cpus: int = 2, timeout: float = 90) -> Iterator[LocalHead]:
    """Start the head, yield where to reach it, stop its whole process group on exit."""
    env = {**os.environ, LOOPBACK_ENV: "0", GPU_VISIBILITY_ENV: "0", "PATH": f"{BIN}:{os.environ['PATH']}"}
    dashboard_port = free_port()
    temp_dir = tempfile.mkdtemp(prefix="fr", dir="/tmp")  # short: Ray's socket paths must stay under 107 bytes
    head = subprocess.Popen(
        [str(BIN / "ray"), "start", "--head", "--block", "--node-ip-address=127.0.0.1", f"--port={free_port()}",
         "--dashboard-host=127.0.0.1", f"--dashboard-port={dashboard_port}", f"--num-cpus={num_cpus}",
         "--disable-usage-stats", f"--temp-dir={temp_dir}", f"--dashboard-agent-listen-port={free_port()}",
         f"--dashboard-agent-grpc-port={free_port()}", f"--runtime-env-agent-port={free_port()}",
         f"--metrics-export-port={free_port()}"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
    )  # fmt: skip
    url = f"http://127.0.0.1:{dashboard_port}"
    try:
        _wait_for_jobs_api(url, head, timeout)
        yield LocalHead(url, env)
    finally:
        os.killpg(head.pid, signal.SIGTERM)
        try:
            head.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(head.pid, signal.SIGKILL)
            head.wait()
        shutil.rmtree(temp_dir, ignore_errors=True)
