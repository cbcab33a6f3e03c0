"""labkit.distributed: ring all-reduce, ZeRO paper numbers, real DDP on 2 gloo processes."""

import pytest
import torch

from labkit import distributed as dist_lab


@pytest.mark.parametrize("n,size", [(2, 10), (3, 7), (4, 64), (5, 13)])
def test_ring_allreduce_sums_on_every_worker(n: int, size: int) -> None:
    g = torch.Generator().manual_seed(n)
    grads = [torch.randn(size, generator=g) for _ in range(n)]
    results, sent = dist_lab.ring_allreduce(grads)
    total = torch.stack(grads).sum(0)
    for r in results:
        torch.testing.assert_close(r, total, atol=1e-5, rtol=1e-5)
    assert len(sent) == 2 * (n - 1)


@pytest.mark.parametrize("n", [2, 4, 8])
def test_ring_bytes_per_worker(n: int) -> None:
    size = 8 * n * 4  # divisible into n equal chunks of float32
    grads = [torch.ones(size // 4) for _ in range(n)]
    _, sent = dist_lab.ring_allreduce(grads)
    per_worker = [sum(step[w] for step in sent) for w in range(n)]
    assert per_worker == [dist_lab.ring_bytes_per_worker(n, size)] * n
    assert dist_lab.ring_bytes_per_worker(n, size) == 2 * (n - 1) / n * size
    ps = dist_lab.parameter_server_bytes(n, size)
    assert ps["server_received"] == n * size and ps["worker_sent"] == size


def test_zero_paper_figure_1_numbers() -> None:
    psi, n = 7.5e9, 64
    gb = [round(dist_lab.zero_memory(psi, n, s)["gpu"] / 1e9, 1) for s in range(4)]
    assert gb == [120.0, 31.4, 16.6, 1.9]


def test_zero_offload_and_bad_input() -> None:
    on = dist_lab.zero_memory(1e9, 8, 2, offload=True)
    off = dist_lab.zero_memory(1e9, 8, 2)
    # ZeRO-Offload: gradients and optimizer states go to CPU, only fp16 params stay on the GPU
    assert on["cpu"] == off["grads"] + off["optimizer"] == (2 + 12) * 1e9 / 8
    assert on["gpu"] == off["params"] == 2e9
    assert off["cpu"] == 0.0
    # the ZeRO-Offload paper's headline: 16 Psi -> 2 Psi bytes on one GPU (8x)
    single = dist_lab.zero_memory(1e9, 1, 2, offload=True)
    assert dist_lab.zero_memory(1e9, 1, 0)["gpu"] / single["gpu"] == 8
    with pytest.raises(ValueError, match="stage"):
        dist_lab.zero_memory(1e9, 8, 4)
    with pytest.raises(ValueError, match="n_gpus"):
        dist_lab.zero_memory(1e9, 0, 1)
    with pytest.raises(ValueError, match="2 <= n"):
        dist_lab.ring_schedule(1)


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: dist_lab.zero_memory(-7.5e9, 64, 1), "params"),  # gave negative bytes
        (lambda: dist_lab.zero_memory(0, 64, 1), "params"),
        (lambda: dist_lab.zero_memory(7.5e9, 64, 1, k=-12), "k"),
        (lambda: dist_lab.zero_memory(7.5e9, 64, 1, bytes_param=-2), "bytes_param"),
        (lambda: dist_lab.zero_memory(7.5e9, 64, 1, bytes_grad=float("nan")), "bytes_grad"),
        (lambda: dist_lab.zero_memory(7.5e9, -64, 1), "n_gpus"),
        (lambda: dist_lab.zero_memory(7.5e9, 6.4, 1), "n_gpus"),
        (lambda: dist_lab.zero_memory(7.5e9, 64, True), "stage"),
        (lambda: dist_lab.ring_bytes_per_worker(-4, 1000), "n"),
        (lambda: dist_lab.ring_bytes_per_worker(4, -1000), "size_bytes"),
        (lambda: dist_lab.parameter_server_bytes(0, 1000), "n"),
        (lambda: dist_lab.ring_schedule(10**6), "ring_bytes_per_worker"),  # would build 10^12 pairs
        (lambda: dist_lab.ring_allreduce([torch.ones(4)]), "2\\+ tensors"),
        (lambda: dist_lab.ring_allreduce([torch.ones(4), torch.ones(5)]), "same shape"),
        (lambda: dist_lab.deep_mlp(depth=4, width=10**6), "GiB"),  # 14,901 GiB of weights
        (lambda: dist_lab.deep_mlp(depth=0), "depth"),
        (
            lambda: dist_lab.checkpoint_costs(
                dist_lab.deep_mlp(2, 8), torch.empty(2**28, 8, device="meta"), [0]
            ),
            "GiB",
        ),
        # issue 18: empty tensors, bools, non-models, mismatched states, absurd counts
        (
            lambda: dist_lab.ring_allreduce([torch.ones(0), torch.ones(0)]),
            "tensors\\[0\\] is empty",
        ),
        (lambda: dist_lab.ring_allreduce(torch.ones(2, 4)), "2\\+ tensors"),
        (lambda: dist_lab.ring_schedule(True), "2 <= n"),
        (lambda: dist_lab.ring_bytes_per_worker(True, 1000), "n \\(workers\\)"),
        (lambda: dist_lab.ring_bytes_per_worker(4, float("inf")), "size_bytes"),
        (lambda: dist_lab.zero_memory(7.5e9, 64, 1, k=float("inf")), "k \\(optimizer"),
        (lambda: dist_lab.zero_memory(7.5e9, True, 1), "n_gpus"),
        (lambda: dist_lab.state_max_diff({"w": torch.ones(2)}, {"w": torch.ones(3)}), "same shape"),
        (lambda: dist_lab.state_max_diff({}, {}), "state_dict"),
        (lambda: dist_lab.global_batches(0, 32), "steps"),
        (lambda: dist_lab.global_batches(8, 0), "batch"),
        (lambda: dist_lab.global_batches(8, 10**6), "batch"),  # silently fewer rows before
        (lambda: dist_lab.train_single(batch=True), "batch"),
        (lambda: dist_lab.launch(nproc=0), "nproc"),
        (lambda: dist_lab.launch(nproc=10**4), "nproc"),  # would start 10,000 processes
        (lambda: dist_lab.launch(nproc=True), "nproc"),
        (lambda: dist_lab.forward_backward("model.pt", torch.ones(2, 8)), "model"),
        (
            lambda: dist_lab.checkpoint_costs(torch.nn.Linear(8, 8), torch.ones(2, 8), [0]),
            "nn.Sequential",
        ),
        (lambda: dist_lab.checkpoint_costs(dist_lab.deep_mlp(2, 8), torch.ones(0, 8), [0]), "x"),
        (
            lambda: dist_lab.checkpoint_costs(dist_lab.deep_mlp(2, 8), torch.ones(2, 8), [True]),
            "segments",
        ),
    ],
)
def test_bad_input_is_refused_early_with_a_clear_message(call, match) -> None:
    with pytest.raises(ValueError, match=match):
        call()


