"""Few-shot coding with SetFit: the embedding model is fine-tuned on the coded rows.

A tiny random sentence-transformers model keeps the fine-tuning fast; one test tunes the
bundled MiniLM on a handful of texts to check that tuning moves same-code texts together.
"""

from __future__ import annotations

import socket

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("setfit")

from analysis import models  # noqa: E402
from analysis.tasks.coding import setfit as tuning  # noqa: E402
from analysis.corpus import build_corpus  # noqa: E402
from analysis.embeddings import Embedder  # noqa: E402
from analysis.errors import TextlabError  # noqa: E402
from analysis.jobs import JobManager  # noqa: E402
from analysis.tasks import coding  # noqa: E402
from analysis.tasks.base import RunContext  # noqa: E402
from analysis.workspace import Workspace  # noqa: E402

SPORT = ["the striker scored twice", "a late goal won the match", "the coach praised the team",
         "the keeper saved a penalty", "fans cheered the home side", "the league title race tightens"]
MONEY = ["the central bank raised rates", "stocks fell on the market", "profits rose at the company",
         "oil prices climbed again", "the firm cut its forecast", "investors sold their shares"]


@pytest.fixture(scope="module")
def tiny_st(tiny_sentence_transformer):
    return tiny_sentence_transformer


@pytest.fixture
def no_network(monkeypatch):
    """Fine-tuning must not reach out (Hub lookups for model cards, telemetry)."""
    def refuse(self, address, *args, **kwargs):
        raise AssertionError(f"network connection attempted to {address}")
    monkeypatch.setattr(socket.socket, "connect", refuse)


def corpus_frame():
    texts = SPORT + MONEY + ["the match ends in a draw", "the budget deficit grew"]
    human = ["Sport"] * len(SPORT) + ["Economy"] * len(MONEY) + [None, None]
    return pd.DataFrame({"text": texts, "human": human})


def setfit_config(model, **extra):
    return {"method": "few-shot", "labels_column": "human", "classifier": "setfit", "model": str(model),
            "setfit_iterations": 2, "setfit_batch_size": 8, "cv_folds": 2, **extra}


def test_tuning_pulls_texts_of_a_code_together(tmp_path, no_network):
    texts, codes = SPORT[:4] + MONEY[:4], ["Sport"] * 4 + ["Economy"] * 4
    base = models.bundled_embedding_path()
    tuned = tuning.finetune_setfit(base, texts, codes, tmp_path / "tuned", iterations=4, batch_size=8)
    same = np.equal.outer(np.array(codes), np.array(codes))
    off_diagonal = ~np.eye(len(codes), dtype=bool)

    def gap(folder):
        with Embedder(folder) as embedder:
            sim = embedder.encode(texts) @ embedder.encode(texts).T
        return sim[same & off_diagonal].mean() - sim[~same].mean()

    assert gap(tuned) > gap(base) + 0.05
    assert (tuned / "model.safetensors").exists() and not list(tuned.rglob("*.bin")) and not list(tuned.rglob("*.pkl"))


def test_setfit_job_codes_every_row_keeps_the_model_and_reports_honest_cv(home, tiny_st, no_network):
    frame = corpus_frame()
    ws = Workspace()
    project = ws.create_project("p", build_corpus(frame, "text"))
    manager = JobManager(ws)
    run = manager.submit(project, "coding", setfit_config(tiny_st))
    assert manager.wait(300)
    assert ws.run(run.id).status == "done" and ws.run(run.id).stage is None
    result = project.result(run.id)
    assert len(result) == len(frame) and set(result["code_label"]) <= {"Sport", "Economy"}
    assert np.allclose(result[["code_sport", "code_economy"]].sum(axis=1), 1, atol=1e-3)
    manifest = project.manifest(run.id)
    assert "SetFit" in manifest["method"] and manifest["setfit"]["folds"] == 2
    assert manifest["training_rows"] == 12 and manifest["rows"]["trained_on"] == 12
    from analysis.validation import MIN_SHARED_TEXTS

    # 12 coded rows are too few for an estimate: the report says so instead of a number.
    assert manifest["training_rows"] < MIN_SHARED_TEXTS
    assert manifest["cross_validation"]["metrics"]["accuracy"]["value"] is None
    folder = project.run_folder(run.id) / "setfit"
    assert (folder / "model" / "model.safetensors").exists()
    assert not list(folder.glob("fold*"))  # fold models are scratch
    assert not [p for p in project.run_folder(run.id).rglob("*") if p.suffix in (".pkl", ".bin", ".pt")]


