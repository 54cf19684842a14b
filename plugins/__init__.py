"""Corral's built-in scheduling policies, as pluggy plugins over `core`'s hook specs."""
