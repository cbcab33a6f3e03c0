"""Shared plumbing that two or more topics use and that knows no topic."""
