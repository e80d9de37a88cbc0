"""Streamlit glue: session state, cached resources and shared widgets (no analysis code)."""
