#!/usr/bin/env bash
# Prints the size of the static binaries against their budgets and records
# them in BENCHMARKS.md (between the size markers). Run via `make size`.
set -euo pipefail
cd "$(dirname "$0")/.."
row() { # target budget-bytes
    local f="target/$1/release/ysync"
    [ -f "$f" ] || { echo "| $1 | not built | $2 | run make static / static-aarch64 / static-armv7 / static-armv6 |"; return; }
    local n; n=$(stat -c %s "$f")
    local ok=yes; [ "$n" -le "$2" ] || ok=NO
    printf '| %s | %d bytes (%.2f MiB, %.2f MB) | %d | %s |\n' "$1" "$n" "$(echo "$n/1048576" | bc -l)" "$(echo "$n/1000000" | bc -l)" "$2" "$ok"
}
table=$(printf '| target | stripped static binary | budget (bytes) | within |\n| --- | --- | --- | --- |\n%s\n%s\n%s\n%s\n' \
    "$(row x86_64-unknown-linux-musl 2097152)" "$(row aarch64-unknown-linux-musl 1800000)" \
    "$(row armv7-unknown-linux-musleabihf 1800000)" "$(row arm-unknown-linux-musleabihf 1800000)")
echo "$table"
stamp="Measured $(date -u +%Y-%m-%d) with $(rustc --version) by \`make size\`."
python3 - "$table" "$stamp" <<'PY'
import sys, re, pathlib
p = pathlib.Path("BENCHMARKS.md")
text = p.read_text() if p.exists() else "# ysync benchmarks\n"
block = "<!-- size:begin -->\n" + sys.argv[1].strip() + "\n\n" + sys.argv[2] + "\n<!-- size:end -->"
if "<!-- size:begin -->" in text:
    text = re.sub(r"<!-- size:begin -->.*?<!-- size:end -->", lambda m: block, text, flags=re.S)
else:
    text += "\n## Binary size\n\n" + block + "\n"
p.write_text(text)
PY
