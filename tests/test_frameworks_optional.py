"""PyTorch and Flax stay optional: nothing imports them until one of their models arrives, and where one is
missing a single sentence says what to install (these tests need neither framework)."""
from __future__ import annotations

import subprocess
import sys

import pytest


def run(code: str) -> str:
    return subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, check=True).stdout.strip()


def test_importing_the_visualiser_imports_no_framework():
    code = ("import sys; import d2lmod.widgets\n"
            "from d2lmod.widgets import summary, frameworks\n"
            "import d2lmod as dm; from d2lmod import nn\n"
            "str(summary(nn.Sequential(nn.Linear(3, 2)), dm.rand(1, 3)))\n"
            "print([m for m in ('torch', 'jax', 'flax') if m in sys.modules])")
    assert run(code) == '[]'


@pytest.mark.parametrize('name, install', [('torch', 'pip install torch==2.13.0'), ('flax', 'pip install jax flax')])
def test_a_missing_framework_says_what_to_install(name, install):
    code = (f"import sys; sys.modules[{name!r}] = None\n"  # as if it were not installed
            "from d2lmod.widgets import frameworks\n"
            f"try:\n    frameworks.adapter({name!r})\nexcept ImportError as e:\n    print(e)")
    message = run(code)
    assert install in message and message.count('.') <= 4 and '\n' not in message


def test_framework_is_read_from_class_modules_without_importing():
    from d2lmod import nn
    from d2lmod.widgets import frameworks

    class Fake:  # a class that claims to come from torch: decided by name only, nothing imported
        pass
    Fake.__module__ = 'torch.nn.modules.linear'
    assert frameworks.framework_of(Fake()) == 'torch'
    assert frameworks.framework_of(nn.Linear(2, 2)) == 'd2lmod'


def test_needs_magic_skips_a_cell_when_a_package_is_missing():
    pytest.importorskip('IPython')
    code = ("from IPython.testing.globalipapp import start_ipython\n"
            "ip = start_ipython()\n"
            "ip.run_line_magic('load_ext', 'd2lmod.widgets.frameworks')\n"
            "ip.run_cell_magic('needs', 'no_such_package_d2lmod', 'print(\"ran\")')\n"
            "ip.run_cell_magic('needs', 'json', 'print(\"ran\")')\n")
    out = run(code)
    assert 'skipped: this cell needs no_such_package_d2lmod, not installed here' in out
    assert out.count('ran') == 1


@pytest.mark.parametrize('names, install', [(('torch',), 'pip install torch==2.13.0'),
                                            (('jax', 'flax.linen', 'jax.numpy'), 'pip install jax flax'),
                                            (('json', 'flax.linen'), 'pip install jax flax')])
def test_optional_gives_none_for_every_name_and_one_sentence_when_a_package_is_missing(names, install):
    code = ("import sys\n"
            "for name in ('torch', 'jax', 'flax'):\n    sys.modules[name] = None\n"  # as in a browser without them
            "from d2lmod.widgets.frameworks import optional\n"
            f"got = optional(*{names!r})\n"
            "print(repr(got))")
    sentence, got = run(code).split('\n')
    assert got == repr(None if len(names) == 1 else (None,) * len(names))
    assert install in sentence and sentence.count('.') <= 3


def test_optional_gives_the_installed_modules():
    import json
    import json.decoder

    from d2lmod.widgets.frameworks import optional
    assert optional('json') is json
    assert optional('json', 'json.decoder') == (json, json.decoder)
