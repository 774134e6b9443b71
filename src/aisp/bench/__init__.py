"""Benchmarks behind ``aisp bench``: one module per area, each with ``run(quick=False) -> dict``.

Machines are shared and noisy: every benchmark compares AISP with its baseline side by side in the
same run and reports medians and ratios.
"""
