"""Paths the tests share (a plain module: tests import from here, never from conftest)."""

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SAMPLE_CSV = ROOT / "sample_data" / "policy_survey.csv"
