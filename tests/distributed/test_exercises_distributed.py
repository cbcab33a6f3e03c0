"""Planted wrong answers to notebook 12's exercises must be rejected."""

from labkit import checks
from labkit.distributed.exercises import simulate_schedule


def test_reference_schedule_is_a_valid_allreduce() -> None:
    from labkit.distributed import ring_schedule

    for n in range(2, 9):
        assert simulate_schedule(ring_schedule(n), n) is None


def test_reduce_scatter_only_is_rejected() -> None:
    def only_reduce(n):
        return [[(i, (i - s) % n) for i in range(n)] for s in range(n - 1)]

    res = checks.check("distributed.ring_schedule", only_reduce)
    assert not res.passed and "2(n-1)" in res.message


def test_wrong_all_gather_offset_is_rejected() -> None:
    def gather_wrong_chunk(n):
        reduce = [[(i, (i - s) % n) for i in range(n)] for s in range(n - 1)]
        gather = [[(i, (i - s) % n) for i in range(n)] for s in range(n - 1)]
        return reduce + gather

    assert not checks.check("distributed.ring_schedule", gather_wrong_chunk).passed


def test_every_worker_sending_the_same_chunk_is_rejected() -> None:
    def same_chunk(n):
        return [[(i, s % n) for i in range(n)] for s in range(2 * (n - 1))]

    assert not checks.check("distributed.ring_schedule", same_chunk).passed


def test_a_worker_sending_twice_is_rejected() -> None:
    def double_send(n):
        steps = [[(i, (i - s) % n) for i in range(n)] for s in range(n - 1)]
        steps += [[(i, (i + 1 - s) % n) for i in range(n)] for s in range(n - 1)]
        steps[0][1] = (0, 1)
        return steps

    res = checks.check("distributed.ring_schedule", double_send)
    assert not res.passed and "exactly one chunk" in res.message


def test_zero_partitioning_params_at_stage_2_is_rejected() -> None:
    def off_by_one_stage(params, n_gpus, stage, k=12):
        p = 2 * params / (n_gpus if stage >= 2 else 1)
        g = 2 * params / (n_gpus if stage >= 2 else 1)
        o = k * params / (n_gpus if stage >= 1 else 1)
        return p + g + o

    assert not checks.check("distributed.zero_memory_per_gpu", off_by_one_stage).passed


def test_zero_with_fp32_weights_is_rejected() -> None:
    def fp32(params, n_gpus, stage, k=12):
        return (4 + 4 + k) * params / (n_gpus if stage >= 3 else 1)

    assert not checks.check("distributed.zero_memory_per_gpu", fp32).passed


def test_zero_ignoring_k_is_rejected() -> None:
    def fixed_k(params, n_gpus, stage, k=12):
        p = 2 * params / (n_gpus if stage >= 3 else 1)
        g = 2 * params / (n_gpus if stage >= 2 else 1)
        return p + g + 12 * params / (n_gpus if stage >= 1 else 1)

    res = checks.check("distributed.zero_memory_per_gpu", fixed_k)
    assert not res.passed and "K=8" in res.message


def test_ring_in_the_other_direction_is_rejected() -> None:
    """A learner who sends to the left neighbour: chunk (i + s) % n, still received by i + 1."""

    def leftward(n):
        reduce = [[(i, (i + s) % n) for i in range(n)] for s in range(n - 1)]
        gather = [[(i, (i + s + 1) % n) for i in range(n)] for s in range(n - 1)]
        return reduce + gather

    assert not checks.check("distributed.ring_schedule", leftward).passed


def test_zero_in_gigabytes_is_rejected() -> None:
    def in_gb(params, n_gpus, stage, k=12):
        p = 2 * params / (n_gpus if stage >= 3 else 1)
        g = 2 * params / (n_gpus if stage >= 2 else 1)
        o = k * params / (n_gpus if stage >= 1 else 1)
        return (p + g + o) / 1e9

    assert not checks.check("distributed.zero_memory_per_gpu", in_gb).passed


def test_zero_partitioning_gradients_at_stage_1_is_rejected() -> None:
    def grads_too_early(params, n_gpus, stage, k=12):
        p = 2 * params / (n_gpus if stage >= 3 else 1)
        g = 2 * params / (n_gpus if stage >= 1 else 1)
        o = k * params / (n_gpus if stage >= 1 else 1)
        return p + g + o

    res = checks.check("distributed.zero_memory_per_gpu", grads_too_early)
    assert not res.passed and "stage 1" in res.message


def test_zero_dividing_everything_at_every_stage_is_rejected() -> None:
    def all_sharded(params, n_gpus, stage, k=12):
        return (2 + 2 + k) * params / n_gpus

    assert not checks.check("distributed.zero_memory_per_gpu", all_sharded).passed


def test_hints_are_graduated() -> None:
    from labkit.distributed.exercises import EXERCISES

    for ex in EXERCISES.values():
        assert ex.hint and ex.formula and ex.hint != ex.formula
        assert "%" not in ex.hint and "/(N" not in ex.hint  # the nudge gives no formula
