"""Codebook coding: NLI zero-shot (tiny model vs the transformers pipeline), offline
zero-shot by embedding similarity, few-shot against scikit-learn, the CLI and the errors."""

import numpy as np
import pandas as pd
import pytest

from analysis.codebook import read_codebook
from analysis.corpus import build_corpus
from analysis.errors import CodebookError, TextlabError
from analysis.textutil import slug
from analysis.tasks.coding import FewShotModel, learning_curve, suggest_next
from analysis.jobs import JobManager
from analysis.tasks import coding
from analysis.workspace import Workspace
from tests.paths import ROOT, SAMPLE_CSV
from tests.tiny_models import make_tiny_classifier

SAMPLE_BOOK = ROOT / "sample_data" / "policy_codebook.json"
LABELS = ["housing", "public transport", "health care"]
TEXTS = [
    "Rent went up again this year and the landlord will not fix the damp.",
    "The bus never comes on time and I am late for work every day.",
    "short",
    "Waiting three weeks for a GP appointment is not acceptable. " * 70,  # longer than the window
]


@pytest.fixture(scope="module")
def tiny_nli(tiny_nli_model):
    return tiny_nli_model


def pipeline_scores(model_path, text, multi, template="This text is about {}."):
    from transformers import pipeline

    pipe = pipeline("zero-shot-classification", model=str(model_path), device="cpu")
    out = pipe(text, candidate_labels=LABELS, hypothesis_template=template, multi_label=multi)
    return dict(zip(out["labels"], out["scores"]))


@pytest.mark.parametrize("multi", [False, True])
def test_nli_path_equals_the_transformers_zero_shot_pipeline(tiny_nli, multi):
    book = {"codes": LABELS, "multi_label": multi}
    out = coding.run(TEXTS[:3], {"codebook": book, "backend": "transformers", "model": str(tiny_nli),
                                 "device": "cpu", "batch_size": 2})
    for i, text in enumerate(TEXTS[:3]):
        ref = pipeline_scores(tiny_nli, text, multi)
        mine = {label: out.loc[i, f"code_{label.replace(' ', '_')}"] for label in LABELS}
        assert max(abs(ref[k] - mine[k]) for k in LABELS) < 0.02
        if multi:
            assert out.loc[i, "code_labels"] == ";".join(k for k in LABELS if ref[k] >= 0.5)
        else:
            assert out.loc[i, "code_label"] == max(ref, key=ref.get)
            assert sum(mine.values()) == pytest.approx(1, abs=1e-3)


def test_nli_long_texts_are_split_and_counted_in_the_manifest(home, tiny_nli):
    ws = Workspace()
    project = ws.create_project("p", build_corpus(pd.DataFrame({"text": TEXTS + [""]}), "text"))
    manager = JobManager(ws)
    run = manager.submit(project, "coding", {"codebook": {"codes": LABELS}, "backend": "transformers",
                                            "model": str(tiny_nli), "device": "cpu"})
    assert manager.wait(120)
    manifest = project.manifest(run.id)
    assert manifest["rows"]["split"] == 1 and manifest["rows"]["empty"] == 1 and manifest["rows"]["coded"] == 4
    assert manifest["method"] == "zero-shot (NLI)" and manifest["codebook_version"]
    assert manifest["hypotheses"][0] == "This text is about housing."
    result = project.result(run.id)
    assert len(result) == 5 and pd.isna(result.loc[4, "code_label"])
    assert result.loc[3, "code_label"] in LABELS


def test_nli_none_label_goes_to_texts_no_code_is_entailed_for(tiny_nli):
    book = {"codes": LABELS, "none_label": "None of these"}
    out = coding.run(TEXTS[:3], {"codebook": book, "backend": "transformers", "model": str(tiny_nli), "device": "cpu"})
    multi = coding.run(TEXTS[:3], {"codebook": {"codes": LABELS}, "backend": "transformers", "model": str(tiny_nli),
                                   "device": "cpu", "multi_label": True})
    independent = multi[[f"code_{label.replace(' ', '_')}" for label in LABELS]].to_numpy()
    expected_none = 1 - independent.max(axis=1)
    assert np.allclose(out["code_none_of_these"], expected_none, atol=2e-4)
    for i in range(3):
        assert (out.loc[i, "code_label"] == "None of these") == (expected_none[i] > 0.5)


def test_a_model_without_an_entailment_class_is_refused(tmp_path):
    path = make_tiny_classifier(tmp_path / "clf", labels=("negative", "positive"))
    with pytest.raises(TextlabError, match="no 'entailment' class"):
        coding.run(["x"], {"codebook": {"codes": LABELS}, "backend": "transformers", "model": str(path), "device": "cpu"})