@pytest.fixture(scope="module")
def torchrun_results() -> dict:
    return dist_lab.launch(nproc=2)


def test_ddp_equals_single_process(torchrun_results: dict) -> None:
    losses, state = dist_lab.train_single()
    assert torchrun_results["world_size"] == 2
    assert torchrun_results["ddp_losses"] == pytest.approx(losses, abs=1e-5)
    assert dist_lab.state_max_diff(state, torchrun_results["ddp_state"]) < 1e-5


def test_no_sync_accumulation_equals_big_batch_and_halves_allreduces(
    torchrun_results: dict,
) -> None:
    _, state = dist_lab.train_single(batch=2 * dist_lab.GLOBAL_BATCH)
    assert dist_lab.state_max_diff(state, torchrun_results["no_sync_state"]) < 1e-5
    assert dist_lab.state_max_diff(state, torchrun_results["sync_every_state"]) < 1e-5
    assert torchrun_results["no_sync_allreduce_calls"] == dist_lab.STEPS
    assert torchrun_results["sync_every_allreduce_calls"] == 2 * dist_lab.STEPS


def test_zero1_and_fsdp_bytes_per_rank_match_the_calculator(torchrun_results: dict) -> None:
    from labkit.distributed.worker import zero_model

    psi = sum(p.numel() for p in zero_model().parameters())
    for rank in torchrun_results["per_rank"]:
        plain = dist_lab.zero_memory(psi, 2, 0, k=8, bytes_param=4, bytes_grad=4)
        z3 = dist_lab.zero_memory(psi, 2, 3, k=8, bytes_param=4, bytes_grad=4)
        # Adam's 'step' counters add a few bytes per parameter tensor (8 tensors x 4 bytes)
        assert 0 <= rank["adam_state_bytes"] - plain["optimizer"] <= 64
        assert 0 <= rank["zero1_state_bytes"] - plain["optimizer"] / 2 <= 64
        assert rank["zero1_param_bytes"] == plain["params"]
        assert rank["fsdp_param_bytes"] == z3["params"]
        assert rank["fsdp_grad_bytes"] == z3["grads"]
        assert 0 <= rank["fsdp_state_bytes"] - z3["optimizer"] <= 64
    # ZeRO-1 changes where the optimizer lives, not the result of the step
    torch.testing.assert_close(torchrun_results["zero1_weight"], torchrun_results["adam_weight"])


