"""``fedray run compose``: Foodfusion image composition (fusion cross-attention + content-structure control) and its
baselines."""
