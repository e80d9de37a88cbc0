"""The teaching page "How models read text" (AppTest) and its library, ``analysis.reading``."""

import pandas as pd

from analysis import charts, reading
from tests.test_pages import goto, new_app, texts_of


def test_two_tokenizers_cut_the_same_text_differently_and_give_the_text_back():
    text = "Rents in Leipzig went up 😩 unaffordable"
    wordpiece = reading.tokenize(reading.WORDPIECE, text)
    bpe = reading.tokenize(reading.BPE, text)
    assert "##" in "".join(wordpiece["token"]) and "[UNK]" in wordpiece["token"].tolist()  # pieces; the emoji unknown
    covered = "".join(text[a:b] for i, (a, b) in enumerate(zip(bpe["start"], bpe["end"]))
                      if i == 0 or a >= bpe["end"][i - 1])  # an emoji is several byte tokens over one character
    assert covered == text and (bpe["text"].str.contains("😩")).sum() > 1  # byte-level BPE misses no character
    assert len(bpe) != len(wordpiece)
    summary = reading.token_summary(reading.WORDPIECE, text)
    assert summary["tokens"] == len(wordpiece) and summary["words"] == 6 and summary["vocabulary"] == 30522


def test_a_long_text_is_cut_into_windows_that_keep_every_word_and_similar_texts_are_close():
    long_text = " ".join(f"word{i}" for i in range(900))
    parts, window = reading.windows(long_text)
    assert window > 100 and len(parts) > 1 and "".join(parts) == long_text
    table = reading.similarity(["Rents are too high", "Housing is unaffordable", "The bus is late"])
    assert table.loc["1", "2"] > table.loc["1", "3"] and table.loc["1", "1"] == 1.0


def test_the_token_chart_escapes_the_text_it_shows():
    table = reading.tokenize(reading.WORDPIECE, "<b>bold</b>")
    fig = charts.tokens_chart({"<i>x</i>": table})
    assert "<b>" not in " ".join(fig.data[0].text) and fig.data[0].y[0] == "&lt;i&gt;x&lt;/i&gt;"


def test_the_page_shows_tokens_windows_and_similarity(home):
    at = goto(new_app(), "pages/teaching.py")
    assert not at.exception and not at.error
    assert at.get("plotly_chart")
    summary = at.dataframe[0].value
    assert list(summary["tokenizer"]) == [reading.WORDPIECE, reading.BPE]
    assert "embedding model reads at most" in " ".join(m.value for m in at.markdown)
    at.text_input(key="teach_b").input("I love football").run()
    sims = next(d.value for d in at.dataframe if list(d.value.columns) == ["1", "2", "3"])
    assert isinstance(sims, pd.DataFrame) and sims.loc["1", "2"] < 0.5
    assert "SentencePiece" in texts_of(at.caption)


def test_with_a_project_open_one_text_goes_to_the_language_model_as_a_prompt(home):
    from tests.test_pages import load_sample

    at = goto(load_sample(new_app()), "pages/teaching.py")
    assert not at.exception
    assert "What the model sees" in [e.label for e in at.expander]
    assert "Open a project" not in texts_of(at.info)
