#!/usr/bin/env python3
"""ysync at scale (issue 15): peak RSS and wall of each kind of cycle at
several tree sizes, beside a `find` stat walk of the same tree.

    make bench-scale                          # 10 000 and 100 000 files
    SCALE_FILES=10000,100000,1000000 make bench-scale
    SCALE_WIDE=1 make bench-scale             # also one folder of 100 000 files

Each size gets a fresh tree of tiny files in folders of 100 and a fresh
emulator in sink mode. The kinds of cycle: the initial upload, idle, one
changed file, a folder renamed, 10 000 changed files, a deleted folder of
10 000 files, a lost state (adoption). Prints a Markdown table; with
SCALE_WRITE=1 it also replaces the scale block of BENCHMARKS.md.
"""

import os, shutil, statistics, subprocess, sys, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run as b  # noqa: E402  (the shared helpers of bench/run.py)

SIZES = [int(s) for s in os.environ.get("SCALE_FILES", "10000,100000").split(",")]
WIDE = os.environ.get("SCALE_WIDE") == "1"
KINDS = ["initial", "idle", "one changed", "folder renamed", "10 000 changed", "folder of 10 000 deleted", "lost state"]


def tree(root, files, per_folder):
    """`files` tiny files, `per_folder` to a folder, 100 folders to a parent."""
    dirs = max(1, files // per_folder)
    for d in range(dirs):
        sub = os.path.join(root, f"p{d // 100:04}", f"f{d % 100:02}")
        os.makedirs(sub, exist_ok=True)
        for i in range(per_folder):
            with open(os.path.join(sub, f"file {i:06}.txt"), "wb") as f:
                f.write(b"x" * (16 + i % 64))


def touch_many(root, n):
    """Changes the content of the first n files (same size, new mtime)."""
    done = 0
    for dirpath, _, names in sorted(os.walk(root)):
        for name in sorted(names):
            if done == n:
                return
            p = os.path.join(dirpath, name)
            size = os.path.getsize(p)
            with open(p, "wb") as f:
                f.write(b"y" * size)
            done += 1


def one_size(files, per_folder, label):
    work = os.path.join(b.WORK, f"scale-{label}")
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    b.WORK = work
    root = os.path.join(work, "tree")
    print(f"{label}: generating {files} files, {per_folder} to a folder ...", flush=True)
    tree(root, files, per_folder)
    conf = b.config("scale", root, "/scale")
    row = {}

    def cycle(kind):
        wall, cpu, rss, log = b.ysync(conf)
        row[kind] = (rss / 1024, wall)
        print(f"  {kind}: {rss / 1024:.1f} MiB, {wall:.2f} s", flush=True)

    cycle("initial")
    idle = [b.ysync(conf) for _ in range(3)]
    row["idle"] = (max(r[2] for r in idle) / 1024, statistics.median(r[0] for r in idle))
    finds = [b.run_timed(["sh", "-c", f"find {root} -printf '%s %T@ %i\\n' >/dev/null"]) for _ in range(3)]
    row["find"] = (max(r[2] for r in finds) / 1024, statistics.median(r[0] for r in finds))
    touch_many(root, 1)
    cycle("one changed")
    os.rename(os.path.join(root, "p0000", "f00"), os.path.join(root, "p0000", "renamed"))
    cycle("folder renamed")
    touch_many(root, min(10_000, files))
    cycle("10 000 changed")
    if per_folder <= 100 and files > 10_000:
        shutil.rmtree(os.path.join(root, "p0000"))  # 100 folders of 100
        cycle("folder of 10 000 deleted")
    else:
        row["folder of 10 000 deleted"] = None
    for f in os.listdir(work):
        if f.startswith("scale.state"):
            os.remove(os.path.join(work, f))
    cycle("lost state")
    shutil.rmtree(root)
    return row


def main():
    subprocess.run(["cargo", "build", "--release", "--locked", "-q", "--bin", "ysync", "--example", "fake-disk"], cwd=b.ROOT, check=True)
    base = b.WORK
    rows = []
    plans = [(n, 100, f"{n}") for n in SIZES] + ([(100_000, 100_000, "wide")] if WIDE else [])
    for files, per_folder, label in plans:
        b.emu = subprocess.Popen([b.FAKE, "--port", str(b.PORT), "--upload-port", str(b.PORT + 1), "--token", "bench", "--sink", "--quiet"],
                                 stdout=subprocess.DEVNULL)
        time.sleep(0.5)
        try:
            rows.append((files, per_folder, one_size(files, per_folder, label)))
        finally:
            b.emu.kill()
            b.emu.wait()
            b.WORK = base
    head = "| files (per folder) | `find` | " + " | ".join(KINDS) + " |\n| --- | --- |" + " --- |" * len(KINDS)
    def cell(v):
        return "—" if v is None else f"{v[0]:.1f} MiB / {v[1]:.2f} s"
    lines = [f"| {f:,} ({p:,}) | {cell(r['find'])} | " + " | ".join(cell(r[k]) for k in KINDS) + " |" for f, p, r in rows]
    table = head + "\n" + "\n".join(lines).replace(",", " ")
    print(table)
    if os.environ.get("SCALE_WRITE") == "1":
        block = (f"<!-- scale:begin -->\n{table}\n\nPeak RSS / wall of each cycle. Machine: {b.machine()}. "
                 f"Measured {time.strftime('%Y-%m-%d', time.gmtime())} with `SCALE_FILES={','.join(map(str, SIZES))} make bench-scale`.\n<!-- scale:end -->")
        b.put_block("scale", "Memory at scale (issue 15)", block)


if __name__ == "__main__":
    main()
