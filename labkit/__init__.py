"""labkit: the helper package of the Efficient Deep Learning Lab.

Core modules are imported here; topic modules are imported by the notebooks that need them
(``from labkit import quant``).
"""

from labkit import bench, checks, data, env, errors, models, plots, train
from labkit.checks import expect
from labkit.errors import MissingDependency

__version__ = "0.1.0"
__all__ = [
    "bench",
    "checks",
    "data",
    "env",
    "errors",
    "models",
    "plots",
    "train",
    "MissingDependency",
    "expect",
]
