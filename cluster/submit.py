"""``fedray submit``: run a workload as a Ray job on an existing cluster and stream its logs.

The job's entrypoint is the same ``fedray run`` a user types locally, with ``cluster.mode=address`` so that the
driver joins the cluster it runs on. The config is validated here first, so a typo fails before anything is sent.
"""

from __future__ import annotations

import asyncio
import shlex
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from fedray.cluster.launch import resolve_config
from fedray.platform.errors import FedrayError

# Never uploaded with the working directory: the local environment, results and version control.
UPLOAD_EXCLUDES = [".venv", "runs", ".git", "*.egg-info", "__pycache__", ".pytest_cache", ".ruff_cache"]


def job_entrypoint(workload: str, config_file: str | None, overrides: Sequence[str]) -> str:
    """The shell command the job runs on the cluster."""
    args = ["fedray", "run", workload]
    if config_file is not None:
        args += ["--config", config_file]
    args += [*overrides, "cluster.mode=address", "cluster.address=auto"]
    return shlex.join(args)


async def _stream(client: object, job_id: str) -> None:
    async for lines in client.tail_job_logs(job_id):  # type: ignore[attr-defined]
        sys.stdout.write(lines)
        sys.stdout.flush()


def _submit_with_retry(client: object, retry_for_s: float = 60.0, **job: object) -> str:
    """Submit; while a freshly started head answers that no job agent is up yet, try again (bounded)."""
    deadline = time.monotonic() + retry_for_s
    while True:
        try:
            return client.submit_job(**job)  # type: ignore[attr-defined]
        except RuntimeError as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            if "No available agent" not in first or time.monotonic() > deadline:
                raise FedrayError(f"the Ray Jobs API refused the job: {first}") from None
            time.sleep(1.0)


def submit(
    workload: str,
    address: str,
    config_file: str | None,
    overrides: Sequence[str],
    working_dir: str = ".",
    wait: bool = True,
) -> int:
    """Submit, then (``wait``) stream the logs until the job ends; 0 when it succeeded, 1 otherwise."""
    resolve_config(workload, config_file, overrides)
    if "://" not in address:  # without a scheme Ray reads it as a cluster address and waits for its GCS
        raise FedrayError(f"--address must be the Jobs API's URL, e.g. http://127.0.0.1:8265; got {address!r}")
    if not Path(working_dir).is_dir():
        raise FedrayError(f"working directory not found: {working_dir}")
    from ray.job_submission import JobStatus, JobSubmissionClient

    try:
        client = JobSubmissionClient(address)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise FedrayError(f"cannot reach the Ray Jobs API at {address!r}: {first}") from None
    job_id = _submit_with_retry(
        client,
        entrypoint=job_entrypoint(workload, config_file, overrides),
        runtime_env={"working_dir": working_dir, "excludes": UPLOAD_EXCLUDES},
    )
    print(f"submitted job {job_id} to {address}", file=sys.stderr)
    if not wait:
        return 0
    asyncio.run(_stream(client, job_id))
    status = client.get_job_status(job_id)
    print(f"job {job_id} {status.value}", file=sys.stderr)
    return 0 if status == JobStatus.SUCCEEDED else 1
