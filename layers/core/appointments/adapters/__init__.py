"""Adapters: the only modules that talk to AWS (and the real clock)."""
