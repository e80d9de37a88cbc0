"""Sentiment task: VADER offline on texts of known direction; the transformer path with tiny local models."""

import numpy as np
import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest
from transformers import pipeline

from analysis.errors import ModelNotAvailable, TextlabError
from analysis.jobs import JobManager
from analysis.tasks import sentiment
from analysis.tasks.sentiment import SentimentConfig, map_labels, vader_compound
from analysis.workspace import Workspace
from analysis.corpus import build_corpus
from tests.paths import ROOT
from tests.tiny_models import make_tiny_classifier

POSITIVE = ["I love the new bus line, it is fantastic!", "Great job on the clinic, staff were kind and helpful 😊",
            "Honestly the best decision the council made this year."]
NEGATIVE = ["The rent is outrageous and the landlord is awful.", "Terrible service, I hate waiting two hours 😡",
            "This policy is a disaster. Nobody trusts them anymore."]
NEUTRAL = ["The bus leaves at 9.", "I live in the north of the city.", "My answer is about housing."]
GERMAN = "Die Busse kommen jeden Morgen zu spät und niemand kümmert sich darum."
FRENCH = "Les loyers ont encore augmenté, nous ne pouvons plus rester dans cette ville."
# English answers (two short ones that a language detector would guess wildly on), two that are not.
MIXED = ["The buses are late every single morning and nobody seems to care about it.",
         "Thank you so much for finally fixing the heating, we are all very grateful.", GERMAN, "", FRENCH,
         "ok thanks", "Merci beaucoup"]


@pytest.fixture(autouse=True)
def no_hub_models(tmp_path, monkeypatch):
    """Registry models are absent: an empty HF cache and model folder."""
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("TEXTLAB_MODELS", str(tmp_path / "models"))


def test_vader_direction_on_hand_written_texts():
    out = sentiment.run(POSITIVE + NEGATIVE + NEUTRAL, SentimentConfig(backend="offline"))
    assert out["sentiment_label"].tolist() == ["positive"] * 3 + ["negative"] * 3 + ["neutral"] * 3
    assert (out["sentiment_score"][:3] > 0.3).all() and (out["sentiment_score"][3:6] < -0.2).all()
    assert out["sentiment_score"].between(-1, 1).all()


def test_vader_negation_and_thresholds():
    out = sentiment.run(["The food was not good at all.", "It was good."], SentimentConfig(backend="offline"))
    assert out.loc[0, "sentiment_score"] < 0 < out.loc[1, "sentiment_score"]
    wide = sentiment.run(["It is okay I guess"], SentimentConfig(backend="offline", positive_threshold=0.9, negative_threshold=-0.9))
    assert wide.loc[0, "sentiment_label"] == "neutral"
    with pytest.raises(TextlabError, match="Thresholds"):
        sentiment.run(["x"], SentimentConfig(backend="offline", positive_threshold=-0.5, negative_threshold=0.5))


def test_vader_long_texts_are_scored_per_sentence_in_auto_mode():
    sentence = "The staff were lovely and helpful."
    long_text = " ".join([sentence] * 30)  # 180 words: past the 80-word whole-text limit
    single = vader_compound(sentence, "whole")
    whole = vader_compound(long_text, "whole")
    assert vader_compound(long_text, "auto") == pytest.approx(single, abs=1e-9)
    assert whole > single and whole > 0.99  # the saturation that auto avoids
    assert vader_compound(sentence, "auto") == single  # short texts: scored whole, as VADER was validated


def test_empty_texts_get_empty_results_and_rows_are_kept():
    out = sentiment.run(["Good!", "", "   ", "Bad."], SentimentConfig(backend="offline"))
    assert len(out) == 4
    assert out["sentiment_label"].tolist()[0] == "positive" and out["sentiment_label"].tolist()[3] == "negative"
    assert out["sentiment_label"].isna().tolist() == [False, True, True, False]
    assert out["sentiment_score"].isna().tolist() == [False, True, True, False]


def test_vader_parallel_path_equals_serial(monkeypatch):
    texts = (POSITIVE + NEGATIVE + NEUTRAL) * 300
    monkeypatch.setattr(sentiment.VaderPredictor, "PARALLEL_MIN_TEXTS", 100)
    parallel = sentiment.run(texts, SentimentConfig(backend="offline"))
    expected = [round(vader_compound(t), 4) for t in texts]
    assert parallel["sentiment_score"].tolist() == expected


@pytest.mark.parametrize(
    "labels, registry, expected",
    [
        (["negative", "neutral", "positive"], (), ["negative", "neutral", "positive"]),
        (["NEG", "NEU", "POS"], (), ["negative", "neutral", "positive"]),
        (["LABEL_0", "LABEL_1", "LABEL_2"], ("negative", "neutral", "positive"), ["negative", "neutral", "positive"]),
        (["1 star", "2 stars", "3 stars", "4 stars", "5 stars"], (), ["negative", "negative", "neutral", "positive", "positive"]),
        (["Positive", "Negative"], (), ["positive", "negative"]),
    ],
)
def test_label_mapping(labels, registry, expected):
    assert map_labels(labels, registry) == expected


