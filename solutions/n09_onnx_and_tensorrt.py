"""Worked solutions of notebook 09, written as a learner would."""

import numpy as np
import torch
from onnxruntime.quantization import CalibrationDataReader


class DigitsReader(CalibrationDataReader):
    """Feeds ORT's calibrator one batch of digits at a time."""

    def __init__(self, x, input_name="x", batch_size=32):
        data = x.detach().cpu().numpy().astype(np.float32)
        self.batches = [data[i : i + batch_size] for i in range(0, len(data), batch_size)]
        self.input_name = input_name
        self.position = 0

    def get_next(self):
        if self.position >= len(self.batches):
            return None
        batch = self.batches[self.position]
        self.position += 1
        return {self.input_name: batch}

    def rewind(self):
        self.position = 0


def parity_check(expected, got, atol=1e-4, rtol=1e-3):
    expected = torch.as_tensor(np.asarray(expected)).double()
    got = torch.as_tensor(np.asarray(got)).double()
    diff = (got - expected).abs()
    ok = bool((diff <= atol + rtol * expected.abs()).all())
    return diff.max().item(), ok


EXERCISES = {
    "deploy.calibration_reader": DigitsReader,
    "deploy.parity_check": parity_check,
}
