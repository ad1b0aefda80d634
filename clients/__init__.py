"""Federated and continual-learning clients: plain training functions and the actor classes that use them."""
