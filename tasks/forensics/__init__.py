"""Pieces the forgery-analysis workloads share (fairness, attack): grouped faces, and detectors trained centrally or
loaded from a ``federated`` run."""
