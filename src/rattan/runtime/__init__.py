"""Runtimes: implementations of the store and dispatcher seam (see interface.py)."""
