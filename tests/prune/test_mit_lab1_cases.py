"""labkit.prune against the checks of MIT 6.5940 (efficientml.ai) Lab 1, "Pruning".

Source: MIT 6.5940 EfficientML.ai Fall 2023, Lab 1 Pruning (Colab notebook; stored copy read:
yifanlu0227/MIT-6.5940 Lab1.ipynb, the same cells in other students' copies). Each test names
the lab's check it ports; the inputs and expected values are the lab's.
"""

from __future__ import annotations

import copy
from collections import OrderedDict, defaultdict

import pytest
import torch
from torch import nn

from labkit import bench, prune

LAB1 = "MIT 6.5940 Fall 2023 Lab 1 (yifanlu0227/MIT-6.5940 Lab1.ipynb)"

# test_fine_grained_prune's default arguments
TEST_TENSOR = torch.tensor(
    [
        [-0.46, -0.40, 0.39, 0.19, 0.37],
        [0.00, 0.40, 0.17, -0.15, 0.16],
        [-0.20, -0.23, 0.36, 0.25, 0.03],
        [0.24, 0.41, 0.07, 0.13, -0.15],
        [0.48, -0.09, -0.36, 0.12, 0.45],
    ]
)
TEST_MASK = torch.tensor(
    [
        [True, True, False, False, False],
        [False, True, False, False, False],
        [False, False, False, False, False],
        [False, True, False, False, False],
        [True, False, False, False, True],
    ]
)


def test_fine_grained_prune_mask_matches_lab1() -> None:
    """Source: MIT 6.5940 Fall 2023 Lab 1, test_fine_grained_prune() (Question 2): the 5x5
    test_tensor at target_sparsity=0.75 must give exactly test_mask (``test_mask.equal(mask)``).

    Adapted: the lab's fine_grained_prune(tensor, sparsity) returns the mask and prunes the
    tensor in place; labkit's magnitude_mask returns the mask and leaves the tensor alone.
    """
    x = TEST_TENSOR.clone()
    mask = prune.magnitude_mask(x, 0.75)
    assert torch.equal(mask, TEST_MASK)
    assert torch.equal(x, TEST_TENSOR)  # not pruned in place
    pruned = x * mask
    assert prune.sparsity(pruned) == pytest.approx(19 / 25)  # round(0.75 * 25) = 19 zeros


def test_fine_grained_prune_ten_nonzeros_matches_lab1_question_3() -> None:
    """Source: MIT 6.5940 Fall 2023 Lab 1, Question 3: ``test_fine_grained_prune(
    target_sparsity=target_sparsity, target_nonzeros=10)`` passes when the mask keeps exactly
    10 of the 25 values (``mask.count_nonzero() == target_nonzeros``); 10 nonzeros means
    15 / 25 = 0.6 sparsity. The ten kept values are the ten largest |w|.
    """
    mask = prune.magnitude_mask(TEST_TENSOR, 0.6)
    assert int(mask.count_nonzero()) == 10
    kept = TEST_TENSOR.abs()[mask]
    assert float(kept.min()) >= float(TEST_TENSOR.abs()[~mask].max())


