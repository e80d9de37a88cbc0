"""AppTest of the Validate page: agreement on the sample's two human coders, blind hand-coding
that persists in the project, and a plain message when there is nothing to validate."""

from analysis.workspace import Workspace
from tests.test_pages import goto, load_sample, new_app
from tests.test_pages import texts_of as _texts_of


def texts_of(elements) -> str:
    """Element texts without the backslashes that escape user data in markdown."""
    return _texts_of(elements).replace("\\", "")


def disagreement_table(at):
    """The Compare tab's table of disagreements (the one table with the texts' doc_id)."""
    return next(df.value for df in at.dataframe if "doc_id" in df.value.columns)


def test_sample_data_compares_the_two_human_coders(home):
    at = goto(load_sample(new_app()), "pages/validate.py")
    assert at.selectbox(key="val_pred").value == "human_code"
    assert at.multiselect(key="val_gold").value == ["human_code_2"]
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Accuracy"] == "0.85" and metrics["Cohen's kappa"] == "0.82"
    assert "human_code vs human_code_2" in texts_of(at.markdown)
    assert "387 of 467 rows left out" in texts_of(at.caption)
    assert len(at.get("plotly_chart")) >= 2  # confusion matrix, prevalence
    assert len(at.dataframe) >= 3  # metrics, per code, disagreements
    assert {"val_dl_csv", "val_dl_json"} <= {b.key for b in at.get("download_button")}
    at.multiselect(key="val_dis_codes").set_value(["Housing"]).run()
    assert not at.exception and not at.error
    # Any column can be a reference; two "coders" that never agree give no majority, and the page says so.
    at.multiselect(key="val_gold").set_value(["human_code_2", "region"]).run()
    assert not at.exception and not at.error
    assert "give no majority code" in texts_of(at.caption)
    assert len(at.get("plotly_chart")) >= 3  # agreement chart of the several comparisons


def test_hand_coding_a_sample_is_saved_in_the_project(home):
    at = goto(load_sample(new_app()), "pages/validate.py")
    project = Workspace().project(at.query_params["project"])
    at.number_input(key="val_size").set_value(6).run()
    at.button(key="val_draw").click().run()
    ids = at.session_state["validate_sample"]["doc_ids"]
    assert len(ids) == 6 and at.get("progress")[0].proto.text.startswith("0 of 6 coded")
    # Blind: the text is shown, the model column's code for it is not (it is only one of the choices).
    first = ids[0]
    data = project.corpus().data.set_index("doc_id")
    assert data.loc[first, "text"] in texts_of(at.text)
    model_code = data.loc[first, "human_code"]
    if isinstance(model_code, str) and model_code.strip():
        assert model_code not in texts_of(at.text) + texts_of(at.caption) + texts_of(at.markdown).split("human_code vs")[0]
    at.button(key="val_save").click().run()
    assert "Enter a coder name" in texts_of(at.error)  # no name, nothing saved
    assert project.annotations().empty
    at.text_input(key="val_coder").input("Tester One").run()
    at.selectbox(key=f"val_code_{first}").set_value("Housing").run()
    at.button(key="val_save").click().run()
    assert not at.exception and not at.error
    table = project.annotations()
    assert table[["doc_id", "coder", "code"]].values.tolist() == [[first, "Tester One", "Housing"]]
    assert at.session_state["val_pos"] == 1
    # The hand codes are a new human column to compare with.
    assert "human_tester_one" in at.multiselect(key="val_gold").options
    # Going back shows the saved code; (skip) removes it.
    at.button(key="val_prev").click().run()
    assert at.selectbox(key=f"val_code_{first}").value == "Housing"
    at.selectbox(key=f"val_code_{first}").set_value("(skip)").run()
    at.button(key="val_save").click().run()
    assert project.annotations().empty


def test_nothing_to_validate_says_what_to_do(home, small_csv):
    at = new_app()
    at.file_uploader[0].upload("small.csv", small_csv.read_bytes(), "text/csv").run()
    at.button(key="create_project").click().run()
    at = goto(at, "pages/validate.py")
    message = texts_of(at.info)
    assert "Nothing to validate yet" in message and "Codebook coding" in message
    assert not at.metric and not at.get("plotly_chart")


