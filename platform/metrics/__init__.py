"""Metric functions shared by workloads (import from the submodules)."""
