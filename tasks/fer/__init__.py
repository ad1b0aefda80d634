"""``fedray run fer``: KE2NT facial-expression recognition by matching image features to text embeddings of the seven
expression prompts, with its ablations and a linear-classifier baseline."""
