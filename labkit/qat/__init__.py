"""Chapter 06, PTQ and QAT (notebooks/06_ptq_and_qat.ipynb):
- ``lesson.py``: the fake-quantised layer (QuantLayer), static and dynamic PTQ with calibrated
  activation ranges, QAT through the straight-through estimator, size accounting.
- ``mixed_precision.py``: per-layer sensitivity, and bit widths chosen under a size budget.
- ``runtimes.py``: PyTorch's and ONNX Runtime's own int8 quantizers, timed against FP32.
- ``char_lm.py``: the small character LM (a shipped checkpoint) that section 7 quantises.
- ``llm.py``: how LLMs are quantised: group-wise RTN, GPTQ, AWQ, SmoothQuant (W8A8).
- ``lsq.py``: learned step sizes (LSQ) against the fixed MinMax scales of QAT.
"""

from labkit.qat.char_lm import CharLM, LMConfig, load_char_lm, lm_loss, lm_windows  # noqa: I001
from labkit.qat.char_lm import train_char_lm
from labkit.qat.lesson import QuantLayer, calibrate_activations, calibration_batches
from labkit.qat.lesson import dynamic_ptq, prepare, qat_finetune, qat_model, qat_step
from labkit.qat.lesson import quant_layers, quantizable_layers, size_bytes, static_ptq
from labkit.qat.lesson import weight_qparams
from labkit.qat.llm import LinearStats, awq_scales, block_linears, fake_quantize_groupwise
from labkit.qat.llm import gptq_quantize, groupwise_size_bytes, layer_inputs, linear_stats
from labkit.qat.llm import output_error, quantize_linears, smooth_linear, smoothquant_scales
from labkit.qat.llm import w8a8_linear
from labkit.qat.lsq import lsq_fake_quantize, lsq_model
from labkit.qat.mixed_precision import assign_bits, sensitivity
from labkit.qat.runtimes import runtime_table, torch_int8

__all__ = ["QuantLayer", "weight_qparams", "quantizable_layers", "prepare", "quant_layers"]
__all__ += ["calibrate_activations", "calibration_batches", "static_ptq", "dynamic_ptq"]
__all__ += ["qat_model", "qat_step", "qat_finetune", "size_bytes"]
__all__ += ["sensitivity", "assign_bits", "torch_int8", "runtime_table"]
__all__ += ["CharLM", "LMConfig", "load_char_lm", "lm_loss", "lm_windows", "train_char_lm"]
__all__ += ["fake_quantize_groupwise", "gptq_quantize", "output_error", "awq_scales"]
__all__ += ["smoothquant_scales", "smooth_linear", "w8a8_linear", "LinearStats"]
__all__ += ["lsq_fake_quantize", "lsq_model"]
__all__ += ["block_linears", "layer_inputs", "linear_stats", "quantize_linears"]
__all__ += ["groupwise_size_bytes"]
