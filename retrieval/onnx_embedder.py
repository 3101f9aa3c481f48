"""The embedder's transformer run by OpenVINO or ONNX Runtime: exported to ONNX once from the
same sentence-transformers model (and, for `onnx-int8`, quantised once), cached under the model
cache folder. Tokenising, pooling and normalising stay sentence-transformers' own, so the
vectors are the same up to float rounding (cosine >= 0.999, tests/retrieval/test_onnx_embedder.py).

sentence-transformers' built-in ONNX and OpenVINO backends need optimum-onnx (which pins
transformers below 5) or optimum-intel (which pulls a CUDA torch): hence the export here, with
torch's exporter and ONNX Runtime's own fusions and quantiser."""

from __future__ import annotations

import logging
import os
import types
import warnings
from functools import partial
from pathlib import Path
from typing import Any

from retrieval.model_cache import publish, source_key

INPUTS = ("input_ids", "attention_mask", "token_type_ids")
logger = logging.getLogger(__name__)
FORMAT = "onnx-1"  # bump when the export changes, so stale copies are not reused


def _export(transformer: Any, staging: Path, int8: bool) -> None:
    """The transformer's model as ONNX (dynamic batch and length) in `staging`, with ONNX
    Runtime's fusions, then quantised to int8 weights if asked."""
    import torch

    names = [n for n in INPUTS if n in transformer.tokenizer.model_input_names]

    class Encoder(torch.nn.Module):  # type: ignore[misc]  # positional inputs in, last state out
        def __init__(self) -> None:
            super().__init__()
            self.model = transformer.model.eval()

        def forward(self, *tensors: Any) -> Any:
            return self.model(**dict(zip(names, tensors, strict=True))).last_hidden_state

    sample = transformer.tokenizer(["an example", "another, longer example"], padding=True,
                                   return_tensors="pt")  # fmt: skip
    axes = {n: {0: "batch", 1: "tokens"} for n in [*names, "last_hidden_state"]}
    # The TorchScript exporter: deprecated, but it needs no onnxscript and traces these
    # encoders faithfully (the tests compare every vector with torch's).
    with torch.inference_mode(), warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        warnings.simplefilter("ignore", UserWarning)
        torch.onnx.export(Encoder(), tuple(sample[n] for n in names),
                          str(staging / "model.onnx"), input_names=names,
                          output_names=["last_hidden_state"], dynamic_axes=axes,
                          opset_version=17, dynamo=False)  # fmt: skip
    _optimize(staging / "model.onnx", transformer.model.config)
    if int8:
        from onnxruntime.quantization import QuantType, quantize_dynamic

        # Matrix products only, a scale per output channel: the embeddings and norms
        # stay float, which keeps the vectors close to float32's. DefaultTensorType 1
        # (float): the fused operators have no type the quantiser can infer.
        quantize_dynamic(staging / "model.onnx", staging / "int8.onnx",
                         weight_type=QuantType.QInt8, per_channel=True,
                         op_types_to_quantize=["MatMul"],
                         extra_options={"DefaultTensorType": 1})  # fmt: skip
        os.replace(staging / "int8.onnx", staging / "model.onnx")


def _optimize(path: Path, config: Any) -> None:
    """ONNX Runtime's transformer fusions (attention, layer norm, GELU) for BERT-like models,
    in place; other architectures keep the plain export."""
    if getattr(config, "model_type", "") not in ("bert", "roberta", "xlm-roberta", "mpnet"):
        return
    from onnxruntime.transformers.optimizer import optimize_model

    fused = optimize_model(str(path), model_type="bert", num_heads=config.num_attention_heads,
                           hidden_size=config.hidden_size)  # fmt: skip
    fused.save_model_to_file(str(path))


def _load_and_export(model: str, int8: bool, staging: Path) -> None:
    from sentence_transformers import SentenceTransformer

    _export(SentenceTransformer(model, device="cpu")[0], staging, int8)


def exported(model: str, cache_dir: Path, *, int8: bool) -> Path:
    """The ONNX file of the sentence-transformers `model`'s transformer, exported once."""
    kind = "int8" if int8 else "float32"
    key = source_key(model, FORMAT)
    target = cache_dir / "onnx" / f"{Path(model).name or 'embedder'}-{kind}-{key}"
    publish(target, "model.onnx", partial(_load_and_export, model, int8),
            f"exporting embedder {model} to ONNX ({kind})")  # fmt: skip
    return target / "model.onnx"


def openvino_precision(core: Any, wanted: str) -> str:
    """`wanted` (f32 or bf16), or f32 where the CPU has no native bfloat16 (AVX-512 BF16, AMX):
    emulated, it would be slower than float32."""
    if wanted == "bf16" and "BF16" not in core.get_property("CPU", "OPTIMIZATION_CAPABILITIES"):
        logger.info("this CPU computes no bfloat16: the openvino-bf16 embedder runs in float32")
        return "f32"
    return wanted


def run_with_onnx(
    st_model: Any, onnx_file: Path, engine: str = "onnxruntime", precision: str = "f32"
) -> Any:
    """`st_model` with its first module's forward pass run from `onnx_file` by `engine`
    (onnxruntime, or openvino in `precision`: f32, or bf16 where the CPU computes it);
    tokenising, pooling and normalising unchanged."""
    import numpy as np
    import torch

    threads = len(os.sched_getaffinity(0))
    if engine == "openvino":
        import openvino

        core = openvino.Core()
        compiled = core.compile_model(core.read_model(str(onnx_file)), "CPU", {
            # OpenVINO's own default is bf16 where the CPU has it; f32 is asked for by name.
            "INFERENCE_PRECISION_HINT": openvino_precision(core, precision),
            "PERFORMANCE_HINT": "LATENCY", "INFERENCE_NUM_THREADS": threads,
        })  # fmt: skip
        wanted = [i.get_any_name() for i in compiled.inputs]
        output = compiled.outputs[0]

        def run(feeds: dict[str, Any]) -> Any:
            return np.asarray(compiled(feeds)[output])
    else:
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.log_severity_level = 3  # warnings about unused initialisers are not for users
        session = onnxruntime.InferenceSession(str(onnx_file), options,
                                               providers=["CPUExecutionProvider"])  # fmt: skip
        wanted = [i.name for i in session.get_inputs()]

        def run(feeds: dict[str, Any]) -> Any:
            return session.run(["last_hidden_state"], feeds)[0]

    def forward(self: Any, features: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        feeds = {n: features[n].cpu().numpy().astype(np.int64) for n in wanted}
        features["token_embeddings"] = torch.from_numpy(run(feeds))
        return features

    transformer = st_model[0]
    transformer.forward = types.MethodType(forward, transformer)
    return st_model
