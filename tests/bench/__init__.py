"""Measurements of Corral's speed. Not tests: they report figures and assert nothing."""
