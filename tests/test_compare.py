"""compare: metrics, runners, verdicts, bad input, the provider environment, LM agreement, CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from localml_kit import compare, envs, errors
from localml_kit.cli import main
from tests.conftest import IN_CI, REPO


def linear_model(
    scale: float = 1.0,
    *,
    out_name: str = "y",
    out_rows: int = 3,
    out_type: int = TensorProto.FLOAT,
    softmax: bool = False,
) -> onnx.ModelProto:
    """x[batch, 4] -> MatMul(W * scale) (-> Softmax) -> y[batch, out_rows] (cast when out_type says)."""
    w = np.arange(4 * out_rows, dtype=np.float32).reshape(4, out_rows) / 10 * scale
    nodes = [helper.make_node("MatMul", ["x", "W"], ["m"])]
    last = "m"
    if softmax:
        nodes.append(helper.make_node("Softmax", ["m"], ["s"], axis=-1))
        last = "s"
    if out_type != TensorProto.FLOAT:
        nodes.append(helper.make_node("Cast", [last], [out_name], to=out_type))
    else:
        nodes.append(helper.make_node("Identity", [last], [out_name]))
    graph = helper.make_graph(
        nodes,
        "linear",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4])],
        [helper.make_tensor_value_info(out_name, out_type, ["batch", out_rows])],
        initializer=[numpy_helper.from_array(w, "W")],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=10)


def save(model: onnx.ModelProto, path: Path) -> Path:
    onnx.save(model, path)
    return path


def feeds(rows: int = 16) -> dict[str, np.ndarray]:
    return {"x": np.random.default_rng(0).normal(size=(rows, 4)).astype(np.float32)}


# ---- pure metrics ---------------------------------------------------------------------------------


def test_error_stats_and_cosines() -> None:
    ref = np.array([[1.0, 0.0], [0.0, 2.0]])
    stats = compare.error_stats(ref, ref + np.array([[0.0, 0.5], [0.0, 0.0]]))
    assert stats["max_abs"] == 0.5 and stats["mean_abs"] == 0.125
    assert stats["cosine_min"] == pytest.approx(1 / np.sqrt(1.25))
    assert compare.row_cosines(np.zeros((1, 3)), np.zeros((1, 3))).tolist() == [1.0]


def test_topk_label_and_neighbour_agreement() -> None:
    ref = np.array([[0.1, 0.5, 0.4], [0.7, 0.2, 0.1]])
    cand = np.array([[0.1, 0.4, 0.5], [0.7, 0.1, 0.2]])
    top1, top2 = compare.topk_agreement(ref, cand, k=2)
    assert top1 == 0.5 and top2 == 0.75
    assert compare.label_agreement(np.array([1, 2, 3, 4]), np.array([1, 2, 3, 0])) == 0.75
    emb = np.array([[1.0, 0.0, 0.0], [0.9, 0.1, 0.0], [0.0, 0.0, 1.0], [0.0, 0.1, 0.9]])
    assert compare.neighbour_agreement(emb, emb) == 1.0
    swapped = emb[[0, 2, 1, 3]]  # rows move: neighbours no longer match
    assert compare.neighbour_agreement(emb, swapped) < 1.0
    assert np.isnan(compare.neighbour_agreement(emb[:2], emb[:2]))


def test_guess_kind() -> None:
    assert compare.guess_kind("label", np.array([1, 2])) == "label"
    assert compare.guess_kind("probabilities", np.full((2, 4), 0.25, np.float32)) == "scores"
    unit = np.array([[0.6, -0.8, 0.0], [0.0, 0.6, 0.8]], dtype=np.float32)
    assert compare.guess_kind("out", unit) == "embedding"
    assert compare.guess_kind("hidden", np.ones((2, 3, 4), np.float32)) == "tensor"


def test_verdict_names_each_failure_and_default_tolerances_by_precision() -> None:
    tol = compare.default_tolerance("int8")
    ok, reason = compare.verdict("embedding", {"cosine": 0.964, "neighbours": 0.67}, tol)
    assert not ok and "cosine 0.9640 < 0.99" in reason and "neighbours 67.0%" in reason
    assert compare.verdict("embedding", {"cosine": 0.992, "neighbours": 0.96}, tol) == (True, "")
    assert compare.default_tolerance("fp32").cosine > compare.default_tolerance("fp16").cosine
    assert compare.default_tolerance("int4").top1 < compare.default_tolerance("int8").top1
    assert compare.default_tolerance("unknown") == compare.default_tolerance("fp32")


def test_token_agreement_is_a_pure_function_over_logits() -> None:
    rng = np.random.default_rng(1)
    ref = rng.normal(size=(2, 5, 11))
    same = compare.token_agreement(ref, ref)
    assert same.agreement == 1.0 and same.mean_kl == pytest.approx(0.0, abs=1e-12)
    assert same.positions == 10 and same.top5 == 1.0
    flipped = ref.copy()
    flipped[0, 0] = -flipped[0, 0]  # one position now prefers another token
    result = compare.token_agreement([ref[0], ref[1]], [flipped[0], flipped[1]])
    assert result.agreement == pytest.approx(0.9) and result.mean_kl > 0
    assert result.max_kl >= result.mean_kl
    with pytest.raises(ValueError, match="cannot be compared"):
        compare.token_agreement(ref, ref[:, :, :5])


# ---- real ONNX Runtime sessions on tiny models ----------------------------------------------------


def test_identical_models_pass_and_a_changed_one_fails(tmp_path: Path) -> None:
    ref = save(linear_model(), tmp_path / "ref.onnx")
    same = save(linear_model(), tmp_path / "same.onnx")
    off = save(linear_model(1.2), tmp_path / "off.onnx")
    result = compare.outputs(ref, {"same": same, "off": off}, feeds())
    assert result.verdicts() == {"same": True, "off": False}
    table = result.table.set_index("candidate")
    assert table.loc["same", "max_abs"] == 0.0 and table.loc["same", "cosine"] == 1.0
    assert table.loc["off", "max_abs"] > 0.1 and "max abs error" in table.loc["off", "reason"]
    assert not result.passed
    assert set(result.abs_errors) == {"same", "off"}
    html = result._repr_html_()
    assert "PASS" in html and "FAIL" in html
    data = json.loads(result.to_json())
    assert data["verdicts"] == {"same": True, "off": False} and len(data["rows"]) == 2


def test_scores_get_topk_and_a_session_and_callable_are_candidates(tmp_path: Path) -> None:
    import onnxruntime as ort

    ref = save(linear_model(softmax=True, out_name="probabilities"), tmp_path / "p.onnx")
    session = ort.InferenceSession(str(ref), providers=["CPUExecutionProvider"])
    weights = np.arange(12, dtype=np.float32).reshape(4, 3) / 10

    def by_hand(inputs: dict[str, np.ndarray]) -> np.ndarray:
        m = inputs["x"] @ weights
        e = np.exp(m - m.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)

    result = compare.outputs(ref, [session, by_hand], feeds(), top_k=2)
    assert result.candidates == ["p.onnx", "by_hand"]
    assert (result.table["kind"] == "scores").all()
    assert (result.table["top1"] == 1.0).all() and (result.table["topk"] == 1.0).all()
    assert result.passed


def test_recorded_outputs_and_kinds_override(tmp_path: Path) -> None:
    ref = save(linear_model(), tmp_path / "ref.onnx")
    x = feeds()
    recorded = {"y": x["x"] @ (np.arange(12, dtype=np.float32).reshape(4, 3) / 10)}
    result = compare.outputs(recorded, [ref], x, kinds={"y": "embedding"})
    assert result.reference == "recorded"
    assert result.table.loc[0, "kind"] == "embedding" and result.table.loc[0, "neighbours"] == 1.0


def test_list_of_input_sets_is_pooled(tmp_path: Path) -> None:
    ref = save(linear_model(), tmp_path / "ref.onnx")
    result = compare.outputs(ref, [ref], [feeds(4), feeds(6)])
    assert result.table.loc[0, "shape"] == "10x3" and result.inputs == "2 input sets"


# ---- bad input -----------------------------------------------------------------------------------


def test_output_name_mismatch_says_which(tmp_path: Path) -> None:
    ref = save(linear_model(), tmp_path / "ref.onnx")
    other = save(linear_model(out_name="logits"), tmp_path / "other.onnx")
    with pytest.raises(
        errors.OutputMismatchError, match=r"has no output 'y' \(its outputs: logits"
    ):
        compare.outputs(ref, [other], feeds())


def test_output_shape_mismatch_says_both_shapes(tmp_path: Path) -> None:
    ref = save(linear_model(), tmp_path / "ref.onnx")
    wide = save(linear_model(out_rows=5), tmp_path / "wide.onnx")
    with pytest.raises(
        errors.OutputMismatchError, match=r"'y' differs in shape: reference \(16, 3\).*\(16, 5\)"
    ):
        compare.outputs(ref, [wide], feeds())


def test_output_dtype_mismatch_says_both_dtypes(tmp_path: Path) -> None:
    ref = save(linear_model(), tmp_path / "ref.onnx")
    ints = save(linear_model(out_type=TensorProto.INT64), tmp_path / "ints.onnx")
    with pytest.raises(
        errors.OutputMismatchError, match=r"'y' differs in dtype: reference float32.*int64"
    ):
        compare.outputs(ref, [ints], feeds())
    doubles = save(linear_model(out_type=TensorProto.DOUBLE), tmp_path / "d.onnx")
    assert compare.outputs(ref, [doubles], feeds()).passed  # same kind: compared
    with pytest.raises(errors.OutputMismatchError, match="float64"):
        compare.outputs(ref, [doubles], feeds(), strict_dtypes=True)


def test_missing_inputs_are_named(tmp_path: Path) -> None:
    ref = save(linear_model(), tmp_path / "ref.onnx")
    with pytest.raises(
        errors.InputError, match=r"needs input 'x', which was not given \(given: z\)"
    ):
        compare.outputs(ref, [ref], {"z": np.zeros((1, 4), np.float32)})


def test_unnamed_outputs_of_the_wrong_count(tmp_path: Path) -> None:
    ref = save(linear_model(), tmp_path / "ref.onnx")
    with pytest.raises(errors.OutputMismatchError, match="returned 2 unnamed output"):
        compare.outputs(ref, [lambda f: (f["x"], f["x"])], feeds())


def test_unknown_provider_and_not_comparable() -> None:
    with pytest.raises(errors.UnknownProviderError):
        compare.as_runner(("m.onnx", "no-such-provider"))
    with pytest.raises(errors.ModelFormatError, match="cannot compare int"):
        compare.as_runner(3)


def test_provider_missing_everywhere_names_the_fix(tmp_path: Path) -> None:
    ref = save(linear_model(), tmp_path / "ref.onnx")
    # The hermetic home has no provider environments.
    with pytest.raises(errors.ProviderUnavailableError, match="localml-kit envs create openvino"):
        compare.outputs(ref, [(ref, "openvino")], feeds())


# ---- real samples ----------------------------------------------------------------------------------


@pytest.mark.samples
def test_digits_onnx_agrees_with_scikit_learn(real_home: Path) -> None:
    from localml_kit import convert, samples

    est, x_test, _ = convert.digits_estimator("mlp")
    recorded = np.load(samples.path("digits-mlp", "test-set"))
    assert np.array_equal(recorded["x"], x_test)  # the same held-out rows the sample kept
    result = compare.outputs(est, {"onnx": "digits-mlp"}, {"X": x_test})
    table = result.table.set_index("output")
    assert table.loc["label", "top1"] == 1.0 and table.loc["label", "kind"] == "label"
    assert table.loc["probabilities", "max_abs"] < 1e-4
    assert result.passed


@pytest.mark.samples
def test_minilm_default_inputs_and_corpus(real_home: Path) -> None:
    texts = compare.corpus()
    assert len(texts) >= 200 and len(set(texts)) == len(texts)
    assert compare.corpus(REPO / "data" / "sentences.txt") == texts
    result = compare.outputs("all-minilm-l6-v2", ["all-minilm-l6-v2"], only=["sentence_embedding"])
    assert result.inputs.startswith("sample: input_ids 8x") and result.passed
    assert result.dims["batch"] == 8 and result.dims["sequence"] > 1
    assert list(result.table["output"]) == ["sentence_embedding"]
    assert result.table.loc[0, "kind"] == "embedding"
    # Without --only, the sample's primary output is judged and the others are reported.
    both = compare.outputs("all-minilm-l6-v2", ["all-minilm-l6-v2"])
    judged = dict(zip(both.table["output"], both.table["judged"], strict=True))
    assert judged == {"last_hidden_state": False, "sentence_embedding": True}


@pytest.fixture
def openvino_env(real_home: Path) -> envs.Environment:
    try:
        return envs.get("openvino")
    except errors.EnvironmentNotReadyError as exc:
        message = f"the OpenVINO provider environment is not ready ({exc})"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)


@pytest.mark.samples
def test_minilm_on_openvino_from_its_environment(openvino_env: envs.Environment) -> None:
    feeds = compare.sentence_inputs(compare.corpus()[:24])
    result = compare.outputs(
        "all-minilm-l6-v2", ["all-minilm-l6-v2@openvino"], feeds, only=["sentence_embedding"]
    )
    row = result.table.iloc[0]
    assert row["candidate"] == "all-minilm-l6-v2@openvino" and bool(row["passed"])
    assert row["max_abs"] < 1e-4 and row["neighbours"] == 1.0
    assert result.notes["all-minilm-l6-v2@openvino"] == []  # it really ran on OpenVINO


@pytest.mark.samples
def test_language_model_agreement_int8_against_fp32(real_home: Path) -> None:
    prompts = ["The capital of France is Paris.", "Water boils at one hundred degrees."]
    table = compare.language_models(
        "smollm2-135m-instruct:onnx-fp32", ["smollm2-135m-instruct:onnx-int8"], prompts
    )
    row = table.iloc[0]
    assert row["precision"] == "int8" and row["positions"] > 10
    assert 0.7 <= row["agreement"] <= 1.0 and row["mean_kl"] >= 0
    same = compare.token_agreement(
        *[compare.lm_logits("smollm2-135m-instruct:onnx-int8", [[1, 2, 3]])[0]] * 2
    )
    assert same.agreement == 1.0


# ---- command line -----------------------------------------------------------------------------------


def test_cli_compare_passes_and_fails(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ref = save(linear_model(), tmp_path / "ref.onnx")
    off = save(linear_model(1.3), tmp_path / "off.onnx")
    np.savez(tmp_path / "in.npz", **feeds())
    assert main(["compare", str(ref), str(ref), "--inputs", str(tmp_path / "in.npz")]) == 0
    assert "PASS" in capsys.readouterr().out
    assert (
        main(["compare", str(ref), str(off), "--inputs", str(tmp_path / "in.npz"), "--json"]) == 1
    )
    data = json.loads(capsys.readouterr().out)
    assert data["verdicts"] == {off.name: False}  # a file is labelled by its name


def test_cli_compare_bad_input_is_one_error_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ref = save(linear_model(), tmp_path / "ref.onnx")
    wide = save(linear_model(out_rows=5), tmp_path / "wide.onnx")
    assert main(["compare", str(ref), str(wide)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: output 'y' differs in shape") and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
    assert main(["compare", str(ref), str(tmp_path / "missing.onnx")]) == 2
    assert "error: no model at" in capsys.readouterr().err
