"""Simulation: scenarios that drive the real components, and the reports they write."""

from evgi.sim.report import Plot, Report, Section, bar_plot

__all__ = ["Plot", "Report", "Section", "bar_plot"]
