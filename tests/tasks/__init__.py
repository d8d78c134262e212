"""The task layer: the runner and the reconciler, in-process."""
