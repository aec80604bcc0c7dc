"""Build steps for the offline samples.

Each step runs in a child process (``python -m localml_kit.samples._builders STEP
FOLDER``) so that torch, transformers and their memory never enter the caller's
process or notebook kernel. A step reads what earlier steps left in FOLDER and
writes its own outputs there; it raises on any failure. The language-model
steps use ``localml_kit.conversion`` (the same steps ``slm.build`` runs).
"""

from __future__ import annotations

import json
import shutil
import sys
from collections.abc import Callable
from pathlib import Path

from localml_kit import errors

SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


def smollm2_gguf_to_hf(folder: Path) -> None:
    """GGUF (Q4_1) -> Hugging Face folder in fp32, offline."""
    from localml_kit.conversion import gguf_to_hf

    gguf_to_hf(folder / "gguf" / SMOLLM2_GGUF, folder / "hf-fp32")


def _genai_build(folder: Path, precision: str) -> None:
    """HF folder -> ONNX Runtime GenAI model folder with the builder of onnxruntime-genai."""
    from localml_kit.conversion import hf_to_genai

    hf_to_genai(folder / "hf-fp32", folder / f"onnx-{precision}", precision)


def smollm2_onnx_fp32(folder: Path) -> None:
    _genai_build(folder, "fp32")


def smollm2_onnx_int8(folder: Path) -> None:
    _genai_build(folder, "int8")


def smollm2_onnx_int4(folder: Path) -> None:
    _genai_build(folder, "int4")


def smollm2_onnx_gguf(folder: Path) -> None:
    """The fp32 build with the GGUF's own Q4_1 / Q8_0 blocks carried in (no re-quantizing)."""
    from localml_kit.conversion import carry_blocks

    carry_blocks(folder / "gguf" / SMOLLM2_GGUF, folder / "onnx-fp32", folder / "onnx-gguf")


def _name_fixed_output_dims(path: Path, *, hidden: int) -> None:
    """The exporter leaves the embedding width as a made-up symbol (``Divsentence_embedding_dim_1``);
    it is fixed: write it as the number it is."""
    import onnx

    model = onnx.load(str(path))
    for output in model.graph.output:
        dims = output.type.tensor_type.shape.dim
        if dims and not dims[-1].HasField("dim_value"):
            dims[-1].Clear()
            dims[-1].dim_value = hidden
    onnx.save(model, str(path))


def minilm_export(folder: Path) -> None:
    """Sentence-transformers MiniLM -> ONNX with mean pooling and L2 normalisation inside.

    Outputs: ``last_hidden_state`` (batch, sequence, 384) and ``sentence_embedding``
    (batch, 384), checked against the PyTorch model before the file is kept.
    """
    import numpy as np
    import onnxruntime as ort
    import torch
    from tokenizers import Tokenizer
    from transformers import AutoModel

    src = folder / "source"
    bert = AutoModel.from_pretrained(src, dtype=torch.float32).eval()

    class Embedder(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.bert = bert

        def forward(self, input_ids, attention_mask, token_type_ids):
            hidden = self.bert(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            ).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            return hidden, torch.nn.functional.normalize(pooled, p=2, dim=1)

    tokenizer = Tokenizer.from_file(str(src / "tokenizer.json"))
    tokenizer.no_truncation()
    tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")
    sentences = ["A small model runs on my laptop.", "Local inference keeps data private."]
    enc = tokenizer.encode_batch(sentences)
    feeds = {
        "input_ids": np.array([e.ids for e in enc], dtype=np.int64),
        "attention_mask": np.array([e.attention_mask for e in enc], dtype=np.int64),
        "token_type_ids": np.array([e.type_ids for e in enc], dtype=np.int64),
    }
    names = list(feeds)
    dynamic = {n: {0: "batch", 1: "sequence"} for n in names}
    dynamic["last_hidden_state"] = {0: "batch", 1: "sequence"}
    dynamic["sentence_embedding"] = {0: "batch"}
    onnx_path = folder / "model.onnx"
    module = Embedder().eval()
    args = tuple(torch.from_numpy(feeds[n]) for n in names)
    with torch.no_grad():
        torch.onnx.export(
            module,
            args,
            str(onnx_path),
            input_names=names,
            output_names=["last_hidden_state", "sentence_embedding"],
            dynamic_axes=dynamic,
            opset_version=17,
            dynamo=False,
        )
        expected = module(*args)[1].numpy()
    _name_fixed_output_dims(onnx_path, hidden=int(expected.shape[-1]))
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    got = session.run(["sentence_embedding"], feeds)[0]
    err = float(np.abs(got - expected).max())
    if err > 1e-4:
        raise errors.SampleBuildError(
            f"the exported MiniLM differs from PyTorch by {err:.2e} (limit 1e-4); check that "
            "torch and transformers are the versions the build extra names, then fetch again."
        )
    for name in ("tokenizer.json", "config.json", "vocab.txt", "tokenizer_config.json"):
        shutil.copy2(src / name, folder / name)
    (folder / "export.json").write_text(
        json.dumps({"max_abs_error_vs_pytorch": err, "opset": 17}, indent=2)
    )
    shutil.rmtree(src)


def train_digits(kind: str):  # -> (estimator, x_train, x_test, y_test)
    """Train the digits sample's scikit-learn model (``mlp`` or ``forest``) exactly as its build does."""
    import numpy as np
    from sklearn.datasets import load_digits
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.model_selection import train_test_split
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x, y = load_digits(return_X_y=True)
    x = x.astype(np.float32)
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.25, random_state=0)
    if kind == "mlp":
        model = make_pipeline(
            StandardScaler(), MLPClassifier(hidden_layer_sizes=(64,), max_iter=400, random_state=0)
        )
    else:
        model = RandomForestClassifier(n_estimators=50, max_depth=12, random_state=0)
    model.fit(x_train, y_train)
    return model, x_train, x_test, y_test