@pytest.mark.slow
def test_held_out_rows_never_shape_their_fold_model_and_resume_reuses_the_tuned_model(tmp_path, tiny_st,
                                                                                       monkeypatch, no_network):
    frame = corpus_frame()
    texts = frame["text"].tolist()
    config = coding.CodingConfig.from_dict(setfit_config(tiny_st))
    seen: list[list[str]] = []
    real = tuning.finetune_setfit

    def recording(base, rows, codes, out_dir, **kwargs):
        seen.append(list(rows))
        return real(base, rows, codes, out_dir, **kwargs)

    monkeypatch.setattr(tuning, "finetune_setfit", recording)
    stages: list[str] = []
    context = RunContext(texts=texts, frame=frame, run_folder=tmp_path / "run", on_stage=stages.append)
    predictor = coding.TASK.load(config, context)
    first = predictor.predict(texts)
    predictor.close()
    coded = set(texts[:12])
    assert len(seen) == 3 and set(seen[2]) == coded  # two folds, then the final model on all coded rows
    assert set(seen[0]).isdisjoint(seen[1]) and set(seen[0]) | set(seen[1]) == coded
    assert any("fold 1 of 2" in s for s in stages) and any("final model" in s for s in stages)
    # A coded row's probabilities come from the fold model that did not see it.
    assert first["trained_on"].iloc[:12].all() and not first["trained_on"].iloc[12:].any()

    def refuse(*args, **kwargs):
        raise AssertionError("fine-tuned again instead of reusing the saved model")

    monkeypatch.setattr(tuning, "finetune_setfit", refuse)
    again = coding.TASK.load(config, RunContext(texts=texts, frame=frame, run_folder=tmp_path / "run"))
    second = again.predict(texts)
    again.close()
    pd.testing.assert_frame_equal(first, second)


def test_a_cancelled_job_stops_during_fine_tuning(tmp_path, tiny_st):
    frame = corpus_frame()
    config = coding.CodingConfig.from_dict(setfit_config(tiny_st))

    class Cancelled(Exception):
        pass

    def cancel(message):
        raise Cancelled(message)

    with pytest.raises(Cancelled, match="step 1 of"):
        coding.TASK.load(config, RunContext(texts=frame["text"].tolist(), frame=frame, run_folder=tmp_path / "r",
                                            on_stage=cancel))


def test_setfit_settings_and_missing_package_are_clear_errors(monkeypatch, tiny_st):
    frame = corpus_frame()
    with pytest.raises(TextlabError, match="setfit_iterations must be a positive"):
        coding.run(frame["text"].tolist(), setfit_config(tiny_st, setfit_iterations=0), frame=frame)
    with pytest.raises(TextlabError, match="needs few-shot"):
        coding.run(frame["text"].tolist(), {"classifier": "setfit", "codebook": {"codes": [{"label": "A"}, {"label": "B"}]}})
    with pytest.raises(TextlabError, match="Unknown few-shot classifier"):
        coding.run(frame["text"].tolist(), setfit_config(tiny_st, classifier="svm"), frame=frame)
    monkeypatch.setitem(__import__("sys").modules, "setfit", None)
    with pytest.raises(TextlabError, match=r"pip install \"textlab\[setfit\]\""):
        coding.run(frame["text"].tolist(), setfit_config(tiny_st), frame=frame)


@pytest.mark.slow
def test_the_pair_count_matches_what_setfit_trains_on(tmp_path, tiny_st):
    frame = corpus_frame()
    config = coding.CodingConfig.from_dict(setfit_config(tiny_st))
    steps: dict[str, int] = {}

    def record(message):
        what, total = message.rsplit(": step ", 1)
        steps[what] = int(total.rsplit(" of ", 1)[1])

    predictor = coding.TASK.load(config, RunContext(texts=frame["text"].tolist(), frame=frame,
                                                    run_folder=tmp_path / "r", on_stage=record))
    predictor.close()
    assert len(steps) == 3  # two folds, then the final model
    pairs = tuning.setfit_pairs(12, folds=2, iterations=2)  # what the page's time estimate counts
    assert pairs == 2 * 2 * (6 + 6 + 12)
    assert sum(steps.values()) == sum(-(-n // 8) for n in (2 * 2 * 6, 2 * 2 * 6, 2 * 2 * 12))  # batches of 8 pairs
