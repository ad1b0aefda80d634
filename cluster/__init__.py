"""The front door: CLI, runtimes, job submission and the assembly of workloads onto a runtime."""