def minilm_reference(folder: Path) -> None:
    """PyTorch outputs of MiniLM (mean pooling + normalise) for ``feeds.npz``: ``torch_outputs.npz``."""
    import numpy as np
    import torch
    from transformers import AutoModel

    bert = AutoModel.from_pretrained(folder / "source", dtype=torch.float32).eval()
    feeds = dict(np.load(folder / "feeds.npz"))
    with torch.no_grad():
        hidden = bert(**{k: torch.from_numpy(v) for k, v in feeds.items()}).last_hidden_state
        mask = torch.from_numpy(feeds["attention_mask"]).unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
        emb = torch.nn.functional.normalize(pooled, p=2, dim=1)
    np.savez(
        folder / "torch_outputs.npz",
        last_hidden_state=hidden.numpy(),
        sentence_embedding=emb.numpy(),
    )


def _digits(folder: Path, kind: str) -> None:
    import numpy as np
    import onnxruntime as ort
    from skl2onnx import to_onnx

    model, x_train, x_test, y_test = train_digits(kind)
    onx = to_onnx(
        model,
        x_train[:1],
        options={id(model): {"zipmap": False}},
        target_opset={"": 17, "ai.onnx.ml": 3},
    )
    path = folder / "model.onnx"
    path.write_bytes(onx.SerializeToString())
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    onnx_labels = session.run(None, {session.get_inputs()[0].name: x_test})[0]
    sk_labels = model.predict(x_test)
    agreement = float(np.mean(onnx_labels == sk_labels))
    if agreement < 1.0:
        raise errors.SampleBuildError(
            f"the ONNX model's labels agree with scikit-learn's on only {agreement:.1%} of the "
            "test rows; check that scikit-learn and skl2onnx are the versions the build extra "
            "names, then fetch again."
        )
    np.savez_compressed(folder / "test_set.npz", x=x_test, y=y_test)
    (folder / "train.json").write_text(
        json.dumps(
            {
                "estimator": type(model).__name__ if kind == "forest" else "StandardScaler+MLP",
                "test_accuracy": float(np.mean(sk_labels == y_test)),
                "onnx_sklearn_label_agreement": agreement,
                "train_rows": len(x_train),
                "test_rows": len(x_test),
            },
            indent=2,
        )
    )


def digits_mlp(folder: Path) -> None:
    _digits(folder, "mlp")


def digits_forest(folder: Path) -> None:
    _digits(folder, "forest")


STEPS: dict[str, Callable[[Path], None]] = {
    "smollm2_gguf_to_hf": smollm2_gguf_to_hf,
    "smollm2_onnx_gguf": smollm2_onnx_gguf,
    "smollm2_onnx_fp32": smollm2_onnx_fp32,
    "smollm2_onnx_int8": smollm2_onnx_int8,
    "smollm2_onnx_int4": smollm2_onnx_int4,
    "minilm_export": minilm_export,
    "minilm_reference": minilm_reference,
    "digits_mlp": digits_mlp,
    "digits_forest": digits_forest,
}


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2 or args[0] not in STEPS:
        print(f"usage: python -m localml_kit.samples._builders {{{','.join(STEPS)}}} FOLDER")
        return 2
    STEPS[args[0]](Path(args[1]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
