"""Calibration: choosing the range [lo, hi] an activation is quantised over.

Observers see the calibration data batch by batch (``observe(x)`` any number of times) and
then give ``range(bits, symmetric)`` and ``qparams(bits, symmetric)``:

    MinMax      the smallest and largest value seen (per tensor or per channel);
    Percentile  a quantile of |x| (or of both tails), read from a histogram;
    Entropy     TensorRT's KL search: the clipping that keeps the histogram's shape best;
    MSE         the range that minimises the squared quantisation error over the histogram.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from fractions import Fraction

import numpy as np
import torch
from torch import nn

from labkit.core.errors import check_bits, check_int, check_nonempty, check_positive, check_tensor
from labkit.quant.affine import QParams, compute_qparams, fake_quantize


class MinMaxObserver:
    """Range = the smallest and largest value seen (per tensor, or per channel on ``axis``).

    ``observe(x)`` any number of times, then ``qparams(bits, symmetric)``.

    Taught in notebooks/05_quantization_math.ipynb, "Calibration: choosing the range of an activation".
    """

    def __init__(self, axis: int | None = None) -> None:
        self.axis = _check_observer_axis(axis)
        self.min_val: torch.Tensor | None = None
        self.max_val: torch.Tensor | None = None

    def observe(self, x: torch.Tensor) -> MinMaxObserver:
        x = _check_minmax_observe(self, x)  # detached, finite, non-empty
        if self.axis is None:
            lo, hi = x.min().reshape(1), x.max().reshape(1)  # (1,)
        else:
            dims = [d for d in range(x.ndim) if d != self.axis % x.ndim]
            lo, hi = x.amin(dim=dims), x.amax(dim=dims)  # (C,)
        lo, hi = lo.double(), hi.double()
        if self.min_val is None or self.max_val is None:
            self.min_val, self.max_val = lo, hi
        else:
            self.min_val = torch.minimum(self.min_val, lo)
            self.max_val = torch.maximum(self.max_val, hi)
        return self

    def range(self, bits: int = 8, symmetric: bool = False) -> tuple[float, float]:
        """The clipping range (lo, hi) the qparams will cover (per tensor only)."""
        lo, hi = _check_observed(self, per_tensor=True, bits=bits)  # (1,) each
        if symmetric:
            m = max(-float(lo), float(hi))
            return -m, m
        return float(lo), float(hi)

    def qparams(self, bits: int = 8, symmetric: bool = False) -> QParams:
        lo, hi = _check_observed(self)  # (1,) or (C,)
        if self.axis is None:
            return compute_qparams(float(lo), float(hi), bits, symmetric)
        return compute_qparams(lo, hi, bits, symmetric)


class HistogramObserver:
    """Base of the histogram calibrators: a signed histogram of everything observed.

    The histogram has ``2 * bins`` equal bins over [-R, R]. R starts as the first batch's
    max |x| and doubles when a later batch goes beyond it; doubling merges neighbouring bin
    pairs, so no count is ever re-estimated. The exact min and max are kept too.
    Subclasses choose the clipping range in ``range(bits, symmetric)``.

    Used by PercentileObserver, EntropyObserver and MSEObserver (labkit/quant/calibration.py).
    """

    max_bins = 2**20  # three float64 arrays of 2 * bins: refuse before allocating GBs

    def __init__(self, bins: int = 2048) -> None:
        self.bins = _check_bins(bins, self.max_bins)
        self.hist = torch.zeros(2 * bins, dtype=torch.float64)
        # per-bin count and sum of the values (own binning, consistent with each other):
        # their ratio is each bin's mean, the data's own value when a bin holds one value
        self._n = torch.zeros(2 * bins, dtype=torch.float64)
        self._sum = torch.zeros(2 * bins, dtype=torch.float64)
        self.radius = 0.0
        self.min_val = math.inf
        self.max_val = -math.inf

    def observe(self, x: torch.Tensor) -> HistogramObserver:
        t = _check_values(x, "x")  # (N,) float64
        self.min_val = min(self.min_val, float(t.min()))
        self.max_val = max(self.max_val, float(t.max()))
        amax = float(t.abs().max())
        if self.radius == 0.0:
            self.radius = amax if amax > 0 else 1.0
        while amax > self.radius:
            pad = torch.zeros(self.bins // 2, dtype=torch.float64)
            # 2B bins -> B bins over [-R, R], padded to 2B bins over [-2R, 2R]
            self.hist, self._n, self._sum = (
                torch.cat([pad, h.reshape(-1, 2).sum(1), pad])
                for h in (self.hist, self._n, self._sum)
            )
            self.radius *= 2
        self.hist += torch.histc(t, 2 * self.bins, -self.radius, self.radius).double()
        idx = ((t + self.radius) / self.width).floor().clamp(0, 2 * self.bins - 1).long()  # (N,)
        self._n += torch.bincount(idx, minlength=2 * self.bins).double()
        self._sum += torch.bincount(idx, weights=t, minlength=2 * self.bins)
        return self

    def means(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(mean value, count) of every non-empty bin, float64: the data as the search sees it."""
        keep = self._n > 0
        return self._sum[keep] / self._n[keep], self._n[keep]

    @property
    def width(self) -> float:
        """Width of one histogram bin (same unit as x)."""
        return self.radius / self.bins

    def abs_hist(self) -> torch.Tensor:
        """Histogram of |x|: bins bins over [0, R], bin i covers [i w, (i + 1) w]."""
        b = self.bins
        return self.hist[b:] + self.hist[:b].flip(0)

    def range(self, bits: int = 8, symmetric: bool = False) -> tuple[float, float]:
        """The clipping range (lo, hi) the subclass's rule picks for ``bits``-bit codes."""
        bits = _check_ready(self, bits)
        return self._range(bits, symmetric)

    def _range(self, bits: int, symmetric: bool) -> tuple[float, float]:
        raise NotImplementedError

    def qparams(self, bits: int = 8, symmetric: bool = False) -> QParams:
        lo, hi = self.range(bits, symmetric)
        return compute_qparams(lo, hi, bits, symmetric)

    def _clip_to_data(self, lo: float, hi: float) -> tuple[float, float]:
        return max(lo, min(self.min_val, 0.0)), min(hi, max(self.max_val, 0.0))


