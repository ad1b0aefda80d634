"""Optimisers and update transforms shared by workloads (import from the submodules)."""
