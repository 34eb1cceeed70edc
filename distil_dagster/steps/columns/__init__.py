"""Column operations: keep, group, combine, expand."""
