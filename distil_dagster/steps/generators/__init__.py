"""Generator steps (data loaders)."""
