"""Build step that pyproject.toml cannot express: ship the Streamlit app inside the wheel.

The repository keeps the app at its root (app.py, pages/, sample_data/) so that
`streamlit run app.py` works from a clone. A wheel has no repository root, so the build
copies those files into the ``ui`` package, under ``ui/_app/``, where ``ui.resources`` finds
them. An editable install (``pip install -e .``) copies nothing: it serves the files in place.
Everything else about the package is in pyproject.toml.
"""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

# The app's files, relative to the repository root; ui/resources.py reads them from the same
# relative paths under ui/_app/. MANIFEST.in puts them in the sdist.
ROOT = Path(__file__).resolve().parent
APP_FILES = ("app.py", "pages/*.py", "sample_data/*")
BUNDLE = Path("ui") / "_app"


def app_files() -> list[Path]:
    files = sorted(p.relative_to(ROOT) for pattern in APP_FILES for p in ROOT.glob(pattern) if p.is_file())
    if Path("app.py") not in files:
        raise SystemExit(f"app.py is missing from {ROOT}: Textlab cannot be built without its app")
    return files


class build_py_with_app(build_py):
    def run(self) -> None:
        super().run()
        if self.editable_mode:  # pip install -e: the app is served from the clone
            return
        bundle = Path(self.build_lib) / BUNDLE
        shutil.rmtree(bundle, ignore_errors=True)  # a build/ left by an earlier build may hold removed pages
        for rel in app_files():
            self.mkpath(str((bundle / rel).parent))
            self.copy_file(str(ROOT / rel), str(bundle / rel), preserve_mode=False)

    def get_outputs(self, include_bytecode: bool = True) -> list[str]:
        outputs = super().get_outputs(include_bytecode)
        if self.editable_mode:
            return outputs
        return [*outputs, *(str(Path(self.build_lib) / BUNDLE / rel) for rel in app_files())]


setup(cmdclass={"build_py": build_py_with_app})
