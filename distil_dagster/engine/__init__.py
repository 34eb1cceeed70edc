"""Execution: batches, the batch manager, the scheduler loop and worker backends."""
