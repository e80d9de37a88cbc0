"""A deliberately slow task for the crash-and-resume tests.

Every chunk it processes is logged to a file (one line per chunk: its first text), so a
test can see which chunks a resumed run recomputed.
"""

import os
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from analysis.tasks import register
from analysis.tasks.base import BaseConfig, Predictor, Task


@dataclass
class SlowConfig(BaseConfig):
    backend: str = "offline"
    delay: float = 0.02  # seconds per text
    log: str = ""


class SlowPredictor(Predictor):
    def __init__(self, config: SlowConfig):
        self.config = config

    def predict(self, texts, progress=None):
        # The environment can set these for a subprocess (the CLI passes only its own options).
        log = os.environ.get("SLOW_TASK_LOG", self.config.log)
        delay = float(os.environ.get("SLOW_TASK_DELAY", self.config.delay))
        if log:
            with open(log, "a", encoding="utf-8") as fh:
                fh.write(texts[0] + "\n")
        time.sleep(delay * len(texts))
        return pd.DataFrame({"slow_chars": [len(t) for t in texts], "slow_upper": [t.upper() for t in texts]})

    def describe(self):
        return {"backend": "offline", "model": "slow test task"}


class SlowTask(Task):
    name = "slow"
    title = "Slow test task"
    description = "Sleeps; for tests."
    Config = SlowConfig
    chunk_size = 10

    def load(self, config, context=None):
        return SlowPredictor(config)

    def empty_row(self):
        return {"slow_chars": 0, "slow_upper": None}


register(SlowTask())


def logged_chunks(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines() if path.exists() else []
