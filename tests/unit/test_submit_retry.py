import pytest

from fedray.cluster.submit import _submit_with_retry, job_entrypoint
from fedray.platform.errors import FedrayError


class FlakyJobs:
    def __init__(self, failures, message="Request failed with status code 500: No available agent to submit job"):
        self.failures, self.message, self.calls = failures, message, 0

    def submit_job(self, **job):
        self.calls += 1
        if self.calls <= self.failures:
            raise RuntimeError(self.message)
        return f"job-{self.calls}"


def test_retries_while_the_head_has_no_job_agent(monkeypatch):
    monkeypatch.setattr("fedray.cluster.submit.time.sleep", lambda s: None)
    jobs = FlakyJobs(failures=2)
    assert _submit_with_retry(jobs, entrypoint="x") == "job-3"


def test_other_refusals_and_exhausted_retries_are_one_line_errors(monkeypatch):
    monkeypatch.setattr("fedray.cluster.submit.time.sleep", lambda s: None)
    with pytest.raises(FedrayError, match="refused the job: Request failed with status code 400"):
        _submit_with_retry(FlakyJobs(1, "Request failed with status code 400: bad runtime_env"), entrypoint="x")
    with pytest.raises(FedrayError, match="No available agent"):
        _submit_with_retry(FlakyJobs(10**6), retry_for_s=0.0, entrypoint="x")


def test_the_job_runs_the_same_command_joined_to_its_cluster():
    cmd = job_entrypoint("federated", "exp.yaml", ["seed=2", "run.name=a b"])
    expected = "fedray run federated --config exp.yaml seed=2 'run.name=a b' cluster.mode=address cluster.address=auto"
    assert cmd == expected
