"""analysis.tasks.coding.preview: what the coding page asks of the library, with a fake embedder
(no model) where a model would embed texts, and the real MiniLM once."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analysis.codebook import Codebook, codes_table
from analysis.errors import TextlabError
from analysis.tasks.coding import (FewShotModel, code_columns, code_shares, human_code_columns, human_code_counts,
                                   learning_curve, next_to_code, preview_fewshot, setfit_estimate, setfit_pairs)
from analysis.tasks.coding.setfit import CPU_PAIRS_PER_SECOND
from tests.paths import SAMPLE_CSV


class WordEmbedder:
    """encode(texts): one dimension per marker word, plus seeded noise; counts its calls."""

    def __init__(self, words=("rent", "bus", "doctor")):
        self.words, self.calls = words, []

    def encode(self, texts):
        self.calls.append(list(texts))
        rng = np.random.default_rng(len(texts))
        X = np.array([[float(w in t) for w in self.words] for t in texts])
        X = X + rng.normal(0, 0.05, X.shape)
        return X.astype(np.float32)


def coded_corpus(n_per_code=12):
    words = {"housing": "rent", "transport": "bus", "health": "doctor"}
    rows = []
    for i in range(n_per_code):
        for code, word in words.items():
            rows.append({"text": f"answer {i} about the {word}", "code": code})
    rows.append({"text": "not coded yet, about the bus", "code": None})
    rows.append({"text": "   ", "code": "housing"})  # an empty text is never a training row
    frame = pd.DataFrame(rows)
    return frame["text"].tolist(), frame


# ---------------------------------------------------------------------- before a run


def test_human_code_columns_are_the_columns_with_a_few_distinct_values():
    frame = pd.DataFrame({"doc_id": ["d1", "d2", "d3"], "text": ["a", "b", "c"], "code": ["x", None, "y"],
                          "blank": ["", " ", None], "date": ["2026-01-01"] * 3, "many": ["1", "2", "3"]})
    assert human_code_columns(frame, exclude=("text", "doc_id", "date", None)) == ["code", "many"]
    assert human_code_columns(frame, exclude=("text", "doc_id", "date"), max_codes=2) == ["code"]


def test_human_code_counts_ignore_empty_and_missing_values():
    counts = human_code_counts(pd.DataFrame({"c": ["a", " a ", "", None, "b", "a"]}), "c")
    assert counts.to_dict() == {"a": 3, "b": 1} and counts.sum() == 4


def test_preview_fewshot_is_the_cross_validation_and_learning_curve_of_the_coded_rows():
    texts, frame = coded_corpus()
    embedder = WordEmbedder()
    preview = preview_fewshot(texts, frame, "code", labels=["housing", "transport", "health"], embedder=embedder)
    (embedded,) = embedder.calls
    assert len(embedded) == 36 and "not coded yet, about the bus" not in embedded  # coded, non-empty rows only
    assert preview.column == "code" and preview.rows == 36 and preview.folds == 5
    # The same figures as the few-shot model's own cross-validation and learning curve.
    X = embedder.encode(embedded)
    codes = frame["code"].tolist()[:36]
    expected = FewShotModel(labels=["housing", "transport", "health"]).cross_validate(X, codes)
    assert preview.metrics == expected["metrics"] and preview.metrics["macro_f1"]["value"] > 0.9
    pd.testing.assert_frame_equal(preview.curve, learning_curve(X, codes))
    assert preview.notes == [] and preview.warnings == []


def test_preview_fewshot_notes_too_few_rows_and_warns_about_codes_nobody_coded():
    texts, frame = coded_corpus(n_per_code=4)  # 12 coded rows: under MIN_SHARED_TEXTS
    preview = preview_fewshot(texts, frame, "code", labels=["housing", "transport", "health", "climate"],
                              embedder=WordEmbedder())
    assert all(v["value"] is None for v in preview.metrics.values())
    assert preview.notes == ["12 coded rows are too few for an estimate of the model's agreement (at least 20 are "
                             "needed); code more rows on the Validate page."]
    assert preview.warnings == ["No coded rows for climate: these codes are never predicted."]


def test_preview_fewshot_says_what_to_code_before_embedding_anything():
    texts, frame = coded_corpus()
    embedder = WordEmbedder()
    with pytest.raises(TextlabError, match="not in the codebook: 'health'"):
        preview_fewshot(texts, frame, "code", labels=["housing", "transport"], embedder=embedder)
    thin = frame.assign(code=["housing"] + [None] * (len(frame) - 2) + ["transport"])
    with pytest.raises(TextlabError, match="Too few coded rows in column 'code'|same code"):
        preview_fewshot(texts, thin, "code", embedder=embedder)
    assert embedder.calls == []


@pytest.mark.slow
def test_preview_fewshot_embeds_with_minilm_by_default(tmp_path):
    frame = pd.read_csv(SAMPLE_CSV, dtype=str, keep_default_na=False).replace("", None)
    preview = preview_fewshot(frame["text"].fillna("").tolist(), frame, "human_code", cache_dir=tmp_path)
    assert preview.rows == 80 and preview.metrics["macro_f1"]["value"] > 0.3
    assert list(preview.curve.columns) == ["n_train", "macro_f1", "sd"]


def test_setfit_estimate_counts_pairs_and_fine_tunings():
    estimate = setfit_estimate(80, device="cpu")
    assert estimate.on_cpu and estimate.n_coded == 80 and estimate.fine_tunings == 6
    assert estimate.pairs == setfit_pairs(80) == 2 * 20 * (80 * 4 + 80)
    assert estimate.cpu_minutes == max(1, round(estimate.pairs / CPU_PAIRS_PER_SECOND / 60))
    assert setfit_estimate(0, device="cpu").cpu_minutes == 1


def test_codes_table_shows_a_codebook_still_being_written():
    table = codes_table([{"label": "", "definition": None}, "Housing",
                         {"label": "Transport", "examples": ["late buses", "no trains"]}])
    assert table.to_dict("records") == [
        {"label": "", "definition": "", "include": "", "exclude": "", "examples": ""},
        {"label": "Housing", "definition": "", "include": "", "exclude": "", "examples": ""},
        {"label": "Transport", "definition": "", "include": "", "exclude": "", "examples": "late buses\nno trains"},
    ]
    assert list(codes_table(None).columns) == list(Codebook(codes=[]).to_frame().columns) and codes_table([]).empty
    # What the editor shows, the codebook reads back.
    book = Codebook.from_frame(table.iloc[1:], "the table")
    assert [c.label for c in book.codes] == ["Housing", "Transport"]
    assert book.codes[1].examples == ["late buses", "no trains"]


# ---------------------------------------------------------------------- after a run


def result_frame(multi=False):
    frame = pd.DataFrame({
        "doc_id": ["d1", "d2", "d3", "d4", "d5"],
        "text": ["rent", "bus", "", "rent and bus", "doctor"],
        "code_housing": [0.9, 0.2, None, 0.5, 0.3],
        "code_transport": [0.1, 0.8, None, 0.48, 0.3],
    })
    if multi:
        frame["code_labels"] = ["Housing", "Transport", None, "Housing;Transport", None]
    else:
        frame["code_label"] = ["Housing", "Transport", None, "Housing", "Housing"]
    return frame


def test_code_columns_name_the_label_and_probability_columns():
    single = code_columns(result_frame(), ["Housing", "Transport", "Health care"])
    assert single.label == "code_label" and not single.multi
    assert single.probabilities == {"Housing": "code_housing", "Transport": "code_transport"}  # no code_health_care
    multi = code_columns(result_frame(multi=True), ["Transport", "Housing"])
    assert multi.label == "code_labels" and multi.multi and list(multi.probabilities) == ["Transport", "Housing"]
    assert code_columns(result_frame()).probabilities == {}


def test_code_shares_count_each_code_of_a_multi_label_text():
    labels = ["Housing", "Transport"]
    single = code_shares(result_frame(), code_columns(result_frame(), labels), labels)
    assert dict(zip(single["code_label"], single["n"])) == {"Housing": 3, "Transport": 1}
    frame = result_frame(multi=True)
    multi = code_shares(frame, code_columns(frame, labels), labels)
    assert dict(zip(multi["code_labels"], multi["n"])) == {"Housing": 2, "Transport": 2}


def test_next_to_code_suggests_the_least_certain_uncoded_texts():
    frame = result_frame()
    codes = code_columns(frame, ["Housing", "Transport"])
    picked = next_to_code(frame, "text", codes, k=3)
    assert list(picked.columns) == ["doc_id", "text", "code_label", "code_housing", "code_transport"]
    assert picked["doc_id"].tolist() == ["d5", "d4", "d2"]  # smallest gap first; the empty text d3 never
    human = pd.Series(["Housing", "", None, "Housing", " "])  # d1 and d4 are coded already; blank is no code
    assert next_to_code(frame, "text", codes, human_codes=human, k=20)["doc_id"].tolist() == ["d5", "d2"]
    assert next_to_code(frame, "text", code_columns(frame), k=5).empty
