"""Fuzzing of every parser of untrusted input (see tests/fuzz/targets.py and docs/fuzzing.md)."""