class PercentileObserver(HistogramObserver):
    """Range = the ``percentile`` of |x| (symmetric) or the two tails of x (asymmetric).

    symmetric:  T = quantile_p(|x|), range (-T, T);
    asymmetric: range (quantile_(1-p)/2 (x), quantile_(1+p)/2 (x)), i.e. (100 - p)/2 % cut
    from each tail, the convention of ONNX Runtime's percentile calibrator. Quantiles are read
    from the histogram (resolution: one bin) and never go beyond the data's min/max.

    Taught in notebooks/05_quantization_math.ipynb, "Calibration: choosing the range of an activation".
    """

    def __init__(self, percentile: float = 99.99, bins: int = 2048) -> None:
        self.percentile = _check_percentile(percentile)
        super().__init__(bins)

    def _first_bin_reaching(self, hist: torch.Tensor, fraction: Fraction) -> int:
        """The first bin whose cumulative count reaches ceil(fraction * N) (at least 1).

        Ranks are computed with exact integers: p / 100 in floating point can land past
        k / N (99.9 / 100 is stored as 0.9990000000000001 > 999 / 1000) and pick the next bin.
        """
        counts = torch.cumsum(hist, 0)  # float64 holding integers (exact below 2^53)
        k = max(1, math.ceil(fraction * int(counts[-1])))
        return int(torch.searchsorted(counts, torch.tensor([float(k)], dtype=torch.float64)))

    def _range(self, bits: int, symmetric: bool) -> tuple[float, float]:
        p = Fraction(repr(self.percentile)) / 100  # the decimal the user wrote, exactly
        w = self.width
        if symmetric:
            idx = self._first_bin_reaching(self.abs_hist(), p)
            t = min((idx + 1) * w, max(-self.min_val, self.max_val))
            return -t, t
        i_lo = self._first_bin_reaching(self.hist, (1 - p) / 2)
        i_hi = self._first_bin_reaching(self.hist, 1 - (1 - p) / 2)
        lo = -self.radius + i_lo * w
        hi = -self.radius + (i_hi + 1) * w
        return self._clip_to_data(lo, hi)


