#!/usr/bin/env bash
# Create a Unix account for every student named in a roster file (one username per line), give each a random
# first password, and write the roster JupyterHub reads (/etc/jupyterhub/roster.txt). Run as root:
#   sudo classroom/add-students.sh students.txt > passwords.csv   # hand each student their line; keep it safe
# Accounts that already exist keep their password. Restart the hub afterwards: systemctl restart jupyterhub
set -euo pipefail
roster="${1:?usage: add-students.sh ROSTER_FILE (one username per line)}"
[ "$(id -u)" -eq 0 ] || { echo "add-students.sh: run it as root (it creates accounts)" >&2; exit 1; }
install -d -m 755 /etc/jupyterhub
echo "username,password"
while IFS= read -r name || [ -n "$name" ]; do
    name="${name//[[:space:]]/}"
    [ -z "$name" ] && continue
    if ! [[ "$name" =~ ^[a-z][a-z0-9_-]{0,30}$ ]]; then
        echo "add-students.sh: skipping '$name': a username is lowercase letters, digits, - or _, starting with a letter" >&2
        continue
    fi
    if ! id "$name" >/dev/null 2>&1; then
        useradd --create-home --shell /bin/bash "$name"
        password="$(head -c 12 /dev/urandom | base64 | tr -d '/+=')"
        echo "$name:$password" | chpasswd
        echo "$name,$password"
    fi
    grep -qx "$name" /etc/jupyterhub/roster.txt 2>/dev/null || echo "$name" >> /etc/jupyterhub/roster.txt
done < "$roster"
