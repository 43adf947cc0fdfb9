#!/usr/bin/env bash
# Build the Space image from the real Dockerfile with buildah, as root; `--smoke` then starts the image's own
# command as uid 1000 on port 8501 (buildah's chroot isolation), waits for /_stcore/health, uploads one radiograph
# in Chromium and waits for its score. Prints image size, build time, time to healthy and time to first score; the
# last line is the risk band of the scored film. Cleans up every container, process and mount it started.
#
#   bash scripts/space_image.sh [--smoke] [--no-build]
#
# --no-build smoke-tests the image already built. The base stays python:3.11-slim (the Dockerfile's ARG BASE);
# where it cannot be pulled, a stand-in with the same layout is made from Debian packages (debootstrap: Debian
# bookworm's Python 3.11 in a venv on PATH, with pip). The PyTorch CPU wheel index is used when reachable, else
# PyPI alone. Settings (environment): MEDSIGHT_SPACE_IMAGE (tag, default localhost/medsight-space:latest),
# MEDSIGHT_DEBIAN_MIRROR, MEDSIGHT_REBUILD_BASE=1, MEDSIGHT_PIP_INDEX_URL, MEDSIGHT_PIP_EXTRA_INDEX_URL,
# MEDSIGHT_SMOKE_IMAGE (the film; default the first normal dev radiograph in ../shared/data/cxr).
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$(pwd)

SMOKE=0 BUILD=1
for arg in "$@"; do
  case "$arg" in
    --smoke) SMOKE=1 ;;
    --no-build) BUILD=0 ;;
    -h|--help) sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "unknown option $arg (use --smoke, --no-build)" >&2; exit 2 ;;
  esac
done
[ "$(id -u)" = 0 ] || { echo "space_image.sh builds with buildah as root; run it as root (sudo)." >&2; exit 1; }

IMAGE=${MEDSIGHT_SPACE_IMAGE:-localhost/medsight-space:latest}
SPACE_BASE=docker.io/library/python:3.11-slim
STANDIN=localhost/medsight-base:py3.11-bookworm
CPU_INDEX=https://download.pytorch.org/whl/cpu
PORT=8501
WORK=$(mktemp -d /var/tmp/medsight-space.XXXXXX)
CTR="" RUN_PID="" ROOTFS="" CUDA_B="" TORCH_B="" STEPS=""

log() { printf '[space_image] %s\n' "$*" >&2; }
now() { date +%s.%N; }
secs() { python3 -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.1f}')" "$1" "$2"; }