def kl_threshold(hist: torch.Tensor, num_quantized_bins: int = 128) -> int:
    """TensorRT's entropy calibration on a histogram of |x|: the best number of bins to keep.

    For every candidate i in [num_quantized_bins, len(hist)]:
      P = hist[:i] with the outliers sum(hist[i:]) added to its last bin (what clipping at
          edge i does to the distribution);
      Q = hist[:i] merged into num_quantized_bins equal groups (bin j goes to group
          j * num_quantized_bins // i), each group's mass spread evenly over its non-empty
          bins (what quantising [0, edge i] with that many levels keeps);
      KL(P || Q) = sum P log(P / Q) after normalising both (bins where P = 0 contribute 0,
      Q = 0 where P > 0 is smoothed with a tiny eps).
    Returns the i with the smallest KL; the threshold is i * bin_width. (MXNet and ONNX
    Runtime put the remainder of i // num_quantized_bins into the last group instead; for
    i < 2 num_quantized_bins that makes Q almost a copy of P and biases the search towards
    the smallest candidates.)

    Taught in notebooks/05_quantization_math.ipynb, "Exercise 4: KL threshold search".
    """
    h = _check_kl_threshold(hist, num_quantized_bins)  # (n,) float64 counts
    n = h.size
    best_i, best_kl = n, math.inf
    tail = np.concatenate([np.cumsum(h[::-1])[::-1], [0.0]])  # tail[i] = sum(h[i:])
    for i in range(num_quantized_bins, n + 1):
        p = h[:i].copy()  # (i,)
        p[-1] += tail[i]
        groups = np.arange(i) * num_quantized_bins // i  # equal groups, as NVIDIA's toolkit
        nonzero = h[:i] != 0
        mass = np.bincount(groups, weights=h[:i], minlength=num_quantized_bins)
        count = np.bincount(groups, weights=nonzero, minlength=num_quantized_bins)
        q = np.where(nonzero, mass[groups] / np.maximum(count[groups], 1), 0.0)  # (i,)
        kl = _kl(p, q)
        if kl < best_kl:
            best_kl, best_i = kl, i
    return best_i


def _kl(p: np.ndarray, q: np.ndarray, eps: float = 1e-10) -> float:
    """KL(P || Q) of two unnormalised histograms; empty Q bins under P mass get eps."""
    p = p / p.sum()
    q = q / q.sum() if q.sum() > 0 else q
    mask = p > 0
    qm = np.where(q[mask] > 0, q[mask], eps)
    return float(np.sum(p[mask] * np.log(p[mask] / qm)))


class EntropyObserver(HistogramObserver):
    """KL-divergence calibration (TensorRT-style) on the histogram of |x|.

    The threshold T = kl_threshold(hist of |x| up to max |x|, 2^(bits-1)) * bin_width
    minimises KL(P || Q) between the clipped distribution and its quantised version.
    symmetric: (-T, T); asymmetric: (max(min x, -T), min(max x, T)), e.g. (0, T) after ReLU.

    Taught in notebooks/05_quantization_math.ipynb, "Calibration: choosing the range of an activation".
    """

    max_bins = 2**14  # kl_threshold is quadratic in the bins: about 3 s at 2**14, minutes beyond

    def __init__(self, bins: int = 2048) -> None:
        super().__init__(bins)
        self._cache: dict[tuple[int, float, float], float] = {}

    def _range(self, bits: int, symmetric: bool) -> tuple[float, float]:
        levels = min(2 ** (bits - 1), self.bins)
        key = (levels, float(self.hist.sum()), self.radius)
        if key not in self._cache:
            # candidates stop at the largest observed |x|: the empty bins a doubled radius
            # leaves above it clip nothing, they only coarsen Q and bias the search upwards
            h = self.abs_hist()
            h = h[: max(int(torch.nonzero(h).max()) + 1, levels)]
            self._cache[key] = kl_threshold(h, levels) * self.width
        t = self._cache[key]
        if symmetric:
            return -t, t
        return self._clip_to_data(-t, t)


