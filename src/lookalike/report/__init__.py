"""Reports of ``find`` results: a self-contained HTML page, CSV for spreadsheets, and a PNG plot of
one picture's duplicates (matplotlib, the optional ``report`` extra)."""

from lookalike.report.html import write_html
from lookalike.report.table import write_csv

__all__ = ["write_csv", "write_html"]
