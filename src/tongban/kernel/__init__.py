"""The kernel every context is built on: the registry of contexts and the node that
composes them (and, beside them, lifecycle, history and numbering)."""