class MSEObserver(HistogramObserver):
    """Range that minimises the mean squared quantisation error over the histogram.

    Candidates shrink the min/max range: (a lo, a hi) for a in a grid over (0, 1], plus every
    a that puts the range's end exactly on one of the data's own (non-empty bin) values
    (the largest ``max_data_candidates`` of them): a grid of max/200 alone cannot clip an outlier
    that lies within 0.5 % of the maximum (NVIDIA pytorch-quantization's calibrator test).
    Each candidate is scored by sum_bins count * (c - fake_quantize(c))^2 over the bins' mean
    values c (a bin's mean is the data's own value when the bin holds one distinct value).

    Taught in notebooks/05_quantization_math.ipynb, "Calibration: choosing the range of an activation".
    """

    def __init__(self, bins: int = 2048, grid: int = 200, max_data_candidates: int = 64) -> None:
        self.grid, self.max_data_candidates = _check_mse(grid, max_data_candidates)
        super().__init__(bins)

    def candidates(self, symmetric: bool = False) -> torch.Tensor:
        """The shrink factors a in (0, 1] that are tried (float64, sorted, unique)."""
        lo0, hi0 = min(self.min_val, 0.0), max(self.max_val, 0.0)
        m = max(-lo0, hi0)
        grid = torch.linspace(1.0 / self.grid, 1.0, self.grid, dtype=torch.float64)
        data, _ = self.means()
        # the data's own values on the side that sets the range (both sides if symmetric)
        side = data.abs() if symmetric else (data if hi0 >= -lo0 else -data)
        side = side[side > 0].unique()[-self.max_data_candidates :] if m > 0 else side[:0]
        own = (side / m).clamp(max=1.0) if m > 0 else side
        return torch.cat([grid, own]).unique()

    def _range(self, bits: int, symmetric: bool) -> tuple[float, float]:
        lo0, hi0 = min(self.min_val, 0.0), max(self.max_val, 0.0)
        if symmetric:
            m = max(-lo0, hi0)
            lo0, hi0 = -m, m
        c, n = self.means()  # (K,) each non-empty bin's mean value and count
        a = self.candidates(symmetric)  # (A,)
        best, best_err = (lo0, hi0), math.inf
        for chunk in a.split(max(1, 2**18 // len(c))):  # (a, K) at a time: a few MB at most
            qp = compute_qparams(lo0 * chunk, hi0 * chunk, bits, symmetric)  # (a,) each
            x = c.float().expand(len(chunk), -1)  # (a, K)
            c_hat = fake_quantize(x, qp.scale, qp.zero_point, qp.qmin, qp.qmax, axis=0)
            err = (n * (c - c_hat.double()) ** 2).sum(1)  # (a,)
            i = int(torch.argmin(err))
            if float(err[i]) < best_err:
                best_err = float(err[i])
                best = (lo0 * float(chunk[i]), hi0 * float(chunk[i]))
        return best


OBSERVERS = {
    "minmax": MinMaxObserver,
    "percentile": PercentileObserver,
    "entropy": EntropyObserver,
    "mse": MSEObserver,
}


def calibrate_observer(
    batches: Iterable[torch.Tensor], observer: MinMaxObserver | HistogramObserver
) -> MinMaxObserver | HistogramObserver:
    """Feed every batch to ``observer`` and return it (ready for ``.range`` / ``.qparams``).

    One observer, one tensor; a whole model's activation ranges are calibrated by
    ``qat.calibrate_activations`` (one observer per layer).

    Taught in notebooks/05_quantization_math.ipynb, "Equalisation: move the outlier into the weights".
    """
    batches = _check_calibrate(batches, observer)
    for b in batches:
        observer.observe(b)
    return observer


def inject_outlier_channel(
    bn: nn.BatchNorm2d, linear: nn.Linear, channel: int, factor: float
) -> None:
    """Make one channel's activations ``factor`` times larger without changing the function.

    For bn -> ReLU -> Flatten -> linear: multiply bn's weight and bias of ``channel`` by
    factor > 0 (ReLU(k z) = k ReLU(z)) and divide the linear's input columns that read that
    channel by factor. The network computes the same logits (to float rounding), but the
    activation now has an outlier channel, as large language models do.

    Taught in notebooks/05_quantization_math.ipynb, "4. An activation with outliers".
    """
    _check_outlier_channel(bn, linear, channel, factor)
    gain = torch.ones(bn.num_features)  # (C,)
    gain[channel] = factor
    _move_channel_gain(bn, linear, gain)


def equalize_channels(
    bn: nn.BatchNorm2d, linear: nn.Linear, channel_max: torch.Tensor
) -> torch.Tensor:
    """Fold each activation channel's range into the next layer's weight columns, in place.

    For bn -> ReLU -> Flatten -> linear, with r_j the largest value channel j took on the
    calibration data (r: (C,), e.g. a MinMaxObserver(axis=1)'s max_val):

        s_j = 2^round(log2(r_j / median(r)))       (s_j = 1 where r_j = 0)
        bn.weight_j, bn.bias_j /= s_j               channel j of the activation becomes x_j / s_j,
                                                    since ReLU(z / s) = ReLU(z) / s for s > 0
        linear.weight[:, columns of j] *= s_j       every product (x_j / s_j)(s_j w_kj) = x_j w_kj

    The network computes the same function; s_j is a power of two, so dividing and multiplying
    by it only moves float exponents and the logits stay equal bit for bit. Afterwards every
    channel's max lies within a factor of sqrt(2) of the median: no single channel sets the
    step of a per-tensor grid. The range has moved into the weight columns (cross-layer
    equalisation; SmoothQuant splits it between the two). Returns s, float32 (C,).

    Taught in notebooks/05_quantization_math.ipynb, "Equalisation: move the outlier into the weights".
    """
    r = _check_equalize(bn, linear, channel_max)  # float64 (C,), >= 0
    ref = r[r > 0].median() if (r > 0).any() else r.new_ones(())  # the typical channel
    s = torch.where(r > 0, torch.exp2(torch.round(torch.log2(r / ref))), 1.0).float()  # (C,)
    _move_channel_gain(bn, linear, 1 / s)
    return s


def _move_channel_gain(bn: nn.BatchNorm2d, linear: nn.Linear, gain: torch.Tensor) -> None:
    """bn's channel j times gain_j, the linear's columns that read channel j divided by it."""
    per = linear.in_features // bn.num_features  # inputs per channel (H * W), channel-major
    with torch.no_grad():
        bn.weight.mul_(gain)  # (C,)
        bn.bias.mul_(gain)
        linear.weight.div_(gain.repeat_interleave(per))  # (out, C * H * W) / (C * H * W,)


# ---- checks: bad input gets one clear error naming the parameter and the fix


def _check_values(x: object, name: str, flat: bool = True) -> torch.Tensor:
    """x detached (flattened to float64 (N,) if ``flat``): a non-empty float tensor, all finite."""
    t = check_tensor(x, name).detach()
    t = t.reshape(-1).to(torch.float64) if flat else t
    if t.numel() == 0:
        raise ValueError(f"{name} is empty; observe at least one value.")
    if not torch.isfinite(t).all():
        raise ValueError(f"{name} contains inf or NaN; calibration needs finite values.")
    return t


def _check_observer_axis(axis: object) -> int | None:
    return None if axis is None else check_int(axis, "axis (None: per tensor)")


def _check_minmax_observe(obs: MinMaxObserver, x: object) -> torch.Tensor:
    x = _check_values(x, "x", flat=False)
    if obs.axis is None:
        return x
    if not -x.ndim <= obs.axis < x.ndim:  # axis % ndim would silently pick another dim
        raise ValueError(
            f"axis={obs.axis} does not exist for a {x.ndim}-D tensor of shape "
            f"{tuple(x.shape)}; use an axis in [-{x.ndim}, {x.ndim}) (0 = output channels)."
        )
    if obs.min_val is not None and x.shape[obs.axis] != obs.min_val.numel():
        raise ValueError(
            f"x has {x.shape[obs.axis]} channels on axis {obs.axis}, but earlier batches had "
            f"{obs.min_val.numel()}; observe tensors of one layer only (or use a new observer)."
        )
    return x


def _check_observed(
    obs: MinMaxObserver, per_tensor: bool = False, bits: object = 8
) -> tuple[torch.Tensor, torch.Tensor]:
    check_bits(bits)  # range() ignores it, but a bad width is still a mistake
    if obs.min_val is None or obs.max_val is None:
        raise ValueError("nothing observed yet: call .observe(tensor) first.")
    if per_tensor and obs.min_val.numel() != 1:
        raise ValueError("range() is per tensor; use qparams() for a per-channel observer.")
    return obs.min_val, obs.max_val


def _check_bins(bins: object, most: int) -> int:
    """An even number of bins in [16, most]: refuse before allocating (or searching for minutes)."""
    bins = check_int(bins, "bins", low=16, high=most)
    if bins % 2:
        raise ValueError(f"bins must be even (2048 is typical), got {bins}.")
    return bins


def _check_percentile(percentile: object) -> float:
    ok = isinstance(percentile, (int, float)) and not isinstance(percentile, bool)
    if not ok or not 50 < percentile <= 100:  # type: ignore[operator]
        raise ValueError(
            f"percentile must be in (50, 100] (99.99 keeps all but the top 0.01 %), "
            f"got {percentile!r}."
        )
    return float(percentile)  # type: ignore[arg-type]


def _check_mse(grid: object, max_data_candidates: object) -> tuple[int, int]:
    grid = check_int(grid, "grid", low=2, high=100_000)  # 200 is typical
    return grid, check_int(max_data_candidates, "max_data_candidates", low=0, high=100_000)


def _check_ready(obs: HistogramObserver, bits: object) -> int:
    """bits is a bit width and the observer has seen data."""
    bits = check_bits(bits)
    if obs.hist.sum() == 0:
        raise ValueError("nothing observed yet: call .observe(tensor) first.")
    return bits


def _check_kl_threshold(hist: object, num_quantized_bins: object) -> np.ndarray:
    h = check_tensor(hist, "hist", floating=False, ndim=1).detach().double().cpu().numpy()
    if h.size == 0:
        raise ValueError("hist is empty; pass a histogram of |x| with at least one bin.")
    if not np.isfinite(h).all() or (h < 0).any():
        raise ValueError(
            "hist must hold finite counts >= 0 (a histogram of |x|); it has NaN, inf or "
            "negative entries - build it with torch.histc(x.abs(), bins, 0, max)."
        )
    if h.size > EntropyObserver.max_bins:
        raise ValueError(
            f"hist has {h.size} bins; the search is quadratic in them, so at most "
            f"{EntropyObserver.max_bins} (2048 is typical): build it with fewer bins."
        )
    check_int(
        num_quantized_bins,
        "num_quantized_bins (at most the histogram's length)",
        low=2,
        high=h.size,
    )
    if h.sum() <= 0:
        raise ValueError("hist holds no counts (all bins are 0); build it from non-empty data.")
    return h


def _check_calibrate(batches: object, observer: object) -> list[torch.Tensor]:
    if isinstance(observer, type) or not callable(getattr(observer, "observe", None)):
        raise ValueError(
            f"observer must be an observer instance (e.g. quant.MinMaxObserver()), got {observer!r}."
        )
    if isinstance(batches, (torch.Tensor, str)) or not isinstance(batches, Iterable):
        raise ValueError(
            f"batches must be a list of tensors (one tensor: [x]), got {type(batches).__name__}."
        )
    batches = list(batches)
    check_nonempty(batches, "batches")
    return [_check_values(b, f"batches[{i}]", flat=False) for i, b in enumerate(batches)]


def _check_outlier_channel(bn: object, linear: object, channel: object, factor: object) -> None:
    if not isinstance(bn, nn.BatchNorm2d) or not isinstance(linear, nn.Linear):
        raise ValueError(
            f"bn must be an nn.BatchNorm2d and linear an nn.Linear, got "
            f"{type(bn).__name__} and {type(linear).__name__}."
        )
    check_int(channel, "channel", low=0, high=bn.num_features - 1)
    check_positive(factor, "factor")
    if linear.in_features % bn.num_features:
        raise ValueError("linear.in_features must be a multiple of the BN channels (C * H * W).")


def _check_equalize(bn: object, linear: object, channel_max: object) -> torch.Tensor:
    """channel_max as float64 (C,): one finite value >= 0 per BN channel."""
    _check_outlier_channel(bn, linear, 0, 1.0)
    r = check_tensor(channel_max, "channel_max", floating=False, ndim=1).detach().double()
    c = bn.num_features  # type: ignore[union-attr]
    if r.numel() != c or not torch.isfinite(r).all() or (r < 0).any():
        raise ValueError(
            f"channel_max must hold {c} finite values >= 0 (each channel's largest activation "
            "after the ReLU), e.g. quant.MinMaxObserver(axis=1).max_val; "
            f"got {r.numel()} values with min {float(r.min()) if r.numel() else 'n/a'}."
        )
    return r
