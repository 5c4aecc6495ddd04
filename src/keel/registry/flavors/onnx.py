"""ONNX models (a ModelProto, or serialized ONNX bytes), run with onnxruntime."""

from __future__ import annotations

from typing import Any

from keel.registry.flavors.contract import MissingFramework, SavedModel

__all__ = ["OnnxFlavor"]


class OnnxFlavor:
    name = "onnx"
    package = "onnxruntime"

    def handles(self, model: Any) -> bool:
        return type(model).__module__.startswith("onnx") and type(model).__name__ == "ModelProto"

    def save(self, model: Any, example: Any | None) -> SavedModel:
        data = model.SerializeToString()
        versions = {"onnx-opset": str(max((o.version for o in model.opset_import), default=0))}
        try:
            import onnxruntime

            versions["onnxruntime"] = onnxruntime.__version__
        except ImportError:
            pass
        return SavedModel({"model.onnx": data}, "onnx", {}, versions)

    def load(self, saved: SavedModel) -> Any:
        try:
            import onnxruntime
        except ImportError:
            raise MissingFramework("onnxruntime", self.package) from None
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = 1
        return onnxruntime.InferenceSession(
            saved.files["model.onnx"], options, providers=["CPUExecutionProvider"]
        )

    def predict(self, model: Any, inputs: Any) -> Any:
        import numpy as np

        first = model.get_inputs()[0]
        array = np.asarray(inputs)
        kind = first.type  # e.g. "tensor(float)"
        if "double" in kind:
            array = array.astype(np.float64)
        elif "float" in kind:
            array = array.astype(np.float32)
        elif "int64" in kind:
            array = array.astype(np.int64)
        return model.run(None, {first.name: array})[0]
