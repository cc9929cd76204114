#!/usr/bin/env bash
# `make clients`: two clients written against the live Disk, rclone
# (Debian's package) and the Python yadisk library, against a fresh
# fake-disk. What the live Disk accepts, the emulator must accept: each
# step prints ok or FAILED, and any FAILED makes this exit 1.
# `make client-deps` installs the clients.
set -uo pipefail
cd "$(dirname "$0")/../.."
missing=()
command -v rclone >/dev/null || missing+=("rclone (apt-get install rclone)")
python3 -c "import yadisk" 2>/dev/null || missing+=("yadisk (pip install yadisk requests)")
command -v openssl >/dev/null || missing+=("openssl (apt-get install openssl)")
if [ ${#missing[@]} -gt 0 ]; then
    echo "make clients: missing ${missing[*]}; make client-deps installs them" >&2
    exit 1
fi
cargo build --locked --quiet --example fake-disk || exit 1
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done; rm -rf "$work"; }
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 50); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done; echo "port $1 never opened" >&2; return 1; }
failed=0

start_disk() { # extra fake-disk options; sets $api
    local up; api=$(free_port); up=$(free_port)
    target/debug/examples/fake-disk --port "$api" --upload-port "$up" --quiet "$@" >"$work/disk-$api.log" 2>&1 &
    pids+=($!)
    wait_port "$api" || exit 1
}

echo "== yadisk $(python3 -c 'import yadisk; print(yadisk.__version__)')"
start_disk
timeout 300 python3 tests/clients/yadisk_check.py "http://127.0.0.1:$api" demo-token || failed=1

# rclone's yandex backend talks to https://cloud-api.yandex.com only: it goes
# through a local TLS front (front.py) with a throwaway certificate. rclone
# 1.60 predates its wait for an upload's operation (R1 in
# real-disk-evidence.md), so a fresh upload's lag is off for it.
echo "== $(rclone version | head -1)"
start_disk --lag-ms-per-mib 0
front=$(free_port)
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$work/key.pem" -out "$work/cert.pem" -days 2 \
    -subj "/CN=cloud-api.yandex.com" -addext "subjectAltName=DNS:cloud-api.yandex.com" 2>/dev/null || exit 1
python3 tests/clients/front.py "$front" "$api" "$work/cert.pem" "$work/key.pem" >"$work/front.log" 2>&1 &
pids+=($!)
wait_port "$front" || exit 1
printf '[fake]\ntype = yandex\ntoken = {"access_token":"demo-token","token_type":"OAuth","refresh_token":"x","expiry":"2099-01-01T00:00:00Z"}\n' >"$work/rclone.conf"
src="$work/src"
mkdir -p "$src/sub/deeper" "$src/Фото"
echo hello >"$src/a.txt"
echo odd >"$src/sub/a+b: 10% #1 & =;.txt"
echo deep >"$src/sub/deeper/x.txt"
echo photo >"$src/Фото/лето.jpg"
head -c 3000000 /dev/urandom >"$src/big.bin"
rc() { HTTPS_PROXY="http://127.0.0.1:$front" timeout 120 rclone --config "$work/rclone.conf" --ca-cert "$work/cert.pem" --low-level-retries 2 --retries 1 "$@"; }
step() { # name command...
    local name=$1; shift
    if out=$("$@" 2>&1); then echo "ok      rclone $name"; else failed=1; echo "FAILED  rclone $name"; echo "$out" | tail -5 | sed 's/^/        /'; fi
}
step "about" rc about fake:
step "mkdir" rc mkdir fake:rclone
step "copy (names with + : % # & = ; and Cyrillic, 3 MB)" rc copy "$src" fake:rclone
step "check (md5 of every file)" rc check "$src" fake:rclone
step "lsjson -R --hash" rc lsjson -R --hash fake:rclone
step "moveto (server-side)" rc moveto fake:rclone/a.txt fake:rclone/moved.txt
step "move a folder (server-side)" rc move fake:rclone/sub fake:rclone/sub2
step "copy back (download)" rc copy fake:rclone "$work/back"
step "what came back is what went" diff <(cd "$src" && md5sum big.bin Фото/лето.jpg) <(cd "$work/back" && md5sum big.bin Фото/лето.jpg)
# One date for both tools: rclone reads the times ysync keeps on the Disk
# (rclone_modified), and ysync's restore puts back the times rclone kept.
ys="$work/ysync"
mkdir -p "$ys/local" "$ys/local2"
echo dated >"$ys/local/dated.txt"
touch -d '2001-02-03 04:05:06.123456789 UTC' "$ys/local/dated.txt"
ysconf() { # local_dir remote_dir file
    printf 'token = demo-token\nlocal_dir = %s\nremote_dir = disk:%s\napi_url = http://127.0.0.1:%s/v1/disk\nstate_file = %s/state-%s/s.json\n' \
        "$1" "$2" "$api" "$ys" "$(basename "$3")" >"$3"
    chmod 600 "$3"
}
ysconf "$ys/local" /ysync "$ys/a.conf"
ysconf "$ys/local2" /rclone "$ys/b.conf"
cargo build --locked --quiet --bin ysync || exit 1
reads_ysyncs_dates() {
    target/debug/ysync -q -c "$ys/a.conf" once || return 1
    TZ=UTC rc lsjson fake:ysync | tee /dev/stderr | grep -q '"ModTime":"2001-02-03T04:05:06.123456789Z"'
}
ysync_restores_rclones_dates() {
    target/debug/ysync -q -c "$ys/b.conf" restore --all --to "$ys/back" || return 1
    [ "$(stat -c %y "$ys/back/sub2/deeper/x.txt")" = "$(stat -c %y "$src/sub/deeper/x.txt")" ] &&
        cmp "$ys/back/big.bin" "$src/big.bin"
}
step "lsjson shows the mtime ysync kept" reads_ysyncs_dates
step "ysync restore --all brings back rclone's files with their mtimes" ysync_restores_rclones_dates
step "delete" rc delete fake:rclone/moved.txt
step "purge" rc purge fake:rclone
step "cleanup (empties the trash)" rc cleanup fake:
if grep -q refused "$work/front.log"; then failed=1; echo "FAILED  rclone asked for another host:"; cat "$work/front.log"; fi

[ "$failed" = 0 ] && echo "make clients: all steps ok" || echo "make clients: some steps FAILED"
exit "$failed"
