"""Built-in driver for ONNX models, run with onnxruntime on the CPU.

Request: `{"data": ...}` (or a bare list), converted to the element type of the
model's first input (float32 for the usual `tensor(float)`); response: the model's
first output as a JSON list. Models with several inputs need their own driver.

`run_batch` concatenates the requests along the first axis and runs the model once
when that axis is dynamic (a batch dimension); with a fixed first dimension each
request is run on its own.
"""

from __future__ import annotations

import importlib
import logging
from typing import Any

from modelyard.runtime.builtin._common import (
    find_model_file,
    model_dir,
    parse_rows,
    score_each,
    split_lengths,
)

__all__ = ["OnnxDriver"]

_log = logging.getLogger("modelyard.runtime")
_ELEMENT_TYPES = {
    "tensor(float)": "float32",
    "tensor(double)": "float64",
    "tensor(float16)": "float16",
    "tensor(int64)": "int64",
    "tensor(int32)": "int32",
    "tensor(int8)": "int8",
    "tensor(uint8)": "uint8",
    "tensor(bool)": "bool",
}


class OnnxDriver:
    """Loads the first `.onnx` file under AZUREML_MODEL_DIR into an InferenceSession."""

    def __init__(self) -> None:
        self.session: Any = None
        self.input_sample: Any = None
        self.output_sample: Any = None
        self.dynamic_batch = False
        self._numpy: Any = None
        self._input_name = ""
        self._output_name = ""
        self._dtype = "float32"

    def init(self) -> None:
        self._numpy = importlib.import_module("numpy")
        onnxruntime: Any = importlib.import_module("onnxruntime")
        path = find_model_file(model_dir(), (".onnx",))
        self.session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        first_input = self.session.get_inputs()[0]
        self._input_name = first_input.name
        self._output_name = self.session.get_outputs()[0].name
        self._dtype = _ELEMENT_TYPES.get(first_input.type, "float32")
        shape = list(first_input.shape or [])
        self.dynamic_batch = bool(shape) and not isinstance(shape[0], int)
        _log.info("loaded ONNX model %s: input %s %s", path, first_input.name, shape)
        if shape and all(isinstance(dim, int) for dim in shape[1:]):
            rows = self._numpy.zeros([1 if self.dynamic_batch else shape[0], *shape[1:]])
            self.input_sample = {"data": rows.tolist()}
            try:
                self.output_sample = self._infer(rows.astype(self._dtype)).tolist()
            except Exception:  # a sample is a nicety; some models reject zeros
                self.output_sample = None

    def run(self, raw_body: str) -> Any:
        return self._infer(self._array(raw_body)).tolist()

    def run_batch(self, raw_bodies: list[str]) -> list[Any]:
        """One session run over every request when the first axis is a batch axis."""
        if not self.dynamic_batch or len(raw_bodies) == 1:
            return score_each(self.run, raw_bodies)
        results: list[Any] = [None] * len(raw_bodies)
        parsed: list[tuple[int, Any]] = []
        for index, raw in enumerate(raw_bodies):
            try:
                parsed.append((index, self._array(raw)))
            except Exception as exc:
                results[index] = exc
        if not parsed:
            return results
        try:
            outputs = self._infer(self._numpy.concatenate([array for _, array in parsed]))
            bounds = split_lengths([len(array) for _, array in parsed])
            if len(outputs) != bounds[-1][1]:
                raise ValueError("the model's output is not one row per input row")
            for (index, _), (start, stop) in zip(parsed, bounds, strict=True):
                results[index] = outputs[start:stop].tolist()
        except Exception:
            # Mismatched shapes (or one bad request): run them one by one.
            scored = score_each(self.run, [raw_bodies[index] for index, _ in parsed])
            for (index, _), result in zip(parsed, scored, strict=True):
                results[index] = result
        return results

    def _array(self, raw_body: str) -> Any:
        return self._numpy.asarray(parse_rows(raw_body), dtype=self._dtype)

    def _infer(self, array: Any) -> Any:
        return self.session.run([self._output_name], {self._input_name: array})[0]