def test_zero_paper_table_1_max_model_size() -> None:
    # ZeRO paper Table 1: largest model whose states fit in 32 GB on 64 GPUs (K = 12)
    sizes = [32e9 / dist_lab.zero_memory(1, 64, s)["gpu"] / 1e9 for s in range(4)]
    assert [round(v, 1) for v in sizes] == [2.0, 7.6, 14.4, 128.0]


def test_activation_checkpointing_saves_memory_and_keeps_gradients() -> None:
    model = dist_lab.deep_mlp(depth=16, width=32)
    x = torch.randn(64, 32, generator=torch.Generator().manual_seed(0), requires_grad=True)
    act = 64 * 32 * 4
    # each Linear saves its input, each ReLU its output (the next Linear's input): x + 16 outputs
    assert dist_lab.checkpointed_activation_bytes(model, x, 0) == 17 * act
    # 4 segments of 8 modules: 3 checkpointed segment inputs + the last (plain) segment's 5
    assert dist_lab.checkpointed_activation_bytes(model, x, 4) == 8 * act
    rows = dist_lab.checkpoint_costs(model, x, [0, 4])
    plain, ckpt = (r["peak_bytes"] for r in rows)
    assert plain >= 16 * act  # the 16 new saved activations are alive at the end of forward
    assert ckpt <= 12 * act and ckpt < 0.6 * plain
    model.zero_grad()
    dist_lab.forward_backward(model, x, 0)
    g_plain = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    dist_lab.forward_backward(model, x, 4)
    for a, p in zip(g_plain, model.parameters(), strict=True):
        torch.testing.assert_close(a, p.grad)
    with pytest.raises(ValueError, match="segments"):
        dist_lab.checkpoint_costs(model, x, [-1])
    with pytest.raises(ValueError, match="repeat"):
        dist_lab.checkpoint_costs(model, x, [0, 0])
    timing = dist_lab.checkpoint_timing(model, x, [0, 4], rounds=3, repeats=1)
    assert set(timing.median_ms) == {"none", "4 segments"} and timing.baseline == "none"


@pytest.mark.parametrize("kind", ["gpipe", "1f1b"])
def test_two_stage_pipeline_equals_single_process(torchrun_results: dict, kind: str) -> None:
    losses, state = dist_lab.train_single()
    assert torchrun_results[f"pp_{kind}_losses"] == pytest.approx(losses, abs=1e-5)
    assert dist_lab.state_max_diff(state, torchrun_results[f"pp_{kind}_state"]) < 1e-5
    grads = dist_lab.reference_gradients()
    assert dist_lab.state_max_diff(grads, torchrun_results[f"pp_{kind}_grads"]) < 1e-5
    # activations each stage had to keep: GPipe all 4 micro-batches, 1F1B at most p = 2
    expected = {"gpipe": [4, 4], "1f1b": [2, 1]}[kind]
    assert torchrun_results[f"pp_{kind}_peak_kept"] == expected


def test_tensor_parallel_mlp_equals_single_process(torchrun_results: dict) -> None:
    model = dist_lab.make_model(0)
    x, _ = dist_lab.global_batches(1, dist_lab.GLOBAL_BATCH)[0]
    torch.testing.assert_close(
        torchrun_results["tp_logits"], model(x).detach(), atol=1e-5, rtol=1e-5
    )
    grads = dist_lab.reference_gradients()
    assert dist_lab.state_max_diff(grads, torchrun_results["tp_grads"]) < 1e-5
    # one all-reduce forward (the row-parallel output), one backward (the input gradient)
    assert torchrun_results["tp_allreduce_calls"] == {"forward": 1, "backward": 1}
    assert torchrun_results["tp_partial_vs_lesson"] < 1e-5  # each rank's partial = the lesson's
    # without the backward all-reduce, the layer before the MLP gets only a partial gradient
    broken = torchrun_results["tp_no_backward_allreduce_grads"]
    assert torchrun_results["tp_no_backward_allreduce_allreduce_calls"] == {
        "forward": 1,
        "backward": 0,
    }
    assert (broken["0.weight"] - grads["0.weight"]).abs().max() > 1e-3
    for name in ("2.weight", "2.bias", "4.weight", "4.bias"):  # the MLP's own grads stay right
        torch.testing.assert_close(broken[name], grads[name], atol=1e-5, rtol=1e-5)
    ranks = torchrun_results["tp_no_backward_allreduce_replicated_grads"]
    torch.testing.assert_close(ranks[0] + ranks[1], grads["0.weight"], atol=1e-5, rtol=1e-5)
