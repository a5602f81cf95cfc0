# JupyterHub for a class on one machine: every student is a Unix account of their own (LocalProcessSpawner,
# the default spawner), they log in with that account's password (PAM, the default authenticator), and only
# the students listed in roster.txt (plus the instructor) may log in. See classroom/README.md for the steps.
#
# Put this file at /etc/jupyterhub/jupyterhub_config.py and start the hub with
#   /opt/jupyterhub/bin/jupyterhub -f /etc/jupyterhub/jupyterhub_config.py
# (classroom/jupyterhub.service does so as a systemd service).
from pathlib import Path

ROSTER = Path('/etc/jupyterhub/roster.txt')   # one student username per line; add-students.sh writes it
INSTRUCTOR = 'instructor'                      # a Unix account too: the hub's admin

c = get_config()  # noqa: F821 (defined by JupyterHub when it reads this file)

# --- where it listens: the proxy serves the students; put HTTPS in front (see README) or set ssl_cert/ssl_key
c.JupyterHub.bind_url = 'http://:8000'
c.JupyterHub.hub_ip = '127.0.0.1'                          # the hub's own API stays on this machine
c.ConfigurableHTTPProxy.api_url = 'http://127.0.0.1:8001'
c.ConfigurableHTTPProxy.command = ['/opt/jupyterhub/npm/node_modules/.bin/configurable-http-proxy']
c.JupyterHub.db_url = 'sqlite:////var/lib/jupyterhub/jupyterhub.sqlite'
c.JupyterHub.cookie_secret_file = '/var/lib/jupyterhub/jupyterhub_cookie_secret'

# --- who may log in: the roster and the instructor, with their Unix passwords (PAM)
c.JupyterHub.authenticator_class = 'pam'
c.Authenticator.allowed_users = {line.strip() for line in ROSTER.read_text().splitlines() if line.strip()} \
    if ROSTER.exists() else set()
c.Authenticator.admin_users = {INSTRUCTOR}

# --- every student's server runs as that student (never as root, never as the hub's user)
c.JupyterHub.spawner_class = 'localprocess'
c.Spawner.cmd = ['/opt/jupyterhub/bin/jupyterhub-singleuser']   # the shared venv, readable by every account
c.Spawner.default_url = '/lab'
c.Spawner.notebook_dir = '~'
# Measured on a 2-core machine: a student's server ~130 MB plus a kernel ~70 MB (lesson 4: ~154 MB).
# Limits need a spawner that enforces them (systemdspawner, DockerSpawner, Kubernetes); this one only reports.
c.Spawner.mem_limit = '1G'
c.Spawner.start_timeout = 120
c.Spawner.http_timeout = 60

# --- stop servers nobody used for an hour (the idle culler: pip install jupyterhub-idle-culler)
c.JupyterHub.load_roles = [{
    'name': 'idle-culler',
    'scopes': ['list:users', 'read:users:activity', 'read:servers', 'delete:servers'],
    'services': ['idle-culler'],
}]
c.JupyterHub.services = [{
    'name': 'idle-culler',
    'command': ['/opt/jupyterhub/bin/python', '-m', 'jupyterhub_idle_culler', '--timeout=3600'],
}]
