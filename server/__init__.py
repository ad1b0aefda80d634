"""The parameter server: client sampling, update validation, aggregation strategies and the round."""
