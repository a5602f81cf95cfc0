"""classroom/: the one-machine JupyterHub config keeps students apart, and the lesson links point at lessons."""
from __future__ import annotations

import importlib.util
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

REPO = Path(__file__).resolve().parents[1]
CLASSROOM = REPO / 'classroom'


def test_the_hub_config_runs_each_student_as_their_own_account(tmp_path, monkeypatch):
    traitlets_config = pytest.importorskip('traitlets.config')
    config = traitlets_config.Config()
    roster = tmp_path / 'roster.txt'
    roster.write_text('student01\n\nstudent02\n')
    source = (CLASSROOM / 'jupyterhub_config.py').read_text().replace("Path('/etc/jupyterhub/roster.txt')",
                                                                     f'Path({str(roster)!r})')
    exec(compile(source, 'jupyterhub_config.py', 'exec'), {'get_config': lambda: config})
    assert config.JupyterHub.spawner_class == 'localprocess'   # never 'simple': that runs everyone as the hub
    assert config.JupyterHub.authenticator_class == 'pam'
    assert config.Authenticator.allowed_users == {'student01', 'student02'}
    assert config.JupyterHub.hub_ip == '127.0.0.1'
    assert config.ConfigurableHTTPProxy.api_url.startswith('http://127.0.0.1:')


def test_every_lesson_has_an_nbgitpuller_link():
    spec = importlib.util.spec_from_file_location('classroom_links', CLASSROOM / 'links.py')
    links = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(links)
    made = links.links('https://hub.example.org/', 'https://github.com/owner/lessons.git', 'main')
    assert sorted(made) == sorted(p.name for p in (REPO / 'notebooks').glob('*.ipynb'))
    for name, link in made.items():
        parts = urlsplit(link)
        assert (parts.netloc, parts.path) == ('hub.example.org', '/hub/user-redirect/git-pull')
        query = parse_qs(parts.query)
        assert query == {'repo': ['https://github.com/owner/lessons.git'], 'branch': ['main'],
                         'urlpath': [f'lab/tree/lessons/notebooks/{name}']}


def test_the_kubernetes_values_use_the_class_image_and_a_real_login():
    yaml = pytest.importorskip('yaml')
    values = yaml.safe_load((CLASSROOM / 'z2jh-values.yaml').read_text())
    assert values['singleuser']['image']['name'].endswith('/d2lmod-class')
    assert values['hub']['config']['JupyterHub']['authenticator_class'] not in ('dummy', 'shared-password')
    assert 'nbgitpuller' in (CLASSROOM / 'Dockerfile').read_text()
