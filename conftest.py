"""Shared test setup: reproducible output (no progress bars, static widgets) and 2 threads."""

import os

import torch

os.environ["LABKIT_QUIET"] = "1"  # inherited by the nbval kernels too
torch.set_num_threads(2)