def test_model_codes_against_both_coders_with_probabilities_and_codebook_codes(home):
    """A finished coding run (written straight into the project): code_label is the default model
    column, both human columns the references, and the probability columns are in the disagreements."""
    import numpy as np
    import pandas as pd

    at = load_sample(new_app())
    project = Workspace().project(at.query_params["project"])
    corpus = project.corpus().data
    rng = np.random.default_rng(0)
    codes = ["Housing", "Public transport", "Health care", "Cost of living", "Climate and energy"]
    label = corpus["human_code"].where(rng.random(len(corpus)) < 0.7, rng.choice(codes, len(corpus)))
    label = label.fillna(pd.Series(rng.choice(codes, len(corpus))))
    result = pd.DataFrame({"doc_id": corpus["doc_id"], "code_label": label,
                           "code_housing": (label == "Housing").astype(float)})
    run = project.create_run("coding", {"backend": "offline"}, n_total=len(corpus), status="done")
    project.write_result(run.id, result, {"task": "coding", "codebook": {
        "codes": [{"label": c} for c in codes + ["None of these"]], "none_label": None}})
    at = goto(at, "pages/validate.py")
    assert at.selectbox(key="val_pred").value == "code_label"
    assert at.multiselect(key="val_gold").value == ["human_code", "human_code_2"]
    assert "code_label vs majority" in texts_of(at.markdown)
    assert "code_housing" in disagreement_table(at).columns
    at.number_input(key="val_size").set_value(3).run()
    at.button(key="val_draw").click().run()
    first = at.session_state["validate_sample"]["doc_ids"][0]
    assert "None of these" in at.selectbox(key=f"val_code_{first}").options


def test_too_few_shared_texts_show_the_count_and_why_not_an_estimate(home):
    """A coder who coded 3 texts: the page shows n and the reason, not a kappa with an interval."""
    from analysis.validation import MIN_SHARED_TEXTS

    at = load_sample(new_app())
    project = Workspace().project(at.query_params["project"])
    data = project.corpus().data
    coded = data[data["human_code"].fillna("").astype(str).str.strip() != ""].head(3)
    project.save_annotations("Few", dict(zip(coded["doc_id"], coded["human_code"])))
    at = goto(at, "pages/validate.py")
    at.multiselect(key="val_gold").set_value(["human_few"]).run()
    assert not at.exception and not at.error
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Accuracy"] == "–" and metrics["Cohen's kappa"] == "–"
    assert "human_code vs human_few**: 3 texts compared" in texts_of(at.markdown)
    warning = texts_of(at.warning)
    assert "3 texts" in warning and f"at least {MIN_SHARED_TEXTS}" in warning
    captions = texts_of(at.caption)
    assert "95% CI" not in captions.split("Intervals:")[0]  # no interval shown for the metrics
    assert "too few texts" in captions
    table = at.dataframe[0].value
    assert table["value"].isna().all() and table["95% CI"].eq("–").all() and (table["n"] == 3).all()


def test_model_columns_are_the_label_columns_the_tasks_declare(home):
    """Sentiment, emotion and multi-label coding results (written straight into the project): the
    model columns are the tasks' declared label columns, coding's first; a set of codes is
    multi-label by its declaration; the disagreements show the scores of the chosen column's task."""
    import numpy as np
    import pandas as pd

    at = load_sample(new_app())
    project = Workspace().project(at.query_params["project"])
    ids = project.corpus().data["doc_id"]
    rng = np.random.default_rng(1)

    def finished(task, columns):
        run = project.create_run(task, {"backend": "offline"}, n_total=len(ids), status="done")
        project.write_result(run.id, pd.DataFrame({"doc_id": ids, **columns}), {"task": task})

    finished("sentiment", {"sentiment_label": rng.choice(["negative", "neutral", "positive"], len(ids)),
                           "sentiment_score": rng.uniform(-1, 1, len(ids)).round(2)})
    finished("emotion", {"emotion_label": rng.choice(["joy", "fear"], len(ids)),
                         "emotion_joy": rng.uniform(0, 1, len(ids))})
    codes = rng.choice(["Housing", "Health care", "Housing;Health care"], len(ids))
    finished("coding", {"code_labels": codes, "code_housing": rng.uniform(0, 1, len(ids)).round(2),
                        "code_health_care": rng.uniform(0, 1, len(ids)).round(2)})
    at = goto(at, "pages/validate.py")
    assert not at.exception
    pred = at.selectbox(key="val_pred")
    assert pred.value == "code_labels"
    assert pred.options[:3] == ["code_labels", "sentiment_label", "emotion_label"]
    assert "sentiment_score" not in pred.options and "emotion_joy" not in pred.options  # scores, not codes
    assert at.checkbox(key="val_multi_code_labels").value is True
    at.multiselect(key="val_gold").set_value(["human_code"]).run()
    assert not at.exception and not at.error
    shown = disagreement_table(at).columns
    assert "code_housing" in shown and "code_health_care" in shown and "sentiment_score" not in shown
    pred.set_value("sentiment_label").run()
    assert not at.exception
    assert at.checkbox(key="val_multi_sentiment_label").value is False
    shown = disagreement_table(at).columns
    assert "sentiment_score" in shown and "code_housing" not in shown


