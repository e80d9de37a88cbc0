"""Where the app's own files are: the router (app.py), the pages and the sample data.

In a clone (and an editable install) they sit at the repository root, next to ui/. A wheel
has no repository root: setup.py copies the same files into this package, under ui/_app/,
keeping their relative paths (app.py, pages/*.py, sample_data/*). Everything that needs one
of these files asks here, so `textlab app` works from any folder with either install.

No Streamlit import: the `textlab` entry point locates the app before starting Streamlit.
"""

from __future__ import annotations

from pathlib import Path

_UI = Path(__file__).resolve().parent
BUNDLED = _UI / "_app"  # a wheel install
CLONE = _UI.parent  # a clone or an editable install


def app_dir() -> Path:
    """The folder that holds app.py, pages/ and sample_data/.

    The copy shipped in the package comes first: in a wheel install, the folder above ui/ is
    site-packages, where an unrelated app.py may sit.
    """
    return BUNDLED if (BUNDLED / "app.py").is_file() else CLONE


def app_path() -> Path:
    """app.py, the Streamlit router that `textlab app` runs (its pages are relative to it)."""
    return app_dir() / "app.py"


def sample_data(name: str) -> Path:
    """A file of the demo corpus, e.g. ``sample_data("policy_survey.csv")``."""
    return app_dir() / "sample_data" / name
