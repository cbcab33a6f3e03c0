"""Exercise specifications, one module per topic: ``EXERCISES = {"<topic>.<name>": Exercise}``."""
