"""Chapter 00, setup and measurement: its exercises (exercises.py).

The chapter's library is core's: labkit.bench (latency, compare, sizes, MACs) and labkit.env.
"""