class _VGG(nn.Module):
    """Lab 1's VGG (ARCH and forward as in the lab's ``class VGG``), randomly initialised."""

    ARCH = [64, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"]

    def __init__(self) -> None:
        super().__init__()
        layers: list[tuple[str, nn.Module]] = []
        counts: dict[str, int] = defaultdict(int)

        def add(name: str, layer: nn.Module) -> None:
            layers.append((f"{name}{counts[name]}", layer))
            counts[name] += 1

        in_channels = 3
        for x in self.ARCH:
            if x != "M":
                add("conv", nn.Conv2d(in_channels, int(x), 3, padding=1, bias=False))
                add("bn", nn.BatchNorm2d(int(x)))
                add("relu", nn.ReLU(True))
                in_channels = int(x)
            else:
                add("pool", nn.MaxPool2d(2))
        self.backbone = nn.Sequential(OrderedDict(layers))
        self.classifier = nn.Linear(512, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.backbone(x)  # (N, 512, 2, 2)
        x = x.mean([2, 3])  # (N, 512)
        return self.classifier(x)  # (N, 10)


def _random_bn_stats(model: nn.Module, seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            c = m.num_features
            m.running_mean.copy_(torch.randn(c, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(c, generator=g) + 0.5)
            m.weight.data.copy_(torch.randn(c, generator=g))
            m.bias.data.copy_(torch.randn(c, generator=g) * 0.1)


def test_channel_prune_macs_match_lab1() -> None:
    """Source: MIT 6.5940 Fall 2023 Lab 1, channel pruning (Question 6) sanity check:
    ``pruned_model = channel_prune(model, prune_ratio=0.3); assert get_model_macs(pruned_model,
    torch.randn(1, 3, 32, 32)) == 305388064`` (get_model_macs = torchprofile.profile_macs).

    Adapted: labkit.prune.prune_channels on the lab's VGG backbone with ratio 0.3 (the last
    conv, whose output feeds the average pool and classifier, stays whole, as in the lab's loop
    over ``all_convs[:-1]``). The lab keeps round(C * 0.7) channels (get_num_channels_to_keep);
    labkit drops round(C * 0.3); for C = 64, 128, 256, 512 both keep 45, 90, 179, 358.
    Counting conventions differ: labkit.bench.count_macs counts convolutions and Linear layers
    only (documented: BN, ReLU and pooling are 0), while the lab's 305,388,064 also holds one
    per element of the eight conv outputs (the elementwise BN / ReLU after each conv: 289,632 for
    the pruned model) and one per output of ``x.mean([2, 3])`` (512). The test adds those two
    terms, measured on the pruned model, to labkit's count.
    """
    torch.manual_seed(0)
    model = _VGG().eval()
    small = copy.deepcopy(model)
    small.backbone = prune.prune_channels(model.backbone, 0.3)
    convs = [m for m in small.backbone if isinstance(m, nn.Conv2d)]
    assert [c.out_channels for c in convs] == [45, 90, 179, 179, 358, 358, 358, 512]
    elementwise = 0

    def count(_m: nn.Module, _i: tuple[torch.Tensor, ...], out: torch.Tensor) -> None:
        nonlocal elementwise
        elementwise += out.numel()

    hooks = [
        m.register_forward_hook(count) for m in small.backbone if isinstance(m, nn.BatchNorm2d)
    ]
    macs = bench.count_macs(small, torch.randn(1, 3, 32, 32))
    for h in hooks:
        h.remove()
    assert elementwise == 289632
    assert macs + elementwise + 512 == 305388064
    assert small(torch.randn(2, 3, 32, 32)).shape == (2, 10)


def test_channel_sorting_keeps_the_output_like_lab1() -> None:
    """Source: MIT 6.5940 Fall 2023 Lab 1, Question 7: apply_channel_sorting(model) orders
    each conv's output channels by the importance of the next conv's input channels
    (get_input_channel_importance: ||W_next[:, i]||_F, descending), and the lab checks
    ``abs(sorted_model_accuracy - dense_model_accuracy) < 0.1`` because sorting is an
    equivalent transform.

    Adapted: no CIFAR-10 or pretrained weights here, so the check is on the outputs themselves
    (random weights and BatchNorm statistics, eval mode): the sorted model's logits equal the
    dense model's. The sorting is done with labkit.prune.prune_channels(keep=order), a full
    permutation of every conv's channels; keeping the first 70 % of that order then keeps the
    most important channels of each layer.
    """
    torch.manual_seed(0)
    model = _VGG().eval()
    _random_bn_stats(model, 1)
    backbone = model.backbone
    layers = list(backbone)
    conv_idx = [i for i, m in enumerate(layers) if isinstance(m, nn.Conv2d)]
    order = {}
    for i, j in zip(conv_idx[:-1], conv_idx[1:], strict=True):
        w_next = layers[j].weight.detach()  # (C_next, C, 3, 3)
        importance = torch.stack([w_next[:, c].norm() for c in range(w_next.shape[1])])
        order[i] = torch.argsort(importance, descending=True)
    sorted_model = copy.deepcopy(model)
    sorted_model.backbone = prune.prune_channels(backbone, 0.0, keep=order)
    x = torch.randn(4, 3, 32, 32, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        torch.testing.assert_close(sorted_model(x), model(x), rtol=1e-4, atol=1e-4)
    # the sorted model's first channels are the most important ones
    first = sorted_model.backbone[conv_idx[1]].weight.detach()
    imp = torch.stack([first[:, c].norm() for c in range(first.shape[1])])
    assert torch.all(imp[:-1] >= imp[1:])
