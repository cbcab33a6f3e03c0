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


def test_ring_in_the_other_direction_is_rejected() -> None:
    """A learner who sends to the left neighbour: chunk (i + s) % n, still received by i + 1."""

    def leftward(n):
        reduce = [[(i, (i + s) % n) for i in range(n)] for s in range(n - 1)]
        gather = [[(i, (i + s + 1) % n) for i in range(n)] for s in range(n - 1)]
        return reduce + gather

    assert not checks.check("distributed.ring_schedule", leftward).passed


def _zero(p_stage, g_stage, o_stage, scale=1.0, k_fixed=None):
    """A ZeRO breakdown that partitions params / grads / optimizer from the given stages on."""

    def fn(params, n_gpus, stage, k=12):
        kk = k if k_fixed is None else k_fixed
        return {
            "params": 2 * params / (n_gpus if stage >= p_stage else 1) * scale,
            "grads": 2 * params / (n_gpus if stage >= g_stage else 1) * scale,
            "optimizer": kk * params / (n_gpus if stage >= o_stage else 1) * scale,
        }

    return fn


def test_zero_reference_pieces_pass() -> None:
    assert checks.check("distributed.zero_memory", _zero(3, 2, 1)).passed


def test_zero_sharding_params_instead_of_grads_at_stage_2_is_rejected() -> None:
    """Issue 19: params and grads are both 2 bytes, so the stage-2 total is the same; the
    per-component breakdown must catch it."""
    wrong = _zero(2, 3, 1)
    totals = [sum(f(7.5e9, 64, 2).values()) for f in (wrong, _zero(3, 2, 1))]
    assert totals[0] == totals[1]  # the old one-number exercise could not tell them apart
    res = checks.check("distributed.zero_memory", wrong)
    assert not res.passed and "stage 2" in res.message and "params" in res.message


def test_zero_partitioning_params_at_stage_2_too_is_rejected() -> None:
    assert not checks.check("distributed.zero_memory", _zero(2, 2, 1)).passed


def test_zero_with_fp32_weights_is_rejected() -> None:
    def fp32(params, n_gpus, stage, k=12):
        n = n_gpus if stage >= 3 else 1
        return {"params": 4 * params / n, "grads": 4 * params / n, "optimizer": k * params / n}

    assert not checks.check("distributed.zero_memory", fp32).passed


def test_zero_ignoring_k_is_rejected() -> None:
    res = checks.check("distributed.zero_memory", _zero(3, 2, 1, k_fixed=12))
    assert not res.passed and "K=8" in res.message


def test_zero_in_gigabytes_is_rejected() -> None:
    assert not checks.check("distributed.zero_memory", _zero(3, 2, 1, scale=1e-9)).passed


def test_zero_partitioning_gradients_at_stage_1_is_rejected() -> None:
    res = checks.check("distributed.zero_memory", _zero(3, 1, 1))
    assert not res.passed and "stage 1" in res.message


def test_zero_dividing_everything_at_every_stage_is_rejected() -> None:
    assert not checks.check("distributed.zero_memory", _zero(0, 0, 0)).passed


def test_zero_returning_only_the_total_is_rejected() -> None:
    def total(params, n_gpus, stage, k=12):
        return sum(_zero(3, 2, 1)(params, n_gpus, stage, k).values())

    res = checks.check("distributed.zero_memory", total)
    assert not res.passed and "'params'" in res.message


# ---- the pipeline bubble


def test_bubble_from_a_counted_schedule_passes() -> None:
    from labkit import distributed

    def counted(stages, microbatches):
        return distributed.schedule_bubble(
            distributed.pipeline_schedule("gpipe", stages, microbatches)
        )

    assert checks.check("distributed.bubble_fraction", counted).passed


def test_bubble_as_idle_over_busy_is_rejected() -> None:
    """(p - 1) / m is the GPipe paper's overhead (idle per busy time), not the idle share."""
    res = checks.check(
        "distributed.bubble_fraction", lambda stages, microbatches: (stages - 1) / microbatches
    )
    assert not res.passed


def test_bubble_off_by_one_in_the_denominator_is_rejected() -> None:
    wrong = lambda stages, microbatches: (stages - 1) / (microbatches + stages)  # noqa: E731
    assert not checks.check("distributed.bubble_fraction", wrong).passed


def test_bubble_counting_all_stages_as_idle_is_rejected() -> None:
    wrong = lambda stages, microbatches: stages / (microbatches + stages - 1)  # noqa: E731
    res = checks.check("distributed.bubble_fraction", wrong)
    assert not res.passed and "one stage" in res.message


def test_bubble_with_integer_division_is_rejected() -> None:
    wrong = lambda stages, microbatches: (stages - 1) // (microbatches + stages - 1)  # noqa: E731
    assert not checks.check("distributed.bubble_fraction", wrong).passed


# ---- the Megatron MLP's partial sums


def _partials(split_w1_dim, split_w2_dim, relu=True, bias_split=True):
    def fn(x, w1, b1, w2, world):
        out = []
        for r in range(world):
            w1_r = w1.chunk(world, split_w1_dim)[r]
            b1_r = b1.chunk(world)[r] if bias_split else b1
            w2_r = w2.chunk(world, split_w2_dim)[r]
            if split_w1_dim == 1:  # rows of x's features go with w1's columns
                h = x.chunk(world, 1)[r] @ w1_r.T + b1_r / world
            else:
                h = x @ w1_r.T + b1_r
            out.append((h.relu() if relu else h) @ w2_r.T)
        return out

    return fn


def test_partials_reference_pieces_pass() -> None:
    assert checks.check("distributed.megatron_mlp_partials", _partials(0, 1)).passed


def test_partials_splitting_w1_by_input_columns_is_rejected() -> None:
    """Row-parallel first layer: each rank applies relu to a partial sum (relu(a)+relu(b) != relu(a+b))."""
    res = checks.check("distributed.megatron_mlp_partials", _partials(1, 1))
    assert not res.passed


def test_partials_without_relu_is_rejected() -> None:
    assert not checks.check("distributed.megatron_mlp_partials", _partials(0, 1, relu=False)).passed


def test_partials_splitting_w2_by_output_rows_is_rejected() -> None:
    """w2 split like w1 (by its output rows): each rank's piece no longer matches its hidden features."""
    assert not checks.check("distributed.megatron_mlp_partials", _partials(0, 0)).passed


def test_partials_as_the_full_output_divided_by_world_is_rejected() -> None:
    """Every rank computes everything and divides: the sum is right, the partials are not."""

    def full_over_world(x, w1, b1, w2, world):
        y = (x @ w1.T + b1).relu() @ w2.T
        return [y / world for _ in range(world)]

    res = checks.check("distributed.megatron_mlp_partials", full_over_world)
    assert not res.passed and "world=2" in res.message


def test_partials_with_the_second_bias_on_every_rank_is_rejected() -> None:
    """b2 belongs after the all-reduce; a bias added on every rank is summed world times."""

    def bias_in_partial(x, w1, b1, w2, world):
        parts = _partials(0, 1)(x, w1, b1, w2, world)
        return [p + 1.0 for p in parts]  # any per-rank bias is summed world times

    assert not checks.check("distributed.megatron_mlp_partials", bias_in_partial).passed


def test_hints_are_graduated() -> None:
    from labkit.distributed.exercises import EXERCISES

    for ex in EXERCISES.values():
        assert ex.hint and ex.formula and ex.hint != ex.formula
        assert "%" not in ex.hint and "/(N" not in ex.hint  # the nudge gives no formula