def test_offline_zero_shot_codes_clear_texts_correctly():
    book = read_codebook(SAMPLE_BOOK)
    texts = [
        "Our landlord put the rent up by 200 pounds and we may have to move out.",
        "The number 12 bus was cancelled again, I missed my train connection.",
        "I waited five hours in the hospital emergency department with my mum last night.",
        "The river flooded the high street for the third time this winter.",
        "Food prices at the supermarket have gone through the roof, my wages don't cover it.",
    ]
    out = coding.run(texts, {"codebook": book.to_dict(), "backend": "offline"})
    assert out["code_label"].tolist() == book.labels
    prob_columns = [f"code_{c.slug}" for c in book.codes] + ["code_none_of_these"]
    assert np.allclose(out[prob_columns].sum(axis=1), 1, atol=1e-3)
    multi = coding.run(texts, {"codebook": book.to_dict(), "backend": "offline", "multi_label": True})
    for label, cell in zip(book.labels, multi["code_labels"]):
        assert label in cell.split(";")


def test_offline_unrelated_text_gets_the_none_label():
    book = read_codebook(SAMPLE_BOOK)
    out = coding.run(["Happy birthday to my lovely cat Mittens!"], {"codebook": book.to_dict(), "backend": "offline"})
    assert out.loc[0, "code_label"] == "None of these"


# ---------------------------------------------------------------------- few-shot


def sample_frame():
    return pd.read_csv(SAMPLE_CSV, dtype=str, keep_default_na=False).replace({"": None})


