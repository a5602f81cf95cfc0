"""A class on one machine: JupyterHub on loopback, N students (8 unless D2LMOD_CLASS_SIZE says otherwise)
created through its REST API, their servers started, lesson 1 run in each student's kernel.

It reports the time until each student's server is ready, the time lesson 1 takes, and the memory (RSS) of
the hub, the proxy, every server and every kernel (printed, and written to test-artifacts/classroom/load.json;
the README's "Teaching a class" quotes them). Everything listens on 127.0.0.1 only (checked against the
kernel's table of listening sockets), every request loop is bounded in count and time, and every process it
started is stopped by its process id, also when the test fails. The spawner here is the simple one: every
student runs as the hub's own user. That is fine for this test and never for a real class (classroom/README.md).
Needs jupyterhub (in .[dev]) and configurable-http-proxy in .npm/ (./dev.sh test installs both).
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
LESSON = REPO / 'notebooks' / '01_layers_and_modules.ipynb'
PROXY = REPO / '.npm' / 'node_modules' / '.bin' / 'configurable-http-proxy'
ARTIFACTS = REPO / 'test-artifacts' / 'classroom'
STUDENTS = int(os.environ.get('D2LMOD_CLASS_SIZE', '8'))
READY_SECONDS = 180   # the longest all servers together may take to be ready
CELL_SECONDS = 120    # the longest one cell may take
MESSAGES = 10_000     # the most messages one cell may send (widgets send a few dozen)
POLL = 0.25           # seconds between two polls of a loop
SCOPES = ['admin:users', 'admin:servers', 'admin:server_state', 'access:servers', 'read:users', 'tokens']


def unavailable(reason: str):
    if os.environ.get('CI'):
        pytest.fail(f'{reason} (CI is set, so the classroom test fails instead of skipping)', pytrace=False)
    pytest.skip(reason)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


# ---- processes: memory, children, listening sockets (from /proc) -------------------------------------------
def rss_mb(pid: int) -> float:
    for line in Path(f'/proc/{pid}/status').read_text().splitlines():
        if line.startswith('VmRSS:'):
            return int(line.split()[1]) / 1024
    return 0.0


def children(pid: int) -> list:
    """The direct children of pid."""
    found = []
    for entry in Path('/proc').iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / 'stat').read_text()
            except OSError:
                continue
            if int(stat.rsplit(')', 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def cmdline(pid: int) -> str:
    try:
        return Path(f'/proc/{pid}/cmdline').read_bytes().replace(b'\0', b' ').decode(errors='replace')
    except OSError:
        return ''


def listening(pids) -> list:
    """(address, port) of every TCP socket in LISTEN state that one of pids holds."""
    inodes = set()
    for pid in pids:
        try:
            for fd in Path(f'/proc/{pid}/fd').iterdir():
                target = os.readlink(fd)
                if target.startswith('socket:['):
                    inodes.add(target[8:-1])
        except OSError:
            continue
    found = []
    for table, width in (('/proc/net/tcp', 8), ('/proc/net/tcp6', 32)):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == '0A' and fields[9] in inodes:  # 0A: LISTEN
                address, port = fields[1].split(':')
                found.append((address, int(port, 16)))
    return found


def is_loopback(hex_address: str) -> bool:
    """127.0.0.1 is 0100007F in /proc/net/tcp; ::1 and IPv4-mapped 127.x in tcp6."""
    if len(hex_address) == 8:
        return hex_address.endswith('7F')
    return hex_address in ('00000000000000000000000001000000', '0000000000000000FFFF00000100007F')


def stop(pid: int, command: str, seconds: float = 15) -> None:
    """SIGTERM pid if it is still the process we started (same command line), then SIGKILL after seconds."""
    if cmdline(pid) != command:
        return
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and cmdline(pid) == command:
        time.sleep(POLL)
    if cmdline(pid) == command:
        os.kill(pid, signal.SIGKILL)


# ---- the hub --------------------------------------------------------------------------------------------
class Hub:
    """JupyterHub with configurable-http-proxy, both on 127.0.0.1, its state in tmp; an API token for the test."""

    def __init__(self, tmp: Path):
        self.tmp, self.token = tmp, secrets.token_hex(32)
        self.port, hub_port, api_port = free_port(), free_port(), free_port()
        self.url = f'http://127.0.0.1:{self.port}'
        root_args = ['--ServerApp.allow_root=True'] if os.geteuid() == 0 else []
        config = f'''
c.JupyterHub.bind_url = 'http://127.0.0.1:{self.port}'
c.JupyterHub.hub_ip = '127.0.0.1'
c.JupyterHub.hub_port = {hub_port}
c.ConfigurableHTTPProxy.api_url = 'http://127.0.0.1:{api_port}'
c.ConfigurableHTTPProxy.command = [{str(PROXY)!r}]
c.JupyterHub.db_url = 'sqlite:///{tmp}/jupyterhub.sqlite'
c.JupyterHub.cookie_secret_file = '{tmp}/cookie_secret'
c.JupyterHub.authenticator_class = 'shared-password'
c.SharedPasswordAuthenticator.user_password = {secrets.token_hex(16)!r}
c.JupyterHub.spawner_class = 'simple'   # every student as the hub's user: for this test only
c.SimpleLocalProcessSpawner.home_dir_template = '{tmp}/home/{{username}}'
c.Spawner.cmd = [{str(Path(sys.executable).with_name('jupyterhub-singleuser'))!r}]
c.Spawner.args = {root_args!r}
c.Spawner.default_url = '/lab'
c.Spawner.start_timeout = {READY_SECONDS}
c.Spawner.http_timeout = {READY_SECONDS}
c.JupyterHub.services = [{{'name': 'classroom-test', 'api_token': {self.token!r}}}]
c.JupyterHub.load_roles = [{{'name': 'classroom-test', 'scopes': {SCOPES!r}, 'services': ['classroom-test']}}]
c.JupyterHub.cleanup_servers = True
c.JupyterHub.cleanup_proxy = True
'''
        (tmp / 'jupyterhub_config.py').write_text(config)
        env = dict(os.environ, PATH=f'{Path(sys.executable).parent}{os.pathsep}{os.environ.get("PATH", "")}',
                   JUPYTER_RUNTIME_DIR=str(tmp / 'runtime'), JUPYTER_DATA_DIR=str(tmp / 'data'),
                   JUPYTER_CONFIG_DIR=str(tmp / 'config'), IPYTHONDIR=str(tmp / 'ipython'))
        self.log_path = tmp / 'jupyterhub.log'
        self.log = open(self.log_path, 'w')
        self.proc = subprocess.Popen([sys.executable, '-m', 'jupyterhub', '-f', str(tmp / 'jupyterhub_config.py')],
                                     cwd=tmp, env=env, stdout=self.log, stderr=subprocess.STDOUT)
        self.command = ''
        self.started = {}   # pid -> command line of every process the hub started for the test

    def api(self, method: str, path: str, body=None, base: str = '/hub/api'):
        request = urllib.request.Request(f'{self.url}{base}{path}', method=method,
                                         data=None if body is None else json.dumps(body).encode(),
                                         headers={'Authorization': f'token {self.token}'})
        with urllib.request.urlopen(request, timeout=30) as response:
            text = response.read()
            return json.loads(text) if text else None

    def wait_until_up(self, seconds: float = 60) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f'JupyterHub exited with code {self.proc.returncode}:\n{self.log_tail()}')
            try:
                self.api('GET', '/')
                self.command = cmdline(self.proc.pid)
                return
            except (OSError, urllib.error.HTTPError):
                time.sleep(POLL)
        raise RuntimeError(f'JupyterHub did not answer in {seconds} s:\n{self.log_tail()}')

    def remember(self, pid: int) -> int:
        self.started[pid] = cmdline(pid)
        return pid

    def proxy_pid(self) -> int:
        found = [p for p in children(self.proc.pid) if 'configurable-http-proxy' in cmdline(p)]
        assert found, 'the hub started no configurable-http-proxy'
        return self.remember(found[0])

    def log_tail(self, lines: int = 40) -> str:
        self.log.flush()
        return '\n'.join(self.log_path.read_text(errors='replace').splitlines()[-lines:])

    def stop(self) -> None:
        """The hub (which stops the servers and the proxy), then anything it left running, each by its pid."""
        if self.proc.poll() is None:  # the hub stops the servers and the proxy on its way out (cleanup_*)
            family, k = children(self.proc.pid), 0
            while k < len(family) and len(family) < 1000:   # every process below the hub: proxy, servers, kernels
                family += children(family[k])
                k += 1
            for pid in family:
                self.remember(pid)
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for pid, command in self.started.items():
            stop(pid, command)
        self.log.close()


@pytest.fixture
def hub(tmp_path):
    if not PROXY.exists():
        unavailable(f'no configurable-http-proxy at {PROXY}: npm install --prefix .npm configurable-http-proxy@5 '
                    '(./dev.sh test does it)')
    pytest.importorskip('jupyterhub', reason='jupyterhub is not installed: pip install -e ".[dev]"')
    pytest.importorskip('tornado')
    server = Hub(tmp_path)
    try:
        server.wait_until_up()
        yield server
    finally:
        server.stop()


# ---- a kernel, driven over the Jupyter messaging protocol on a websocket ----------------------------------
async def run_notebook(hub: Hub, user: str, cells: list) -> dict:
    """Start a kernel on user's server, run cells (source, tags) in order; {'errors': [...], 'seconds': s, 'kernel': id}."""
    from tornado.httpclient import HTTPRequest
    from tornado.websocket import websocket_connect

    base = f'/user/{user}/api'
    kernel = await asyncio.to_thread(hub.api, 'POST', '/kernels', {'name': 'python3'}, base)
    request = HTTPRequest(f'ws://127.0.0.1:{hub.port}{base}/kernels/{kernel["id"]}/channels',
                          headers={'Authorization': f'token {hub.token}'})
    ws = await asyncio.wait_for(websocket_connect(request), 30)
    session, errors, started = uuid.uuid4().hex, [], time.monotonic()
    try:
        for index, (source, tags) in enumerate(cells):
            msg_id = uuid.uuid4().hex
            ws.write_message(json.dumps({
                'header': {'msg_id': msg_id, 'msg_type': 'execute_request', 'session': session, 'username': user,
                           'version': '5.3', 'date': ''},
                'parent_header': {}, 'metadata': {}, 'channel': 'shell', 'buffers': [],
                'content': {'code': source, 'silent': False, 'store_history': True, 'user_expressions': {},
                            'allow_stdin': False, 'stop_on_error': True}}))
            status, deadline, count = None, time.monotonic() + CELL_SECONDS, 0
            while status is None:   # bounded: one cell's replies, at most MESSAGES, within CELL_SECONDS
                count += 1
                if count > MESSAGES:
                    raise RuntimeError(f'{user}: cell {index} sent more than {MESSAGES} messages')
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f'{user}: cell {index} still running after {CELL_SECONDS} s')
                raw = await asyncio.wait_for(ws.read_message(), left)
                if raw is None:
                    raise ConnectionError(f'{user}: the kernel websocket closed during cell {index}')
                if isinstance(raw, bytes):
                    continue
                msg = json.loads(raw)
                if msg.get('parent_header', {}).get('msg_id') != msg_id:
                    continue
                if msg['msg_type'] == 'execute_reply':
                    status = msg['content']['status']
                elif msg['msg_type'] == 'stream' and msg['content']['name'] == 'stderr' \
                        and 'raises-exception' not in tags:
                    errors.append(f'cell {index} wrote to stderr: {msg["content"]["text"][:300]}')
            if (status == 'error') != ('raises-exception' in tags):
                errors.append(f'cell {index}: status {status}' + (' (expected an error)' if status == 'ok' else ''))
    finally:
        ws.close()
    return {'errors': errors, 'seconds': time.monotonic() - started, 'kernel': kernel['id']}


