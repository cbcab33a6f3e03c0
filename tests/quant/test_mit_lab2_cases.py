"""labkit.quant against the checks of MIT 6.5940 (efficientml.ai) Lab 2, "Quantization".

Source: MIT 6.5940 EfficientML.ai Fall 2023, Lab 2 Quantization (Colab notebook; stored copies
read: yifanlu0227/MIT-6.5940 Lab2.ipynb, afondiel/MIT-6.5940-Notes-Labs
lab/notebooks/lab2/Lab2.ipynb, the same cells in other students' copies). Each test names the
lab's check it ports; the inputs and expected values are the lab's.
"""

from __future__ import annotations

import pytest
import torch

from labkit import quant

# test_linear_quantize's default arguments
TEST_TENSOR = torch.tensor(
    [
        [0.0523, 0.6364, -0.0968, -0.0020, 0.1940],
        [0.7500, 0.5507, 0.6188, -0.1734, 0.4677],
        [-0.0669, 0.3836, 0.4297, 0.6267, -0.0695],
        [0.1536, -0.0038, 0.6075, 0.6817, 0.0601],
        [0.6446, -0.2500, 0.5376, -0.2226, 0.2333],
    ]
)
QUANTIZED_TEST_TENSOR = torch.tensor(
    [
        [-1, 1, -1, -1, 0],
        [1, 1, 1, -2, 0],
        [-1, 0, 0, 1, -1],
        [-1, -1, 1, 1, -1],
        [1, -2, 1, -2, 0],
    ],
    dtype=torch.int8,
)
REAL_MIN, REAL_MAX, BITWIDTH, SCALE, ZERO_POINT = -0.25, 0.75, 2, 1 / 3, -1


@pytest.mark.parametrize(("bits", "expected"), [(2, (-2, 1)), (8, (-128, 127))])
def test_signed_range_matches_lab2_get_quantized_range(bits: int, expected) -> None:
    """Source: MIT 6.5940 Fall 2023 Lab 2, get_quantized_range(bitwidth) (given code, used by
    test_linear_quantize): quantized_max = (1 << (bitwidth - 1)) - 1,
    quantized_min = -(1 << (bitwidth - 1)). The lab has no test of its own for this function;
    the 2-bit case is the range test_linear_quantize works in, 8 bits the same formula.

    Adapted: the lab's signed range is labkit's qrange(bits, symmetric=True).
    """
    assert quant.qrange(bits, symmetric=True) == expected


def test_linear_quantize_matches_lab2() -> None:
    """Source: MIT 6.5940 Fall 2023 Lab 2, test_linear_quantize() (Question 1): the 5x5
    test_tensor with bitwidth=2, scale=1/3, zero_point=-1 must give exactly
    quantized_test_tensor (``_quantized_test_tensor.equal(quantized_test_tensor)``), in the
    lab's signed 2-bit range [-2, 1]; the reconstruction is scale * (q - zero_point).

    Adapted: labkit.quantize returns int32 codes (compared as int8 here, the lab's dtype) and
    takes the range explicitly; labkit.dequantize is the lab's reconstruction.
    """
    qmin, qmax = quant.qrange(BITWIDTH, symmetric=True)
    q = quant.quantize(TEST_TENSOR, SCALE, ZERO_POINT, qmin, qmax)
    assert torch.equal(q.to(torch.int8), QUANTIZED_TEST_TENSOR)
    r = quant.dequantize(q, SCALE, ZERO_POINT)
    assert torch.allclose(r, SCALE * (QUANTIZED_TEST_TENSOR.float() - ZERO_POINT))


def test_linear_quantize_case_parameters_follow_from_its_range() -> None:
    """Source: MIT 6.5940 Fall 2023 Lab 2, test_linear_quantize()'s arguments: real_min=-0.25,
    real_max=0.75, bitwidth=2, scale=1/3, zero_point=-1 (scale = (r_max - r_min) /
    (q_max - q_min) = 1 / 3 and zero_point = round(q_min - r_min / scale) = round(-1.25) = -1
    in the lab's signed range [-2, 1]; the lab's Question 2 formulas).

    Adapted: labkit.compute_qparams uses the unsigned range [0, 3] for asymmetric 2-bit codes,
    so its zero point is the lab's shifted by q_min: the same grid, the same scale, and the same
    codes up to that shift (checked on the lab's test tensor).
    """
    qp = quant.compute_qparams(REAL_MIN, REAL_MAX, BITWIDTH, symmetric=False)
    assert qp.scale == pytest.approx(SCALE, rel=1e-7)
    lab_qmin = quant.qrange(BITWIDTH, symmetric=True)[0]
    assert qp.zero_point - qp.qmin == ZERO_POINT - lab_qmin
    q = quant.quantize(TEST_TENSOR, qp.scale, qp.zero_point, qp.qmin, qp.qmax)
    assert torch.equal(q + lab_qmin - qp.qmin, QUANTIZED_TEST_TENSOR.to(torch.int32))
