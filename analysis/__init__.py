"""Textlab: a local text-analysis workbench for social scientists.

The library behind the app and the ``textlab`` command. Nothing here imports Streamlit.
"""

__version__ = "0.1.0"