@pytest.mark.slow
def test_few_shot_training_rows_get_out_of_fold_predictions_equal_to_sklearn(home):
    """The probabilities on coded rows equal scikit-learn's cross_val_predict with the same folds."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    from analysis.embeddings import Embedder

    frame = sample_frame()
    book = read_codebook(SAMPLE_BOOK)
    out = coding.run(frame["text"].tolist(), {"codebook": book.to_dict(), "labels_column": "human_code"}, frame=frame)
    coded = frame["human_code"].notna().to_numpy()
    vectors = Embedder().encode(frame["text"][coded].tolist())
    labels_order = book.output_labels
    y = np.array([labels_order.index(c) for c in frame["human_code"][coded]])
    ref = cross_val_predict(
        LogisticRegression(C=1.0, max_iter=2000, class_weight="balanced", random_state=0), vectors, y,
        cv=StratifiedKFold(5, shuffle=True, random_state=0), method="predict_proba")
    mine = out.loc[coded, [f"code_{slug(label)}" for label in labels_order]].to_numpy()
    assert np.allclose(mine, ref, atol=1e-4)
    assert (out.loc[coded, "code_label"].to_numpy() == np.array(labels_order)[ref.argmax(axis=1)]).all()


def test_few_shot_run_reports_cross_validation_in_the_manifest(home):
    frame = sample_frame()
    corpus = build_corpus(frame, "text", id_column="respondent_id")
    ws = Workspace()
    project = ws.create_project("p", corpus)
    manager = JobManager(ws)
    run = manager.submit(project, "coding", {"codebook": str(SAMPLE_BOOK), "labels_column": "human_code"})
    assert manager.wait(180)
    manifest = project.manifest(run.id)
    assert manifest["method"].startswith("few-shot") and manifest["training_rows"] == 80
    assert manifest["rows"]["trained_on"] == 80
    f1 = manifest["cross_validation"]["metrics"]["macro_f1"]
    assert 0 <= f1["ci_low"] <= f1["value"] <= f1["ci_high"] <= 1
    assert manifest["parameters"]["codebook"]["codes"][0]["label"] == "Housing"  # the run keeps the codebook itself
    # The embeddings were cached in the project; a second run computes none of them again.
    assert any((project.folder / "embeddings").rglob("*.npy"))


@pytest.mark.slow
def test_few_shot_without_a_codebook_learns_the_codes_from_the_column():
    frame = sample_frame()
    out = coding.run(frame["text"].tolist(), {"labels_column": "human_code"}, frame=frame)
    assert set(out["code_label"].dropna()) <= set(frame["human_code"].dropna())
    assert "code_none_of_these" in out.columns


def test_few_shot_errors_say_what_to_code():
    frame = pd.DataFrame({"text": ["a b", "c d", "e f", "g h"], "code": ["x", "x", "y", None]})
    with pytest.raises(TextlabError, match=r"Too few coded rows.*'y' \(1\)"):
        coding.run(frame["text"].tolist(), {"labels_column": "code"}, frame=frame)
    with pytest.raises(TextlabError, match="not in the corpus"):
        coding.run(frame["text"].tolist(), {"labels_column": "nope"}, frame=frame)
    with pytest.raises(TextlabError, match="not in the codebook: 'x'"):
        coding.run(frame["text"].tolist(), {"labels_column": "code", "codebook": {"codes": ["y", "z"]}}, frame=frame)
    with pytest.raises(CodebookError, match="needs a codebook"):
        coding.run(["text"], {})


def test_few_shot_model_multi_label_and_unseen_codes():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 8))
    codes = [["a"] if x[0] > 0 else ["b"] for x in X]
    codes = [c + (["c"] if x[1] > 0 else []) for c, x in zip(codes, X)]
    model = FewShotModel(multi_label=True, labels=["a", "b", "c", "d"])
    report = model.cross_validate(X, codes, folds=4)
    model.fit(X, codes)
    proba = model.predict_proba(X)
    assert proba.shape == (40, 4) and (proba[:, 3] == 0).all() and report["unseen_codes"] == ["d"]
    assert report["metrics"]["macro_f1"]["value"] > 0.6


def test_learning_curve_grows_towards_all_rows():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(60, 5))
    codes = ["a" if x[0] > 0 else "b" for x in X]
    curve = learning_curve(X, codes, steps=4)
    assert list(curve.columns) == ["n_train", "macro_f1", "sd"]
    assert curve["n_train"].is_monotonic_increasing and curve["n_train"].iloc[-1] == 48
    assert curve["macro_f1"].iloc[-1] > 0.8


def test_suggest_next_picks_the_least_certain_uncoded_rows():
    proba = np.array([[0.9, 0.1], [0.55, 0.45], [0.5, 0.5], [0.6, 0.4], [0.51, 0.49]])
    assert suggest_next(proba, k=2).tolist() == [2, 4]
    assert suggest_next(proba, k=2, exclude=np.array([0, 0, 1, 0, 0], bool)).tolist() == [4, 1]
    assert suggest_next(np.array([[0.9, 0.45], [0.1, 0.2]]), k=1, multi_label=True).tolist() == [0]


# ---------------------------------------------------------------------- CLI


@pytest.mark.slow
def test_cli_codes_the_sample_zero_shot_and_few_shot(home, tmp_path):
    from analysis.cli import main

    out = tmp_path / "coded.csv"
    assert main(["analyze", str(SAMPLE_CSV), "-o", str(out), "--task", "coding", "--codebook", str(SAMPLE_BOOK)]) == 0
    frame = pd.read_csv(out)
    assert len(frame) == 467 and "code_label" in frame.columns and "code_housing" in frame.columns
    assert set(frame["code_label"].dropna()) <= set(read_codebook(SAMPLE_BOOK).output_labels)
    out2 = tmp_path / "few.csv"
    assert main(["analyze", str(SAMPLE_CSV), "-o", str(out2), "--task", "coding", "--codebook", str(SAMPLE_BOOK),
                 "--labels-column", "human_code"]) == 0
    few = pd.read_csv(out2)
    agree = (few["code_label"] == few["human_code"])[few["human_code"].notna()].mean()
    assert agree > 0.5  # out-of-fold predictions on 80 coded rows; chance is 1/6


def test_cli_coding_errors_are_one_line(home, tmp_path, capsys):
    from analysis.cli import main

    assert main(["analyze", str(SAMPLE_CSV), "-o", str(tmp_path / "x.csv"), "--task", "coding"]) == 2
    assert "needs a codebook" in capsys.readouterr().err
    bad = tmp_path / "bad.json"
    bad.write_text('{"codes": [{"label": "A"}, {"label": "a"}]}', encoding="utf-8")
    assert main(["analyze", str(SAMPLE_CSV), "-o", str(tmp_path / "x.csv"), "--task", "coding", "--codebook", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "appears twice" in err and len(err.strip().splitlines()) == 1


@pytest.mark.slow
def test_xlsx_export_of_a_coding_run_carries_the_codebook_sheet(home, tmp_path):
    from analysis.cli import main

    out = tmp_path / "coded.xlsx"
    assert main(["analyze", str(SAMPLE_CSV), "-o", str(out), "--task", "coding", "--codebook", str(SAMPLE_BOOK)]) == 0
    sheets = pd.read_excel(out, sheet_name=None)
    assert set(sheets) >= {"data", "codebook", "runs"}
    assert sheets["codebook"]["label"].tolist()[:2] == ["Housing", "Public transport"]
    assert len(sheets["data"]) == 467
