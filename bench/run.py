#!/usr/bin/env python3
"""ysync benchmarks: each figure next to the limit it is measured against, in
one run on one machine. Writes the results into BENCHMARKS.md.

    make bench                      # everything (~5 minutes, ~2.5 GB of disk)
    BENCH_FILES=20000 make bench    # a smaller tree for a quick look

The emulator runs in sink mode (upload bodies are hashed and thrown away), so
it is not the bottleneck: its own CPU time is printed beside ysync's, and the
`curl -T` baseline talks to the same emulator.
"""

import json, os, re, shutil, statistics, subprocess, sys, tempfile, time, urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
YSYNC = os.path.join(ROOT, "target/release/ysync")
FAKE = os.path.join(ROOT, "target/release/examples/fake-disk")
FILES = int(os.environ.get("BENCH_FILES", "100000"))
DIRS = max(1, FILES // 100)
RUNS = int(os.environ.get("BENCH_RUNS", "5"))
WORK = os.environ.get("BENCH_DIR", os.path.join(ROOT, "target/bench"))
PORT = 18900 + os.getpid() % 500


def run_timed(cmd, **kw):
    """Runs cmd under /usr/bin/time; returns (wall s, user+sys s, max RSS KiB, stderr)."""
    t0 = time.perf_counter()
    p = subprocess.run(["/usr/bin/time", "-f", "TIME %U %S %M"] + cmd, capture_output=True, text=True, **kw)
    wall = time.perf_counter() - t0
    m = re.search(r"TIME ([\d.]+) ([\d.]+) (\d+)", p.stderr)
    if p.returncode != 0 and "ysync" in cmd[0]:
        sys.exit(f"{cmd} failed ({p.returncode}):\n{p.stderr[-3000:]}")
    return wall, float(m.group(1)) + float(m.group(2)), int(m.group(3)), p.stderr


def counts(reset=False):
    req = urllib.request.Request(f"http://127.0.0.1:{PORT}/_emulator/counts", method="POST" if reset else "GET")
    return json.loads(urllib.request.urlopen(req).read())


def requests(c):
    return sum(v for k, v in c.items() if k != "uploaded_bytes")


def config(name, local, remote, extra=""):
    path = os.path.join(WORK, f"{name}.conf")
    with open(path, "w") as f:
        f.write(f"token = bench\napi_url = http://127.0.0.1:{PORT}/v1/disk\nlocal_dir = {local}\n"
                f"remote_dir = {remote}\nstate_file = {WORK}/{name}.state.json\nmax_delete = 100%\n{extra}")
    os.chmod(path, 0o600)
    return path


def ysync(conf, *args):
    return run_timed([YSYNC, "-c", conf, *args, "once"], env={**os.environ, "RUST_LOG": "ysync=debug"})


def emulator_cpu():
    with open(f"/proc/{emu.pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def make_tree(root):
    for d in range(DIRS):
        sub = os.path.join(root, f"d{d // 100:02}", f"s{d % 100:02}")
        os.makedirs(sub, exist_ok=True)
        for i in range(FILES // DIRS):
            # Mostly photos and documents; one in 50 is an archive, which the
            # throttle workaround sends under a temporary name (+1 request).
            name = f"IMG_{i:04}.jpg" if i % 3 else (f"notes {i}.txt" if i % 50 else f"backup {i}.zip")
            with open(os.path.join(sub, name), "wb") as f:
                f.write(os.urandom(64 + (i * 37) % 900))


def big_file(path, size):
    with open(path, "wb") as f:
        chunk = os.urandom(1 << 20)
        for i in range(size >> 20):
            f.write(chunk[i % 97:] + chunk[:i % 97])


def main():
    global emu
    subprocess.run(["cargo", "build", "--release", "--locked", "-q", "--bin", "ysync", "--example", "fake-disk"], cwd=ROOT, check=True)
    shutil.rmtree(WORK, ignore_errors=True)
    os.makedirs(WORK)
    emu = subprocess.Popen([FAKE, "--port", str(PORT), "--upload-port", str(PORT + 1), "--token", "bench", "--sink", "--quiet"], stdout=subprocess.DEVNULL)
    time.sleep(0.5)
    rows, notes = [], []
    try:
        tree = os.path.join(WORK, "tree")
        print(f"generating {FILES} files in {DIRS} folders ...", flush=True)
        make_tree(tree)
        conf = config("tree", tree, "/bench/tree")

        # Initial cycle.
        counts(reset=True)
        e0 = emulator_cpu()
        wall, cpu, rss, log = ysync(conf)
        c = counts()
        folders = DIRS + DIRS // 100 + 1
        rows.append(("initial cycle, wall / CPU", f"{wall:.1f} s / {cpu:.1f} s (emulator {emulator_cpu() - e0:.1f} s)", "CPU dominated by hashing"))
        throttled = sum(1 for d in range(DIRS) for i in range(FILES // DIRS) if i % 3 == 0 and i % 50 == 0)
        rows.append(("initial cycle, requests", f"{requests(c)} for {FILES} files + {folders} folders ({requests(c) / FILES:.2f} per file; "
                     f"{throttled} archives take one more, the move from their temporary name)",
                     f"≤ 3 per file (link, body, date) + folders = {3 * FILES + folders}"))
        saved = (re.findall(r"state saved: (\d+) files, (\d+) bytes, ([\d.]+) ms", log) or [None])[-1]

        # Idle cycles vs find.
        state_file = f"{WORK}/tree.state.json"
        def stamp():
            return [(os.stat(f).st_mtime_ns, os.stat(f).st_size) if os.path.exists(f) else None for f in (state_file, state_file + ".journal")]
        before = stamp()
        counts(reset=True)
        idle = [ysync(conf) for _ in range(RUNS)]
        finds = [run_timed(["sh", "-c", f"find {tree} -printf '%s %T@\\n' >/dev/null"]) for _ in range(RUNS)]
        iw, fw = statistics.median(r[0] for r in idle), statistics.median(r[0] for r in finds)
        rows.append(("idle cycle vs find", f"{iw * 1000:.0f} ms vs {fw * 1000:.0f} ms = {iw / fw:.2f}×", "≤ 1.5×"))
        rows.append(("idle cycle, requests / state rewritten", f"{requests(counts())} / {'yes' if stamp() != before else 'no'}", "0 / no"))
        rows.append(("peak memory, idle cycle at %d files" % FILES, f"{max(r[2] for r in idle) / 1024:.1f} MiB", "≤ 40 MB"))

        # The state: an idle cycle reads only its seal; a cycle with a change
        # loads it, then journals and seals (the snapshot is rewritten only
        # once the journal has grown).
        def ms(pattern, logs):
            found = [float(m) for log in logs for m in re.findall(pattern, log)[-1:]]
            return statistics.median(found) if found else float("nan")
        seal_ms = ms(r"state seal read and compared in ([\d.]+) ms", [r[3] for r in idle])
        victim = os.path.join(tree, "d00", "s00", "IMG_0001.jpg")
        changed = []
        for i in range(RUNS):
            with open(victim, "ab") as f:
                f.write(b"x")
            changed.append(ysync(conf))
        load_ms = ms(r"state loaded: \d+ files, \d+ journal lines, ([\d.]+) ms", [r[3] for r in changed])
        save_ms = ms(r"state (?:sealed: \d+ journal lines|saved: \d+ files, \d+ bytes), ([\d.]+) ms", [r[3] for r in changed])
        size = os.path.getsize(state_file)
        snapshot_ms = float(saved[2]) if saved else float("nan")
        rows.append(("state file", f"{size / FILES:.0f} bytes per file ({size / 1e6:.1f} MB); a snapshot takes {snapshot_ms:.0f} ms to write, "
                     f"once per {min(10000, 256 + FILES // 4)} journalled changes", "as small as JSON allows"))
        rows.append(("state load + save, idle cycle", f"{seal_ms:.1f} ms = {seal_ms / (iw * 1000) * 100:.0f}% of an idle cycle "
                     "(only the seal is read, and compared with the scan)", "≤ 10% of an idle cycle"))
        rows.append(("state load + save, one file changed", f"load {load_ms:.0f} ms + save {save_ms:.1f} ms "
                     f"= {(load_ms + save_ms) / (iw * 1000) * 100:.0f}% of an idle cycle", "≤ 10% of an idle cycle"))

        # A reconcile: every folder listed and compared with the state.
        rconf = config("tree", tree, "/bench/tree", "reconcile = 1\n")
        time.sleep(1.1)
        counts(reset=True)
        wall, cpu, rss, log = ysync(rconf)
        c = counts()
        listings = c.get("GET /v1/disk/resources", 0)
        rows.append((f"reconcile at {FILES} files (every `reconcile`, 7 days by default)",
                     f"{listings} listing requests of {requests(c)} in all ({folders} folders, 1000 entries a page), "
                     f"{wall:.1f} s wall, {cpu:.1f} s CPU, {rss / 1024:.1f} MiB peak; "
                     f"{'nothing' if c.get('uploaded_bytes', 0) == 0 else 'something'} uploaded",
                     "one request per folder and per 1000 entries; nothing sent"))
        config("tree", tree, "/bench/tree")

        # Upload pipeline: one 1 GB file, and 10 000 files of 100 KiB.
        big = os.path.join(WORK, "big")
        os.makedirs(big)
        big_file(os.path.join(big, "disk.img"), 1 << 30)
        small = os.path.join(WORK, "small")
        for i in range(10000):
            os.makedirs(os.path.join(small, f"{i // 100:03}"), exist_ok=True)
        for i in range(10000):
            with open(os.path.join(small, f"{i // 100:03}", f"{i:05}.bin"), "wb") as f:
                f.write(os.urandom(100 << 10))
        for name, folder in (("one 1 GB file", big), ("10 000 files of 100 KiB", small)):
            files = sorted(os.path.join(dp, f) for dp, _, fs in os.walk(folder) for f in fs)
            e0 = emulator_cpu()
            wall, cpu, rss, _ = ysync(config(name.split()[0], folder, f"/bench/{os.path.basename(folder)}"))
            emu_cpu = emulator_cpu() - e0
            cfg = os.path.join(WORK, "curl.cfg")
            with open(cfg, "w") as f:
                for i, path in enumerate(files):
                    f.write(f'url = "http://127.0.0.1:{PORT + 1}/sink/{i}"\nupload-file = "{path}"\noutput = "/dev/null"\nheader = "Expect:"\n')
            _, sha_cpu, _, _ = run_timed(["sh", "-c", f"cd {folder} && find . -type f -print0 | xargs -0 sha256sum >/dev/null"])
            # What rclone does per upload: one md5 pass, then the body.
            _, md5_cpu, _, _ = run_timed(["sh", "-c", f"cd {folder} && find . -type f -print0 | xargs -0 md5sum >/dev/null"])
            _, curl_cpu, _, _ = run_timed(["curl", "-s", "-K", cfg])
            base, rclone_like = sha_cpu + curl_cpu, md5_cpu + curl_cpu
            rows.append((f"upload CPU, {name}", f"{cpu:.2f} s vs sha256sum + curl -T {base:.2f} s = {cpu / base:.2f}×, vs md5sum + curl -T (rclone's work) {rclone_like:.2f} s = {cpu / rclone_like:.2f}× (wall {wall:.1f} s, emulator {emu_cpu:.1f} s CPU)", "≤ 1.2× / ≤ 1.0× rclone's work"))
            if name.startswith("one"):
                rows.append(("memory while uploading 1 GB", f"{rss / 1024:.1f} MiB", "≤ 16 MB"))
        notes.append("The curl baseline uses one `curl -K` process with keep-alive for all files.")

        # Requests per operation.
        ops = os.path.join(WORK, "ops")
        os.makedirs(os.path.join(ops, "folder"))
        for i in range(20):
            open(os.path.join(ops, "folder", f"{i}.jpg"), "wb").write(os.urandom(1000))
        open(os.path.join(ops, "keep.txt"), "w").write("k")
        conf = config("ops", ops, "/bench/ops")
        ysync(conf)
        steps = [
            ("new", lambda: open(os.path.join(ops, "new.txt"), "w").write("new")),
            ("changed", lambda: open(os.path.join(ops, "new.txt"), "w").write("changed!")),
            ("rename", lambda: os.rename(os.path.join(ops, "new.txt"), os.path.join(ops, "renamed.txt"))),
            ("deleted file", lambda: os.remove(os.path.join(ops, "renamed.txt"))),
            ("folder rename (20 files)", lambda: os.rename(os.path.join(ops, "folder"), os.path.join(ops, "moved"))),
            ("deleted folder (20 files)", lambda: shutil.rmtree(os.path.join(ops, "moved"))),
            ("idle", lambda: None),
        ]
        got = []
        for name, change in steps:
            change()
            counts(reset=True)
            ysync(conf)
            c = counts()
            polls = c.get("GET /v1/disk/operations", 0)
            got.append(f"{name} {requests(c) - polls}" + (f" (+{polls} polls)" if polls else ""))
        rows.append(("requests per operation", ", ".join(got), "new 3 (link, body, date), changed 3, deleted file 2 (a look, then the delete), deleted folder 2 (a listing, then the delete), rename 1, idle 0"))
    finally:
        emu.kill()
    write(rows, notes)


def write(rows, notes):
    table = "| figure | measured | target |\n| --- | --- | --- |\n" + "\n".join(f"| {a} | {b} | {c} |" for a, b, c in rows)
    block = (f"<!-- bench:begin -->\n{table}\n\nMachine: {machine()}. {FILES} files in {DIRS} folders; medians of {RUNS} runs. "
             f"Measured {time.strftime('%Y-%m-%d', time.gmtime())} with `make bench`. " + " ".join(notes) + "\n<!-- bench:end -->")
    print(table)
    put_block("bench", "Speed, memory and requests", block)


def machine():
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "unknown CPU")
    return f"{cpu}, {os.cpu_count()} cores, {os.uname().sysname} {os.uname().release}"


def put_block(tag, heading, block):
    """Replaces BENCHMARKS.md's `<!-- tag:begin -->…<!-- tag:end -->` with
    `block` (which carries those markers), or appends it under `heading`."""
    path = os.path.join(ROOT, "BENCHMARKS.md")
    text = open(path).read()
    if f"<!-- {tag}:begin -->" in text:
        text = re.sub(rf"<!-- {tag}:begin -->.*?<!-- {tag}:end -->", lambda m: block, text, flags=re.S)
    else:
        text += f"\n## {heading}\n\n" + block + "\n"
    open(path, "w").write(text)


if __name__ == "__main__":
    main()
