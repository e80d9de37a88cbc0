"""The wheel holds everything the app needs, so `textlab app` runs from any folder after a
plain (non-editable) `pip install .` (issue 12, item 6).

The slow tests build a real wheel from a copy of the working tree, list it, install it into a
fresh virtual environment and start `textlab app` from a folder outside the clone.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import textwrap
import time
import urllib.request
import zipfile
from pathlib import Path

import pytest

from ui import resources

ROOT = Path(__file__).resolve().parent.parent
# What a build reads: pyproject.toml, setup.py, MANIFEST.in, README.md, the packages, the app.
SOURCE = ("pyproject.toml", "setup.py", "MANIFEST.in", "README.md", "app.py", "analysis", "ui", "pages",
          "sample_data")


def pages_of_the_router() -> list[str]:
    """The page files app.py hands to st.navigation (paths relative to app.py)."""
    pages = re.findall(r"st\.Page\(\s*\"([^\"]+)\"", (ROOT / "app.py").read_text("utf-8"))
    assert pages, "app.py names no pages"
    return pages


def source_modules() -> list[str]:
    """Every .py file of the two packages, as a path inside the wheel."""
    return sorted(str(p.relative_to(ROOT).as_posix()) for package in ("analysis", "ui")
                  for p in (ROOT / package).rglob("*.py") if "__pycache__" not in p.parts)


# -- the locators (quick) -------------------------------------------------------------------


def test_the_locators_find_the_app_its_pages_and_the_sample_data():
    app = resources.app_path()
    assert app.is_file() and app.name == "app.py"
    for page in pages_of_the_router():  # Streamlit resolves them against app.py's folder
        assert (app.parent / page).is_file(), page
    for name in ("policy_survey.csv", "policy_codebook.json", "README.md"):
        assert resources.sample_data(name).is_file(), name
    # In a clone, the files are the repository's own (no copy to go stale).
    if not resources.BUNDLED.exists():
        assert resources.app_dir() == ROOT


def test_the_ui_takes_the_sample_data_from_the_locator():
    from ui import state

    assert state.SAMPLE_CORPUS == resources.sample_data("policy_survey.csv")
    assert state.SAMPLE_CODEBOOK == resources.sample_data("policy_codebook.json")


def test_the_entry_point_serves_the_located_app():
    from ui import launch

    assert launch.app_path is resources.app_path  # no second idea of where app.py is


# -- the wheel (slow) -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """A wheel built from a copy of the working tree (a build in the clone would write into
    its build/ folder, which other runs share)."""
    src = tmp_path_factory.mktemp("src")
    for name in SOURCE:
        path = ROOT / name
        if path.is_dir():
            shutil.copytree(path, src / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "_app"))
        else:
            shutil.copy2(path, src / name)
    out = tmp_path_factory.mktemp("dist")
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", str(src), "--no-deps", "--no-build-isolation",
                           "--no-index", "-w", str(out)], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    (built,) = out.glob("textlab-*.whl")
    return built


@pytest.mark.slow
def test_the_wheel_holds_the_app_the_pages_the_sample_data_and_every_package(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    bundle = "ui/_app/"
    assert bundle + "app.py" in names
    for page in sorted({*pages_of_the_router(), *(f"pages/{p.name}" for p in (ROOT / "pages").glob("*.py"))}):
        assert bundle + page in names, page
    for data in sorted((ROOT / "sample_data").iterdir()):
        assert f"{bundle}sample_data/{data.name}" in names, data.name
    # Every module of analysis/ and ui/, sub-packages included (found, not listed by hand);
    # a module missing here sits in a folder without an __init__.py.
    missing = [m for m in source_modules() if m not in names]
    assert not missing, f"not in the wheel (a folder without __init__.py?): {missing}"
    assert {"analysis/tasks/__init__.py", "ui/launch.py", "ui/resources.py"} <= names
    # Nothing of the clone that is not the product.
    assert not [n for n in names if n.split("/")[0] in ("tests", "benchmarks", "docs", "pages", "sample_data")
                or n == "app.py" or n == "setup.py"]
    entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
    assert "textlab = ui.launch:main" in zipfile.ZipFile(wheel).read(entry_points).decode()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(url: str) -> tuple[int, str]:
    with urllib.request.urlopen(url, timeout=5) as response:
        return response.status, response.read().decode("utf-8", "replace")


@pytest.fixture(scope="module")
def installed(wheel, tmp_path_factory) -> Path:
    """A fresh virtual environment with the wheel installed (not editable): its python.

    It sees this machine's packages (--system-site-packages) for the dependencies and the
    build tools, and gets Textlab from the wheel only.
    """
    venv = tmp_path_factory.mktemp("venv")
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", str(venv)],
                   check=True, timeout=120)
    python = venv / "bin" / "python"
    proc = subprocess.run([str(python), "-m", "pip", "install", "--no-deps", "--no-index", str(wheel)],
                          capture_output=True, text=True, timeout=300, env=outside_env())
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return python


def outside_env(**extra: str) -> dict[str, str]:
    """The environment of a user outside the clone: nothing points Python at the repository."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    return {**env, **extra}


@pytest.mark.slow
def test_the_installed_app_runs_from_a_folder_outside_the_clone(installed, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    # The installed package, not the clone, and the app files from inside it.
    script = textwrap.dedent("""
        import ui, ui.resources as r
        print(ui.__file__); print(r.app_path())
        from streamlit.testing.v1 import AppTest
        at = AppTest.from_file(str(r.app_path()), default_timeout=120)
        at.run()
        assert not at.exception, [e.value for e in at.exception]
        at.button(key="load_sample").click().run()
        assert not at.exception, [e.value for e in at.exception]
        assert not at.error, [e.value for e in at.error]
        print(" ".join(str(s.value) for s in at.success).replace("\\n", " "))
    """)
    proc = subprocess.run([str(installed), "-c", script], cwd=elsewhere, capture_output=True, text=True,
                          timeout=300, env=outside_env(TEXTLAB_HOME=str(tmp_path / "home")))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    package, app, notice = proc.stdout.strip().splitlines()[-3:]
    site = installed.parent.parent
    assert Path(package).is_relative_to(site) and Path(app).is_relative_to(site), (package, app)
    assert Path(app).parts[-3:] == ("ui", "_app", "app.py")
    assert notice.startswith("Loaded the sample data: 467 texts"), notice

    # The real server: `textlab app` from the same folder answers on its port.
    port = free_port()
    server = subprocess.Popen([str(installed.parent / "textlab"), "app", "--port", str(port),
                               "--workspace", str(tmp_path / "home")], cwd=elsewhere, env=outside_env(),
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.time() + 120
        while True:
            try:
                status, body = get(f"http://127.0.0.1:{port}/_stcore/health")
                break
            except OSError:
                assert server.poll() is None, server.stdout.read()
                assert time.time() < deadline, "textlab app did not answer within 120 s"
                time.sleep(0.5)
        assert (status, body.strip()) == (200, "ok")
        status, page = get(f"http://127.0.0.1:{port}/")
        assert status == 200 and "<html" in page.lower()
    finally:
        server.terminate()
        try:
            server.wait(20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
    output = server.stdout.read()
    assert f"open http://127.0.0.1:{port}" in output, output
    assert "missing from this copy" not in output