def code_cells(path: Path) -> list:
    return [(''.join(c['source']), c.get('metadata', {}).get('tags', []))
            for c in json.loads(path.read_text())['cells'] if c['cell_type'] == 'code']


# ---- the test ----------------------------------------------------------------------------------------------
def test_a_class_of_students_runs_lesson_one(hub):
    users = [f'student{k:02d}' for k in range(1, STUDENTS + 1)]
    hub.api('POST', '/users', {'usernames': users})
    proxy = hub.proxy_pid()

    # start every server at once, as a class does at the start of a lesson; poll until all are ready (bounded)
    asked = time.monotonic()
    for user in users:
        hub.api('POST', f'/users/{user}/server')
    ready, deadline = {}, asked + READY_SECONDS
    for _ in range(int(READY_SECONDS / POLL)):   # bounded in count and in time
        if len(ready) == len(users) or time.monotonic() > deadline:
            break
        for user in users:
            if user not in ready:
                server = hub.api('GET', f'/users/{user}')['servers'].get('', {})
                if server.get('ready'):
                    ready[user] = time.monotonic() - asked
                    hub.remember(server['state']['pid'])
        time.sleep(POLL)
    assert len(ready) == len(users), f'only {sorted(ready)} ready after {READY_SECONDS} s:\n{hub.log_tail()}'

    async def everyone():
        return await asyncio.gather(*(run_notebook(hub, user, code_cells(LESSON)) for user in users))
    # asyncio.run in a thread of its own: the browser tests' Playwright keeps an event loop running in this one
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        runs = dict(zip(users, pool.submit(asyncio.run, everyone()).result()))

    servers = {user: hub.api('GET', f'/users/{user}')['servers']['']['state']['pid'] for user in users}
    kernels = {user: [hub.remember(p) for p in children(servers[user]) if 'ipykernel' in cmdline(p)]
               for user in users}
    everything = [hub.proc.pid, proxy, *servers.values(), *(p for ps in kernels.values() for p in ps)]
    sockets = listening(everything)
    memory = {'hub': rss_mb(hub.proc.pid), 'proxy': rss_mb(proxy),
              'students': {user: {'ready_seconds': round(ready[user], 2),
                                  'lesson_seconds': round(runs[user]['seconds'], 2),
                                  'server_mb': round(rss_mb(servers[user]), 1),
                                  'kernel_mb': round(sum(rss_mb(p) for p in kernels[user]), 1)}
                           for user in users}}
    per_student = [s['server_mb'] + s['kernel_mb'] for s in memory['students'].values()]
    summary = {'students': len(users), 'all_ready_seconds': round(max(ready.values()), 2),
               'hub_mb': round(memory['hub'], 1), 'proxy_mb': round(memory['proxy'], 1),
               'per_student_mb': round(sum(per_student) / len(per_student), 1),
               'total_mb': round(memory['hub'] + memory['proxy'] + sum(per_student), 1),
               'lesson_seconds_max': round(max(r['seconds'] for r in runs.values()), 2),
               'listening_sockets': len(sockets), **memory}
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / 'load.json').write_text(json.dumps(summary, indent=2) + '\n')
    print(f'\nclassroom: {len(users)} students ready in {summary["all_ready_seconds"]} s; lesson 1 took at most '
          f'{summary["lesson_seconds_max"]} s; hub {summary["hub_mb"]:.0f} MB, proxy {summary["proxy_mb"]:.0f} MB, '
          f'per student {summary["per_student_mb"]:.0f} MB (server + kernel), total {summary["total_mb"]:.0f} MB')

    problems = [f'{user}: {error}' for user, run in runs.items() for error in run['errors']]
    problems += [f'{user} has no kernel process' for user, ps in kernels.items() if not ps]
    problems += [f'a socket listens beyond loopback: {address}:{port}'
                 for address, port in sockets if not is_loopback(address)]
    assert sockets, 'found no listening socket of the hub, proxy or servers: the /proc check is broken'
    assert not problems, '\n'.join(problems)
