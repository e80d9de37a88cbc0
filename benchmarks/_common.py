"""Helpers the benchmark scripts share: the machine and package lines, and the Markdown writers.

The scripts run as ``python benchmarks/NAME.py`` (so this folder is on ``sys.path``) and import
``from _common import ...``. Each helper keeps the exact text the scripts wrote before it moved here:
the docs already hold sections in these formats, and a re-run must replace its own section.
"""

from __future__ import annotations

import importlib
import os
import platform
import re
import time
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

# --------------------------------------------------------------------------- machine


class OtherLoad:
    """CPU time that other processes used while this one ran, in cores (from /proc/stat; Linux only)."""

    def __init__(self):
        self.start = self._read()

    @staticmethod
    def _read():
        try:
            fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
        except (OSError, IndexError):
            return None
        busy = sum(int(v) for i, v in enumerate(fields[:8]) if i not in (3, 4))  # all but idle, iowait
        mine = os.times()
        return busy / os.sysconf("SC_CLK_TCK"), mine.user + mine.system, time.perf_counter()

    def cores(self) -> float | None:
        """Average number of cores busy with other processes since the start."""
        end = self._read()
        if self.start is None or end is None or end[2] <= self.start[2]:
            return None
        others = (end[0] - self.start[0]) - (end[1] - self.start[1])
        return max(0.0, others / (end[2] - self.start[2]))



def cpu_name() -> str:
    """The CPU model from /proc/cpuinfo, else platform's processor or architecture."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def processor() -> str:
    """platform's processor name, else the architecture (no /proc/cpuinfo lookup)."""
    return platform.processor() or platform.machine()


def n_cores() -> int:
    """Cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def total_ram() -> str:
    """', N GiB RAM' from /proc/meminfo, or '' where it cannot be read."""
    try:
        kb = int(re.search(r"MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text()).group(1))
    except (OSError, AttributeError):
        return ""
    return f", {kb / 1024 ** 2:.0f} GiB RAM"


def host_description(cpu: str | None = None, *, ram: bool = False) -> str:
    """'<cpu>, N cores' (', N GiB RAM' appended with ram=True); cpu defaults to '<cpu_name()> (<arch>)'."""
    if cpu is None:
        cpu = f"{cpu_name()} ({platform.machine()})"
    return f"{cpu}, {n_cores()} cores{total_ram() if ram else ''}"


def gpu_name(device) -> str:
    """'<name> (N GiB, CUDA x.y)' for a CUDA torch.device."""
    import torch

    props = torch.cuda.get_device_properties(device.index if device.index is not None else 0)
    return f"{props.name} ({props.total_memory / 2**30:.0f} GiB, CUDA {torch.version.cuda})"


# --------------------------------------------------------------------------- package versions


def module_versions(*modules: str, labels: dict[str, str] | None = None, required: bool = False) -> str:
    """'Python 3.x, torch 2.y, ...': each module's ``__version__``, shown under ``labels.get(module, module)``.

    A module that does not import is left out, or raises with required=True.
    """
    parts = [f"Python {platform.python_version()}"]
    for name in modules:
        try:
            module = importlib.import_module(name)
        except ImportError:
            if required:
                raise
            continue
        parts.append(f"{(labels or {}).get(name, name)} {module.__version__}")
    return ", ".join(parts)


def package_version(name: str) -> str:
    """An installed distribution's version (importlib.metadata), or 'not installed'."""
    try:
        return version(name)
    except PackageNotFoundError:
        return "not installed"


# --------------------------------------------------------------------------- servers


def stop_process(proc, grace: float = 20) -> None:
    """Terminate a server the benchmark started; kill it when it does not stop within ``grace`` s."""
    import subprocess

    proc.terminate()
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        proc.kill()


# --------------------------------------------------------------------------- markdown


def _section_pattern(begin: str, end: str) -> re.Pattern:
    return re.compile(re.escape(begin) + ".*?" + re.escape(end), re.DOTALL)


def write_section(path: Path, begin: str, end: str, section: str, *, new_file: str = "",
                  tidy: bool = False) -> None:
    """Replace the text from ``begin`` to ``end`` (markers included) in path with ``section``, which
    starts and ends with those markers; without them in the file, append section after a blank line.

    new_file: the text to start from when path does not exist. tidy=True (validity.py): strip only
    newlines, not other trailing whitespace, before appending, and end the file with exactly one newline.
    """
    text = path.read_text("utf-8") if path.exists() else new_file
    pattern = _section_pattern(begin, end)
    if pattern.search(text):
        text = pattern.sub(lambda _: section, text)
    else:
        text = (text.rstrip("\n") if tidy else text.rstrip()) + "\n\n" + section + "\n"
    path.write_text(text.rstrip("\n") + "\n" if tidy else text, "utf-8")


def part_marks(script: str, part: str) -> tuple[str, str]:
    """The markers of one part's block (cpu, gpu) inside a script's generated section."""
    return f"<!-- {script} {part}: begin -->", f"<!-- {script} {part}: end -->"


def write_part(path: Path, part: str, lines: list[str] | None, *, script: str, begin: str, end: str,
               intro: list[str], placeholder) -> None:
    """Rewrite one part's block (``part``: cpu or gpu) of a script's section in path.

    The section runs from ``begin`` to ``end`` and holds ``intro`` and a cpu and a gpu block, each
    between ``part_marks(script, part)``. lines None: keep a measured block, else write
    ``placeholder(part)``. Without the section in the file, append it with ``placeholder`` for the
    other part.
    """
    def marked(p: str, body: list[str]) -> str:
        p_begin, p_end = part_marks(script, p)
        return "\n".join([p_begin, *body, p_end])

    text = path.read_text("utf-8") if path.exists() else ""
    block = marked(part, lines if lines is not None else placeholder(part))
    if begin in text and end in text:
        start, stop = text.index(begin), text.index(end)
        section = text[start:stop]
        pattern = _section_pattern(*part_marks(script, part))
        if pattern.search(section):
            if lines is None:
                print(f"{path}: kept the existing {part} block")
                return
            section = pattern.sub(lambda _: block, section)
        else:
            section = section.rstrip() + "\n\n" + block + "\n"
        text = text[:start] + section + text[stop:]
    else:
        blocks = [block if p == part else marked(p, placeholder(p)) for p in ("cpu", "gpu")]
        section = "\n".join([begin, *intro, "", blocks[0], "", blocks[1], end])
        text = text.rstrip() + "\n\n" + section + "\n"
    path.write_text(text, "utf-8")
    print(f"wrote the {part} block of {path}")


def append_markdown(path, lines: list[str]) -> None:
    """Append lines to path after a blank line."""
    with open(path, "a", encoding="utf-8") as fh:
        fh.write("\n" + "\n".join(lines) + "\n")
