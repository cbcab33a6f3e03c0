"""Notebook 03, part 4: is a gain more than seed noise? Mean ± std over seeds and a t-test.

With 3 seeds a student's accuracy moves by a point or more from seed to seed, so every
comparison of two training recipes reports mean ± std and a t-test verdict (Welch, or
paired by seed when both runs share seeds and batch order).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import NamedTuple

from labkit.core.errors import check_fraction, check_number


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (n-1); std is 0 for a single value.

    Taught in notebooks/03_knowledge_distillation.ipynb, "4. Does it help? A small student with few labels".
    """
    vals = _check_values(values, "values", at_least=1)
    m = sum(vals) / len(vals)
    if len(vals) == 1:
        return m, 0.0
    return m, math.sqrt(sum((v - m) ** 2 for v in vals) / (len(vals) - 1))


class Difference(NamedTuple):
    """mean(a) - mean(b) with its standard error and whether it is clear of the noise.

    Returned by difference (this module); the notebook prints its verdict.
    """

    diff: float
    se: float
    t: float
    df: float
    clear: bool
    paired: bool

    def verdict(self, a: str, b: str, unit: str = "points") -> str:
        """'a is 6.8 points above b (clear: t = 7.1, 4 dof)' or '... within noise ...'."""
        _check_verdict(a, b, unit)
        side = "above" if self.diff >= 0 else "below"
        how = "paired by seed, " if self.paired else ""
        stat = f"{how}t = {self.t:.1f}, {self.df:.0f} dof"
        if self.clear:
            return f"{a} is {abs(self.diff):.1f} {unit} {side} {b} (clear: {stat})"
        shown = round(self.diff, 1) + 0.0  # + 0.0: -0.0 prints as +0.0
        return f"{a} vs {b}: {shown:+.1f} {unit}, within noise ({stat})"


def difference(
    a: Sequence[float], b: Sequence[float], *, paired: bool = False, level: float = 0.95
) -> Difference:
    """Is mean(a) - mean(b) more than seed noise? A two-sided t-test at ``level``.

    Unpaired (Welch): se = sqrt(s_a^2 / n_a + s_b^2 / n_b), dof by Welch-Satterthwaite.
    Paired (same seeds, same batch order): d_i = a_i - b_i, se = s_d / sqrt(n), dof = n - 1.
    clear = |diff| / se > t_{(1 + level) / 2, dof}. With 3 seeds only a large gap is clear.
    Taught in notebooks/03_knowledge_distillation.ipynb, "4. Does it help? A small student with few labels".
    """
    xa, xb = _check_difference(a, b, paired, level)
    from scipy import stats  # scikit-learn's dependency, always installed with the course

    if paired:
        d = [x - y for x, y in zip(xa, xb, strict=True)]
        diff, sd = mean_std(d)
        se, df = sd / math.sqrt(len(d)), float(len(d) - 1)
    else:
        (ma, sa), (mb, sb) = mean_std(xa), mean_std(xb)
        va, vb = sa**2 / len(xa), sb**2 / len(xb)
        diff, se = ma - mb, math.sqrt(va + vb)
        df = (va + vb) ** 2 / (va**2 / (len(xa) - 1) + vb**2 / (len(xb) - 1)) if se else 1.0
    if se == 0:
        t = math.copysign(math.inf, diff) if diff else 0.0
        return Difference(diff, 0.0, t, df, diff != 0, paired)
    t = diff / se
    crit = float(stats.t.ppf((1 + level) / 2, df))
    return Difference(diff, se, t, df, abs(t) > crit, paired)


# ---- checks: bad input gets one clear error naming the parameter and the fix


def _check_values(values: object, name: str, *, at_least: int) -> list[float]:
    if isinstance(values, (str, bytes, dict)) or not isinstance(values, Iterable):
        raise ValueError(f"{name} must be a list of numbers, got {type(values).__name__}.")
    vals = list(values)
    if len(vals) < at_least:
        raise ValueError(
            f"{name} is empty: mean_std needs at least one value."
            if at_least == 1
            else f"difference needs at least 2 values (seeds) on each side, {name} has {len(vals)}."
        )
    return [check_number(v, f"{name}[{i}]") for i, v in enumerate(vals)]


def _check_difference(
    a: object, b: object, paired: object, level: object
) -> tuple[list[float], list[float]]:
    xa, xb = _check_values(a, "a", at_least=2), _check_values(b, "b", at_least=2)
    if paired and len(xa) != len(xb):
        raise ValueError(f"paired=True needs as many values in a as in b ({len(xa)} vs {len(xb)}).")
    if check_fraction(level, "level") == 0:
        raise ValueError("level must be in (0, 1), e.g. 0.95, got 0: every gap would be clear.")
    return xa, xb


def _check_verdict(a: object, b: object, unit: object) -> None:
    for name, v in (("a", a), ("b", b), ("unit", unit)):
        if not isinstance(v, str):
            raise ValueError(
                f"{name} must be a string (a name for the sentence, e.g. 'KD'), got {v!r}."
            )