@pytest.mark.parametrize("labels", [["LABEL_0", "LABEL_1"], ["joy", "anger"], ["positive", "neutral"]])
def test_unmappable_labels_are_refused(labels):
    with pytest.raises(TextlabError, match="cannot be read"):
        map_labels(labels)


@pytest.fixture(scope="module")
def tiny_sentiment(tmp_path_factory):
    return make_tiny_classifier(tmp_path_factory.mktemp("tiny") / "sent", arch="roberta", max_positions=64)


def test_transformer_backend_matches_a_plain_fp32_pipeline(tiny_sentiment):
    texts = POSITIVE + NEGATIVE + NEUTRAL + ["short", "a somewhat longer text " * 5, "ok 👍"]
    out = sentiment.run(texts, SentimentConfig(backend="transformers", model=str(tiny_sentiment), device="cpu"))
    assert list(out.columns) == ["sentiment_label", "sentiment_score", "sentiment_prob_negative",
                                 "sentiment_prob_neutral", "sentiment_prob_positive"]
    reference = pipeline("text-classification", model=str(tiny_sentiment), top_k=None, device="cpu")
    for i, text in enumerate(texts):
        scores = {d["label"]: d["score"] for d in reference([text])[0]}
        assert out.loc[i, "sentiment_label"] == max(scores, key=scores.get)
        for label, p in scores.items():
            assert out.loc[i, f"sentiment_prob_{label}"] == pytest.approx(p, abs=0.02)
        assert out.loc[i, "sentiment_score"] == pytest.approx(scores["positive"] - scores["negative"], abs=0.02)
    probs = out[["sentiment_prob_negative", "sentiment_prob_neutral", "sentiment_prob_positive"]].sum(axis=1)
    assert np.allclose(probs, 1, atol=1e-3)


def test_long_texts_are_split_and_counted_in_the_manifest(home, tiny_sentiment):
    long_text = " ".join(f"point {i} about the buses and the rent" for i in range(40))  # > 64 tokens
    corpus = build_corpus(pd.DataFrame({"text": ["short one", long_text, "", long_text + " more"]}), "text")
    ws = Workspace()
    project = ws.create_project("p", corpus)
    manager = JobManager(ws)
    run = manager.submit(project, "sentiment", {"backend": "transformers", "model": str(tiny_sentiment), "device": "cpu"})
    assert manager.wait(120)
    run = ws.run(run.id)
    assert run.status == "done", run.error
    manifest = project.manifest(run.id)
    assert manifest["rows"]["split"] == 2 and manifest["rows"]["empty"] == 1
    assert manifest["backend"] == "transformers" and "split into windows" in manifest["long_texts"]
    assert manifest["label_mapping"] == {"negative": "negative", "neutral": "neutral", "positive": "positive"}
    result = project.result(run.id)
    assert "_split" not in result.columns and len(result) == 4


def test_device_choice(tiny_sentiment):
    out = sentiment.run(["fine"], SentimentConfig(backend="transformers", model=str(tiny_sentiment), device="cpu"))
    assert len(out) == 1
    import torch

    if not torch.cuda.is_available():
        with pytest.raises(TextlabError, match="CUDA"):
            sentiment.run(["fine"], SentimentConfig(backend="transformers", model=str(tiny_sentiment), device="cuda"))


def test_auto_falls_back_to_vader_and_says_why(home):
    corpus = build_corpus(pd.DataFrame({"text": ["Good day!", "Awful day."]}), "text")
    ws = Workspace()
    project = ws.create_project("p", corpus)
    manager = JobManager(ws)
    run = manager.submit(project, "sentiment", {})
    assert manager.wait(60)
    manifest = project.manifest(run.id)
    assert manifest["backend"] == "offline" and "not on this machine" in manifest["backend_choice"]
    assert "textlab models download twitter-roberta-sentiment" in manifest["backend_choice"]
    assert project.result(run.id)["sentiment_label"].tolist() == ["positive", "negative"]


def test_auto_with_a_missing_model_falls_back_but_the_cli_model_flag_is_strict(home, tmp_path, small_csv, capsys):
    from analysis.cli import main

    # The app passes the model picked in its list; under auto a missing one means the lexicon, said openly.
    frame = sentiment.run(["Good day!"], SentimentConfig(backend="auto", model="twitter-roberta-sentiment"))
    assert frame["sentiment_label"].tolist() == ["positive"]
    # On the command line, naming a model means wanting it: no quiet fall-back.
    assert main(["analyze", str(small_csv), "-o", str(tmp_path / "x.csv"), "--task", "sentiment",
                 "--model", "twitter-roberta-sentiment"]) == 2
    assert "textlab models download twitter-roberta-sentiment" in capsys.readouterr().err
    assert not (tmp_path / "x.csv").exists()


