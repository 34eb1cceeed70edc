"""Persistence: the signature folder, the batch store, the commit journal, the run lock."""
