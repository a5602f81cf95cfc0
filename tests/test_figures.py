"""The lessons' figures (d2lmod.widgets.figures): a PNG with matplotlib, a hand-drawn SVG without it, and always
one line of text that says what the figure shows (what nbval compares)."""
from __future__ import annotations

import sys
import xml.etree.ElementTree as ET

import pytest

from d2lmod.widgets import figures
from d2lmod.widgets.figures import plot, svg


def test_text_names_the_figure_and_each_curve_ends():
    p = plot({'sigmoid': [1e-4, 1e-2, 1.2], 'ReLU': [1.0, 0.9, 0.7]}, xlabel='layer', ylabel='gradient norm',
             title='Gradient per layer', log=True)
    assert str(p) == repr(p) == ('[figure] Gradient per layer: gradient norm by layer '
                                 '(sigmoid: 1.00e-04 -> 1.2; ReLU: 1 -> 0.7)')


def test_png_with_matplotlib():
    pytest.importorskip('matplotlib')
    p = plot({'loss': [2.3, 1.0, 0.5]}, xlabel='step', ylabel='loss')
    png = p._repr_png_()
    assert png.startswith(b'\x89PNG\r\n\x1a\n') and len(png) > 1000
    assert p._repr_svg_() is None  # one picture, not two


def test_without_matplotlib_an_svg_is_drawn(monkeypatch):
    monkeypatch.setitem(sys.modules, 'matplotlib', None)  # import matplotlib now raises ImportError
    for name in [m for m in sys.modules if m.startswith('matplotlib.')]:
        monkeypatch.setitem(sys.modules, name, None)
    p = plot({'a': [3, 2, 1], 'b': [1, 2, 3]}, xlabel='x', ylabel='y', title='T')
    assert p._repr_png_() is None
    text = p._repr_svg_()
    root = ET.fromstring(text)  # well-formed XML
    lines = root.findall('{http://www.w3.org/2000/svg}polyline')
    assert len(lines) == 2
    first = [tuple(map(float, pt.split(','))) for pt in lines[0].get('points').split()]
    assert len(first) == 3 and first[0][1] < first[-1][1]  # a falling curve goes down the screen


def test_svg_escapes_every_label():
    p = plot({'<b>&': [1, 2]}, xlabel='<x>', ylabel='"y"', title='<script>alert(1)</script>')
    text = svg(p)
    assert '<script>' not in text and '<b>' not in text and '<x>' not in text
    ET.fromstring(text)


def test_x_values_and_log_scale():
    p = plot({'a': [1, 10, 100]}, x=[0, 2, 4], xlabel='x', ylabel='y', log=True)
    points = ET.fromstring(svg(p)).find('{http://www.w3.org/2000/svg}polyline').get('points').split()
    ys = [float(pt.split(',')[1]) for pt in points]
    assert abs((ys[0] - ys[1]) - (ys[1] - ys[2])) < 0.2  # equal factors are equal steps on a log axis
    with pytest.raises(ValueError, match='log=True needs positive values'):
        plot({'a': [1, 0]}, xlabel='x', ylabel='y', log=True)


def test_a_flat_curve_does_not_divide_by_zero():
    ET.fromstring(svg(figures.plot({'flat': [2.0, 2.0]}, xlabel='x', ylabel='y')))
    ET.fromstring(svg(figures.plot({'one point': [2.0]}, xlabel='x', ylabel='y')))
