"""Scenario reports: one JSON document for machines and one HTML page with tables and plots."""

from __future__ import annotations

import base64
import io
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # no screen on servers and CI
import matplotlib.pyplot as plt
from jinja2 import Environment, PackageLoader, select_autoescape
from matplotlib.figure import Figure


@dataclass
class Plot:
    title: str
    png_base64: str


@dataclass
class Link:
    """A file written next to the report, linked from it (href relative to the report)."""

    label: str
    href: str


@dataclass
class Section:
    title: str
    summary: str = ""
    rows: list[dict[str, Any]] = field(default_factory=list)
    plots: list[Plot] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)
    links: list[Link] = field(default_factory=list)


def bar_plot(title: str, labels: list[str], values: list[float], ylabel: str) -> Plot:
    figure, axes = plt.subplots(figsize=(7, 3.2), dpi=110)
    axes.bar(labels, values, color="#2a7ab9")
    axes.set_title(title)
    axes.set_ylabel(ylabel)
    axes.tick_params(axis="x", labelrotation=30)
    return _encoded(figure, title)


def line_plot(
    title: str, labels: list[str], series: dict[str, list[float]], ylabel: str, ticks: int = 12
) -> Plot:
    """Time series sharing one x axis of labels, at most `ticks` of them written out."""
    figure, axes = plt.subplots(figsize=(7, 3.2), dpi=110)
    for name, values in series.items():
        axes.plot(labels, values, label=name, linewidth=1.2)
    axes.set_title(title)
    axes.set_ylabel(ylabel)
    axes.set_xticks(labels[:: max(len(labels) // ticks, 1)])
    axes.tick_params(axis="x", labelrotation=30)
    axes.legend(fontsize="small")
    axes.grid(alpha=0.3)
    return _encoded(figure, title)


def _encoded(figure: Figure, title: str) -> Plot:
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    plt.close(figure)
    return Plot(title, base64.b64encode(buffer.getvalue()).decode())


@dataclass
class Report:
    title: str
    sections: list[Section] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    generated: str = field(default_factory=lambda: datetime.now(UTC).isoformat())

    def check(self, condition: bool, failure: str) -> bool:
        """Record a failed expectation; the demo exits non-zero if any was recorded."""
        if not condition:
            self.failures.append(failure)
        return condition

    @property
    def ok(self) -> bool:
        return not self.failures

    def add(self, section: Section) -> Section:
        self.sections.append(section)
        return section

    def to_json(self) -> dict[str, Any]:
        return {
            "title": self.title,
            "generated": self.generated,
            "ok": self.ok,
            "failures": self.failures,
            "sections": [
                {
                    "title": s.title,
                    "summary": s.summary,
                    "rows": s.rows,
                    "data": s.data,
                    "plots": [p.title for p in s.plots],
                    "links": [{"label": link.label, "href": link.href} for link in s.links],
                }
                for s in self.sections
            ],
        }

    def write(self, folder: Path) -> tuple[Path, Path]:
        folder.mkdir(parents=True, exist_ok=True)
        json_path = folder / "report.json"
        html_path = folder / "report.html"
        json_path.write_text(json.dumps(self.to_json(), indent=2, default=str) + "\n")
        env = Environment(
            loader=PackageLoader("evgi.sim", "templates"),
            autoescape=select_autoescape(["html", "j2"]),
        )
        html_path.write_text(env.get_template("report.html.j2").render(report=self))
        return html_path, json_path