# ---------------------------------------------------------------------------------------------- clean-up on exit
descendants() {  # every process below pid $1 (read from /proc, before anything is killed)
  python3 - "$1" <<'EOF'
import os, sys
children = {}
for pid in filter(str.isdigit, os.listdir("/proc")):
    try:
        ppid = int(open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        continue
    children.setdefault(ppid, []).append(int(pid))
todo, seen = [int(sys.argv[1])], []
while todo:
    for child in children.get(todo.pop(), []):
        seen.append(child); todo.append(child)
print(" ".join(map(str, seen)))
EOF
}

stop_app() {
  [ -n "$RUN_PID" ] || return 0
  local pids; pids="$RUN_PID $(descendants "$RUN_PID")"
  kill -TERM -- "-$RUN_PID" 2>/dev/null || true
  kill -TERM $pids 2>/dev/null || true
  for _ in $(seq 30); do
    local alive=0
    for p in $pids; do kill -0 "$p" 2>/dev/null && alive=1; done
    [ $alive = 0 ] && break
    sleep 0.5
  done
  for p in $pids; do kill -KILL "$p" 2>/dev/null || true; done
  wait "$RUN_PID" 2>/dev/null || true
  RUN_PID=""
}

cleanup() {
  local rc=$?
  stop_app
  if [ -n "$CTR" ]; then
    buildah umount "$CTR" >/dev/null 2>&1 || true
    buildah rm "$CTR" >/dev/null 2>&1 || log "could not remove container $CTR (remove it with: buildah rm $CTR)"
  fi
  if [ -d "$WORK/rootfs" ]; then  # a stand-in base rootfs left by an interrupted debootstrap
    for m in proc sys dev/pts dev; do umount "$WORK/rootfs/$m" 2>/dev/null || true; done
  fi
  rm -rf "$WORK"
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------------------------------------- tools
need=()
command -v buildah >/dev/null || need+=(buildah)
command -v podman >/dev/null || need+=(podman)
command -v debootstrap >/dev/null || need+=(debootstrap)
command -v curl >/dev/null || need+=(curl)
[ $SMOKE = 1 ] && [ ! -x /usr/bin/chromium ] && need+=(chromium)
if [ ${#need[@]} -gt 0 ]; then
  log "installing Debian packages: ${need[*]}"
  apt-get -o DPkg::Lock::Timeout=600 update -qq
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends \
    "${need[@]}" ca-certificates >/dev/null
fi

debian_mirror() {  # the Debian mirror apt uses on this machine
  local m
  m=$(grep -hs '^URIs:' /etc/apt/sources.list.d/*.sources | awk '{print $2}' | grep -v -- '-security' | head -1 || true)
  [ -n "$m" ] || m=$(grep -hsE '^deb ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list | awk '{print $2}' \
                     | grep -v -- '-security' | head -1 || true)
  echo "${m:-http://deb.debian.org/debian}"
}

# ---------------------------------------------------------------------------------------------- base image
make_standin() {
  # python:3.11-slim's layout: Python 3.11 with pip, `python` and `pip` on PATH, a writable site-packages, apt
  # for the Dockerfile's own packages (the OpenCV libraries); plus the CA certificates this machine trusts
  # (a TLS-inspecting proxy), so pip in the build reaches PyPI the way pip on this machine does.
  local mirror rootfs=$WORK/rootfs
  mirror=${MEDSIGHT_DEBIAN_MIRROR:-$(debian_mirror)}
  log "making the stand-in base $STANDIN from Debian bookworm ($mirror)"
  debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates bookworm "$rootfs" "$mirror" \
    >"$WORK/debootstrap.log" 2>&1 || { tail -20 "$WORK/debootstrap.log" >&2; return 1; }
  if compgen -G "/usr/local/share/ca-certificates/*.crt" >/dev/null; then
    cp /usr/local/share/ca-certificates/*.crt "$rootfs/usr/local/share/ca-certificates/"
    chroot "$rootfs" update-ca-certificates >/dev/null 2>&1
  fi
  chroot "$rootfs" /usr/bin/python3 -m venv /usr/local/python
  rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
  tar -C "$rootfs" -c . | podman import \
    --change 'ENV PATH=/usr/local/python/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV LANG=C.UTF-8' --change 'ENV PIP_CERT=/etc/ssl/certs/ca-certificates.crt' \
    --change 'CMD ["python3"]' - "$STANDIN" >/dev/null
  rm -rf "$rootfs"
}

image_id() { buildah images --noheading --format '{{.ID}}' "$1" 2>/dev/null | head -1 || true; }

BUILD_S="" BASE_S="" BASE_NOTE="" INDEX_NOTE=""
if [ $BUILD = 1 ]; then
  t_base=$(now)
  if [ -n "$(image_id "$SPACE_BASE")" ] || timeout 120 buildah pull -q "$SPACE_BASE" >/dev/null 2>&1; then
    BASE=$SPACE_BASE BASE_NOTE="the Space's base"
  else
    BASE=$STANDIN BASE_NOTE="stand-in: $SPACE_BASE could not be pulled"
    if [ -n "${MEDSIGHT_REBUILD_BASE:-}" ] && [ -n "$(image_id "$STANDIN")" ]; then buildah rmi "$STANDIN" >/dev/null; fi
    if [ -z "$(image_id "$STANDIN")" ]; then make_standin; else BASE_NOTE="$BASE_NOTE; made earlier"; fi
  fi
  BASE_S=$(secs "$t_base" "$(now)")

  INDEX=${MEDSIGHT_PIP_INDEX_URL:-https://pypi.org/simple}
  if [ -n "${MEDSIGHT_PIP_EXTRA_INDEX_URL+set}" ]; then
    EXTRA=$MEDSIGHT_PIP_EXTRA_INDEX_URL INDEX_NOTE="as set"
  elif curl -fsS -o /dev/null --max-time 20 "$CPU_INDEX/torch/" 2>/dev/null; then
    EXTRA=$CPU_INDEX INDEX_NOTE="CPU wheels of PyTorch"
  else
    EXTRA="" INDEX_NOTE="PyPI alone: $CPU_INDEX unreachable, so torch is PyPI's CUDA build"
  fi

  old_id=$(image_id "$IMAGE")
  log "building $IMAGE from Dockerfile on $BASE (pip: $INDEX${EXTRA:+ + $EXTRA})"
  t_build=$(now)
  buildah bud --isolation chroot --format docker --pull=false \
    --build-arg "BASE=$BASE" --build-arg "PIP_INDEX_URL=$INDEX" --build-arg "PIP_EXTRA_INDEX_URL=$EXTRA" \
    -f Dockerfile -t "$IMAGE" . 2>&1 | while IFS= read -r line; do  # the log, and when each step began
      printf '%s\n' "$line" >&2
      case "$line" in "STEP "*|"COMMIT "*) printf '%s\t%s\n' "$EPOCHREALTIME" "${line:0:90}" >>"$WORK/steps" ;; esac
    done
  t_end=$(now)
  BUILD_S=$(secs "$t_build" "$t_end")
  printf '%s\tend\n' "$t_end" >>"$WORK/steps"
  STEPS=$(python3 - "$WORK/steps" <<'EOF_PY'
import sys
rows = [line.rstrip("\n").split("\t", 1) for line in open(sys.argv[1])]
slow = [(float(b[0]) - float(a[0]), a[1]) for a, b in zip(rows, rows[1:]) if float(b[0]) - float(a[0]) >= 20]
print("; ".join(f"{t:.0f} s {name.split(':', 1)[0].lower() if name.startswith('STEP') else 'commit'}"
                f"{(' ' + name.split(':', 1)[1].strip()[:40]) if name.startswith('STEP') else ''}" for t, name in slow))
EOF_PY
)
  new_id=$(image_id "$IMAGE")
  if [ -n "$old_id" ] && [ "$old_id" != "$new_id" ]; then buildah rmi "$old_id" >/dev/null 2>&1 || true; fi
fi
[ -n "$(image_id "$IMAGE")" ] || { echo "no image $IMAGE: build it first (without --no-build)" >&2; exit 1; }

SIZE_B=$(podman image inspect --format '{{.Size}}' "$IMAGE")
gb() { python3 -c "import sys; print(f'{int(sys.argv[1]) / 1e9:.2f} GB')" "$1"; }
image_config() {  # one field of the image's Docker config, as JSON
  buildah inspect --type image "$IMAGE" \
    | python3 -c 'import json, sys; print(json.dumps(json.load(sys.stdin)["Docker"]["config"].get(sys.argv[1])))' "$1"
}
USER_CFG=$(image_config User | python3 -c 'import json, sys; print(json.load(sys.stdin) or "root")')

report() {
  echo "image              $IMAGE ($(image_id "$IMAGE"))"
  local parts=""
  [ -z "$CUDA_B" ] || parts="; of which CUDA libraries (nvidia, triton) $(gb "$CUDA_B"), torch $(gb "$TORCH_B")"
  echo "image size         $(gb "$SIZE_B") ($SIZE_B bytes, uncompressed$parts)"
  if [ -n "$BUILD_S" ]; then
    echo "base               $BASE ($BASE_NOTE; ${BASE_S} s)"
    echo "package indexes    $INDEX${EXTRA:+ + $EXTRA} ($INDEX_NOTE)"
    echo "build time         $BUILD_S s (buildah bud of the Dockerfile; steps of 20 s or more: $STEPS)"
  fi
  echo "image user         $USER_CFG"
}

if [ $SMOKE = 0 ]; then report; exit 0; fi

# ---------------------------------------------------------------------------------------------- smoke test
SMOKE_PY=.venv/bin/python
if ! { [ -x "$SMOKE_PY" ] && "$SMOKE_PY" -c "import playwright" 2>/dev/null; }; then
  SMOKE_PY=.cache/space_smoke_venv/bin/python
  if ! { [ -x "$SMOKE_PY" ] && "$SMOKE_PY" -c "import playwright" 2>/dev/null; }; then
    log "making a small venv with Playwright for the browser (.cache/space_smoke_venv; no browser download)"
    python3 -m venv .cache/space_smoke_venv
    .cache/space_smoke_venv/bin/pip install -q "playwright>=1.45"
  fi
fi
FILM=$("$SMOKE_PY" scripts/space_smoke.py --print-film ${MEDSIGHT_SMOKE_IMAGE:+--film "$MEDSIGHT_SMOKE_IMAGE"})

CTR=$(buildah from --pull-never --name "medsight-space-smoke-$$" "$IMAGE")
ROOTFS=$(buildah mount "$CTR")
CUDA_B=$(du -scb "$ROOTFS"/usr/local/python/lib/python3*/site-packages/{nvidia,triton} \
               "$ROOTFS"/usr/local/lib/python3*/site-packages/{nvidia,triton} 2>/dev/null | tail -1 | cut -f1 || true)
TORCH_B=$(du -scb "$ROOTFS"/usr/local/python/lib/python3*/site-packages/torch \
                "$ROOTFS"/usr/local/lib/python3*/site-packages/torch 2>/dev/null | tail -1 | cut -f1 || true)
[ "${CUDA_B:-0}" != 0 ] || CUDA_B=""
APP_UID=$(awk -F: -v u="${USER_CFG%%:*}" '$1 == u || $3 == u {print $3}' "$ROOTFS/etc/passwd")
[ "$APP_UID" = 1000 ] || { echo "the image's user ($USER_CFG) is uid ${APP_UID:-unknown}, not 1000" >&2; exit 1; }

mapfile -t CMD < <(image_config Cmd | python3 -c 'import json, sys; print("\n".join(json.load(sys.stdin) or []))')
[ ${#CMD[@]} -gt 0 ] && [ -n "${CMD[0]}" ] || { echo "the image $IMAGE has no CMD" >&2; exit 1; }
if ! python3 -c "import socket, sys; s = socket.socket(); s.bind(('0.0.0.0', int(sys.argv[1])))" $PORT 2>/dev/null; then
  echo "port $PORT is taken on this machine; stop what listens there and run again" >&2
  exit 1
fi

log "starting the image's command as uid 1000: ${CMD[*]}"
T0=$(now)
setsid buildah run --isolation chroot --user 1000:1000 "$CTR" -- "${CMD[@]}" >"$WORK/app.log" 2>&1 &
RUN_PID=$!
set +e
"$SMOKE_PY" scripts/space_smoke.py --url "http://127.0.0.1:$PORT" --film "$FILM" --t0 "$T0" \
  --app-pid "$RUN_PID" --app-log "$WORK/app.log" --result "$WORK/result.json"
SMOKE_RC=$?
set -e
stop_app
if [ $SMOKE_RC != 0 ]; then
  echo "--- app log (last 40 lines) ---" >&2; tail -40 "$WORK/app.log" >&2
  exit $SMOKE_RC
fi
report
"$SMOKE_PY" - "$WORK/result.json" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))
print(f"app process        uid {r['app_uid']} ({r['app_cmd']})")
print(f"time to healthy    {r['healthy_s']:.1f} s (start of the image's command to /_stcore/health ok)")
print(f"first page usable  {r['first_page_s']:.1f} s from start (the upload widget in Chromium)")
print(f"time to first score {r['start_to_score_s']:.1f} s from start "
      f"({r['upload_to_score_s']:.1f} s from the upload to the risk band on screen)")
print(f"app log            {r['log_lines']} lines, {r['tracebacks']} tracebacks")
print(f"risk band of the scored film: {r['risk_band']} ({r['film']})")
EOF
