"""The market dashboard: a Streamlit page over the warehouse, read-only, no pipeline code."""

from pathlib import Path


def app_path() -> Path:
    """The Streamlit script ``crypto-assets dashboard`` serves."""
    return Path(__file__).with_name("app.py")
