"""``fedray run distill``: TAD-SR one-step distillation of a trained ``sr`` teacher, and its ablations."""