def test_transformers_backend_without_the_model_says_how_to_get_it():
    with pytest.raises(ModelNotAvailable, match="textlab models download"):
        sentiment.run(["x"], SentimentConfig(backend="transformers"))
    with pytest.raises(TextlabError, match="needs the transformers backend"):
        sentiment.run(["x"], SentimentConfig(backend="offline", model="some/model"))


def test_cli_sentiment_with_a_local_model(home, tmp_path, small_csv, tiny_sentiment, capsys):
    from analysis.cli import main

    out = tmp_path / "s.csv"
    assert main(["analyze", str(small_csv), "-o", str(out), "--task", "sentiment", "--task", "emotion",
                 "--backend", "transformers", "--model", str(tiny_sentiment), "--device", "cpu", "--batch-size", "2"]) == 2
    # --model names a sentiment model; emotion with it must not pass silently: one clear line.
    assert "emotion" in capsys.readouterr().err
    assert main(["analyze", str(small_csv), "-o", str(out), "--task", "sentiment", "--backend", "transformers",
                 "--model", str(tiny_sentiment), "--device", "cpu", "--batch-size", "2"]) == 0
    frame = pd.read_csv(out)
    assert len(frame) == 6 and {"sentiment_label", "sentiment_score", "sentiment_prob_positive"} <= set(frame.columns)
    assert frame["sentiment_label"].isna().tolist() == [False, False, True, False, False, False]


def test_a_dead_vader_worker_falls_back_to_one_process_with_the_same_scores(monkeypatch, caplog):
    from concurrent.futures import Future
    from concurrent.futures.process import BrokenProcessPool

    class DeadPool:
        def submit(self, *args, **kwargs):
            future = Future()
            future.set_exception(BrokenProcessPool("worker killed"))
            return future

        def shutdown(self, cancel_futures=False):
            pass

    texts = (POSITIVE + NEGATIVE + NEUTRAL) * 50
    serial = sentiment.run(texts, SentimentConfig(backend="offline"))
    predictor = sentiment.TASK.load(SentimentConfig(backend="offline"))
    predictor.workers, predictor._pool = 2, DeadPool()
    monkeypatch.setattr(type(predictor), "PARALLEL_MIN_TEXTS", 10)
    with caplog.at_level("WARNING"):
        fallen_back = predictor.predict(texts)
    assert "worker process stopped" in caplog.text and predictor.workers == 1
    pd.testing.assert_series_equal(fallen_back["sentiment_score"], serial["sentiment_score"].reset_index(drop=True),
                                   check_names=False)


def test_vader_flags_texts_that_are_not_in_english_without_a_new_result_column():
    predictor = sentiment.TASK.load(SentimentConfig(backend="offline"))
    out = predictor.predict([t for t in MIXED if t])
    assert out["non_english"].tolist() == [False, False, True, True, False, False]
    assert list(sentiment.run(MIXED, SentimentConfig(backend="offline")).columns) == ["sentiment_label",
                                                                                       "sentiment_score"]


def offline_result_page(task: str, config: dict, page: str, texts: list[str] = MIXED):
    """A project of English and non-English texts, an offline ``task`` run done, and its result page open."""
    ws = Workspace()
    project = ws.create_project("mixed", build_corpus(pd.DataFrame({"text": texts}), "text"))
    manager = JobManager(ws)
    run = manager.submit(project, task, {"backend": "offline", **config})
    assert manager.wait(180)
    assert ws.run(run.id).status == "done", ws.run(run.id).error
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    at.query_params["project"] = project.id
    at.run()
    at.switch_page(page)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at, project, run


def assert_honest_offline_page(at, project, run, *, note: list[str], method: str):
    """The method note with its figures, the Validate link and the non-English count with examples."""
    infos = " ".join(str(e.value) for e in at.info)
    assert "Good at" in infos and "Bad at" in infos and all(n in infos for n in note), infos
    assert any("validate" in link.proto.page for link in at.page_link), [link.proto.page for link in at.page_link]
    warning = " ".join(str(e.value) for e in at.warning)
    assert "2 texts" in warning and "English" in warning and method in warning, warning
    shown = " ".join(df.value.to_string() for df in at.dataframe)
    assert GERMAN[:20] in shown and FRENCH[:20] in shown
    manifest = project.manifest(run.id)
    ids = project.result(run.id)["doc_id"].tolist()
    assert manifest["rows"]["non_english"] == 2
    assert manifest["row_examples"]["non_english"] == [ids[2], ids[4]]


def test_non_english_texts_are_counted_in_the_manifest_and_on_the_page_with_the_method_note(home):
    at, project, run = offline_result_page("sentiment", {}, "pages/sentiment.py")
    assert_honest_offline_page(at, project, run, note=["r = 0.43", "r = 0.87", "movie-review"], method="VADER")
    assert "non_english" not in project.result(run.id).columns
