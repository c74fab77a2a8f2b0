#!/usr/bin/env bash
# Starts what the tests talk to, if it is not running yet: PostgreSQL on 127.0.0.1:5432, Redis
# on 127.0.0.1:6379 and Chromium for the browser tests (installed from Debian when missing).
set -euo pipefail
if ! pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null; then
  if ! command -v pg_ctlcluster >/dev/null; then
    apt-get install -y -q postgresql >/dev/null
  fi
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start
  for _ in $(seq 1 30); do pg_isready -h 127.0.0.1 -p 5432 -q && break; sleep 1; done
fi
if ! (command -v redis-cli >/dev/null && redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null | grep -q PONG); then
  if ! command -v redis-server >/dev/null; then
    apt-get install -y -q redis-server >/dev/null
  fi
  redis-server --bind 127.0.0.1 --port 6379 --save '' --appendonly no --daemonize yes >/dev/null
  for _ in $(seq 1 30); do redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null | grep -q PONG && break; sleep 1; done
fi
if [ ! -x /usr/bin/chromium ]; then
  apt-get install -y -q --no-install-recommends chromium >/dev/null
fi
echo "services: postgres, redis and chromium ready" >&2
