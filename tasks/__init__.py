"""Vision workloads that run as Ray tasks (purify, ood, sr, distill, fer, compose, attack, fairness)."""
