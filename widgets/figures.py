"""Line charts for the lessons: a figure students look at, with one line of text that says what it shows.

    plot({'sigmoid': norms_a, 'ReLU': norms_b}, xlabel='layer', ylabel='gradient norm', log=True,
         title='Gradient reaching each layer')

matplotlib draws the picture (PNG) when it is installed; without it (e.g. in an in-browser Python) the
same chart is drawn as SVG by the few lines below, so a lesson runs and shows its picture everywhere.
The text form (what nbval compares, and what a terminal prints) is the title and each curve's ends.
"""
from __future__ import annotations

import io
import math
from html import escape

COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b']


class Plot:
    """A chart of named curves; Jupyter shows the picture, str() a line of text."""

    def __init__(self, series: dict, *, xlabel: str, ylabel: str, title: str = '', log: bool = False,
                 x=None):
        self.series = {str(k): [float(v) for v in vs] for k, vs in series.items()}
        self.xlabel, self.ylabel, self.title, self.log = xlabel, ylabel, title, log
        n = max(len(v) for v in self.series.values())
        self.x = [float(v) for v in x] if x is not None else list(range(n))
        if self.log and any(v <= 0 for vs in self.series.values() for v in vs):
            raise ValueError(f'plot {title!r}: log=True needs positive values; use log=False, or drop zeros')

    def __str__(self) -> str:
        ends = '; '.join(f'{k}: {_fmt(vs[0])} -> {_fmt(vs[-1])}' for k, vs in self.series.items())
        return f'[figure] {self.title + ": " if self.title else ""}{self.ylabel} by {self.xlabel} ({ends})'

    __repr__ = __str__

    def _repr_png_(self):
        try:
            from matplotlib.backends.backend_agg import FigureCanvasAgg
            from matplotlib.figure import Figure
        except ImportError:
            return None  # Jupyter then asks for the SVG below
        fig = Figure(figsize=(6, 3.4), dpi=100)  # no pyplot: no global figure state, nothing left open
        FigureCanvasAgg(fig)
        ax = fig.add_subplot()
        for name, values in self.series.items():
            ax.plot(self.x[:len(values)], values, marker='o' if len(values) <= 30 else None, markersize=3, label=name)
        ax.set(xlabel=self.xlabel, ylabel=self.ylabel, title=self.title, yscale='log' if self.log else 'linear')
        ax.grid(alpha=0.3)
        ax.legend()
        fig.tight_layout()
        buffer = io.BytesIO()
        fig.savefig(buffer, format='png', metadata={'Software': None})
        return buffer.getvalue()

    def _repr_svg_(self):
        if _has_matplotlib():
            return None  # the PNG is shown
        return svg(self)


def plot(series: dict, *, xlabel: str, ylabel: str, title: str = '', log: bool = False, x=None) -> Plot:
    """A line chart of series {name: values}, one point per x (default 0, 1, ...); log: logarithmic y axis."""
    return Plot(series, xlabel=xlabel, ylabel=ylabel, title=title, log=log, x=x)


def _has_matplotlib() -> bool:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def _fmt(v: float) -> str:
    return f'{v:.2e}' if v != 0 and (abs(v) < 1e-2 or abs(v) >= 1e4) else f'{v:.3g}'


def svg(p: Plot, width: int = 560, height: int = 300) -> str:
    """The chart as an SVG string drawn by hand (used when matplotlib is missing); every label escaped."""
    left, right, top, bottom = 70, 120, 30, 45
    scale = (lambda v: math.log10(v)) if p.log else (lambda v: v)
    ys = [scale(v) for vs in p.series.values() for v in vs]
    y0, y1 = min(ys), max(ys)
    y1 = y1 if y1 > y0 else y0 + 1
    x0, x1 = min(p.x), max(p.x)
    x1 = x1 if x1 > x0 else x0 + 1

    def px(x, y):  # data -> pixels; y grows downwards on screen
        return (left + (x - x0) / (x1 - x0) * (width - left - right),
                top + (y1 - scale(y)) / (y1 - y0) * (height - top - bottom))

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" '
             f'font-size="12"><rect width="{width}" height="{height}" fill="white"/>',
             f'<text x="{width / 2}" y="18" text-anchor="middle" font-weight="bold">{escape(p.title)}</text>',
             f'<text x="{(left + width - right) / 2}" y="{height - 8}" text-anchor="middle">{escape(p.xlabel)}</text>',
             f'<text x="14" y="{height / 2}" text-anchor="middle" transform="rotate(-90 14 {height / 2})">'
             f'{escape(p.ylabel)}{" (log scale)" if p.log else ""}</text>',
             f'<rect x="{left}" y="{top}" width="{width - left - right}" height="{height - top - bottom}" '
             'fill="none" stroke="#999"/>']
    for label_y in (y0, y1):  # the axis ends, in data units
        value = 10 ** label_y if p.log else label_y
        _, y = px(x0, value)
        parts.append(f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">{_fmt(value)}</text>')
    for label_x in (x0, x1):
        x, _ = px(label_x, 10 ** y0 if p.log else y0)
        parts.append(f'<text x="{x:.1f}" y="{height - bottom + 16}" text-anchor="middle">{label_x:g}</text>')
    for i, (name, values) in enumerate(p.series.items()):
        color = COLORS[i % len(COLORS)]
        points = ' '.join(f'{x:.1f},{y:.1f}' for x, y in (px(xv, v) for xv, v in zip(p.x, values)))
        parts.append(f'<polyline points="{points}" fill="none" stroke="{color}" stroke-width="2"/>')
        parts.append(f'<text x="{width - right + 8}" y="{top + 14 + 16 * i}" fill="{color}">{escape(name)}</text>')
    return ''.join(parts) + '</svg>'
