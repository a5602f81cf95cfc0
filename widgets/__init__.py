"""d2lmod.widgets: see a model's modules, parameter counts, gradients and computation graph in Jupyter.

summary() works anywhere (its str() is a text table); the widgets need ipywidgets; only the graph view
needs the Graphviz program `dot`.
"""
from .explorer import Explorer
from .gradflow import GradFlow
from .graph_view import GraphView
from .render import summary
from .tree import ModuleTree

__all__ = ['summary', 'ModuleTree', 'GradFlow', 'GraphView', 'Explorer']
