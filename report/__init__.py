"""Reporting: tables, plots, the HTML/Markdown report, Pareto and accuracy tables, run designs."""
