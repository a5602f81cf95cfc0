"""Print an nbgitpuller link per lesson, for a JupyterHub whose user image has nbgitpuller.

    python classroom/links.py https://hub.example.org https://github.com/OWNER/REPO [--branch main]

Opening a link logs the student in, copies the repository into their home the first time (later: merges the
new version, keeping their own edits), and opens the lesson in JupyterLab. Lessons are found in notebooks/.
"""
from __future__ import annotations

import argparse
from pathlib import Path
from urllib.parse import urlencode

NOTEBOOKS = Path(__file__).resolve().parents[1] / 'notebooks'


def links(hub: str, repo: str, branch: str = 'HEAD') -> dict:
    """{lesson file name: link} for every notebooks/*.ipynb."""
    folder = repo.rstrip('/').rsplit('/', 1)[-1].removesuffix('.git')  # nbgitpuller clones into the repo's name
    return {path.name: f'{hub.rstrip("/")}/hub/user-redirect/git-pull?' + urlencode(
                {'repo': repo, 'branch': branch, 'urlpath': f'lab/tree/{folder}/notebooks/{path.name}'})
            for path in sorted(NOTEBOOKS.glob('*.ipynb'))}


if __name__ == '__main__':
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('hub', help='the hub address, e.g. https://hub.example.org')
    parser.add_argument('repo', help='the git repository of the lessons, e.g. https://github.com/OWNER/REPO')
    parser.add_argument('--branch', default='HEAD')
    args = parser.parse_args()
    for name, link in links(args.hub, args.repo, args.branch).items():
        print(f'{name}: {link}')