def test_a_simple_random_sample_is_recorded_and_comes_back_after_a_refresh(home):
    from tests.test_page_state import reopened

    at = goto(load_sample(new_app()), "pages/validate.py")
    project = Workspace().project(at.query_params["project"])
    assert at.radio(key="val_design").value == "simple_random"  # the default: it can correct estimates
    assert not [s for s in at.selectbox if str(s.key).startswith("val_by_")]  # no strata to choose
    assert "No sample drawn yet" in texts_of(at.caption)
    at.number_input(key="val_size").set_value(8).run()
    at.button(key="val_draw").click().run()
    assert not at.exception and not at.error
    design = project.sample_design()
    assert (design["design"], design["by"], design["n"], design["seeds"]) == ("simple_random", None, 8, [0])
    ids = project.current_sample_ids()
    assert at.session_state["validate_sample"]["doc_ids"] == ids and len(ids) == 8
    captions = texts_of(at.caption)
    assert "Current sample: simple random, 8 drawn of 467" in captions
    assert "convenience sample" in captions and "cannot correct estimates" in captions
    at.text_input(key="val_coder").input("Tester One").run()
    at.selectbox(key=f"val_code_{ids[0]}").set_value("Housing").run()
    at.button(key="val_save").click().run()
    assert "8 drawn of 467; 1 coded by you" in texts_of(at.caption)

    # A refresh is a new session: the sample comes back from the project, at the first text not coded yet.
    again = reopened(project.id, "pages/validate.py")
    assert again.session_state["validate_sample"]["doc_ids"] == ids
    assert "Current sample: simple random, 8 drawn of 467" in texts_of(again.caption)
    assert again.get("progress")[0].proto.text.startswith("0 of 8 coded")  # no coder name yet
    again.text_input(key="val_coder").input("Tester One").run()
    assert again.get("progress")[0].proto.text.startswith("1 of 8 coded")
    assert f"Text 2 of 8 · doc_id {ids[1]}" in texts_of(again.caption)
    assert "8 drawn of 467; 1 coded by you" in texts_of(again.caption)

    # The same design again adds to the sample, with a seed not used in it yet.
    again.number_input(key="val_size").set_value(8).run()
    again.button(key="val_draw").click().run()
    assert not again.exception and not again.error
    assert "Added 8 texts to the current sample (seed 1)" in texts_of(again.success)
    assert project.sample_design()["n"] == 16 and project.current_sample_ids()[:8] == ids
    assert "16 drawn of 467; 1 coded by you" in texts_of(again.caption)
    assert f"Text 9 of 16 · doc_id {project.current_sample_ids()[8]}" in texts_of(again.caption)


def test_a_stratified_design_shows_its_strata_and_another_design_starts_anew(home):
    at = goto(load_sample(new_app()), "pages/validate.py")
    project = Workspace().project(at.query_params["project"])
    at.radio(key="val_design").set_value("stratified_equal").run()
    assert at.selectbox(key="val_by_human_code").value == "human_code"  # the model column
    at.number_input(key="val_size").set_value(14).run()
    at.button(key="val_draw").click().run()
    assert not at.exception and not at.error
    design = project.sample_design()
    assert (design["design"], design["by"], design["n"]) == ("stratified_equal", "human_code", 14)
    assert "Current sample: equal per code by `human_code`, 14 drawn of 467" in texts_of(at.caption)
    strata = next(df.value for df in at.dataframe if "stratum" in df.value.columns)
    assert dict(zip(strata["stratum"], strata["size"])) == {k: v["size"] for k, v in design["strata"].items()}
    assert strata["drawn"].sum() == 14 and strata.loc[strata["stratum"] == "(missing)", "size"].item() == 387
    at.radio(key="val_design").set_value("simple_random").run()
    at.button(key="val_draw").click().run()
    assert "Started a new sample design" in texts_of(at.info)
    assert project.sample_design()["design"] == "simple_random"
    assert [r["current"] for r in project.sample_records()] == [False, True]
