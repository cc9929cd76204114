//! Runs the Yandex Disk emulator on its own, so anyone can try ysync
//! without an account:
//!
//!     cargo run --example fake-disk -- --port 8765
//!
//! then point a config at it (`api_url = http://127.0.0.1:8765/v1/disk`,
//! `token = demo-token`). `curl http://127.0.0.1:8765/_emulator/tree` shows
//! what is on the fake Disk. Everything lives in memory.
//!
//! `ysync login` works against it too (`oauth_url`, `client_id` and
//! `client_secret` as printed): the pretend user approves the code after
//! the first poll.

// An example uses a part of the emulator; the tests use all of it.
#[allow(dead_code)]
#[path = "../tests/emulator/mod.rs"]
mod emulator;

use std::time::Duration;

const HELP: &str = "usage: fake-disk [--port N] [--upload-port N] [--token T] [--op-delay-ms N] [--finalize-ms-per-mib N] [--lag-ms-per-mib N] [--sink] [--quiet]";

fn main() {
    // Operation links name this emulator, so that other clients (rclone,
    // yadisk) that follow them by hand reach it; tests use the real host.
    let mut opts =
        emulator::Options { token: "demo-token".into(), api_port: 8765, verbose: true, real_op_links: false, ..Default::default() };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = |name: &str| args.next().unwrap_or_else(|| panic!("{name} needs a value\n{HELP}"));
        match a.as_str() {
            "--port" => opts.api_port = value("--port").parse().expect("--port: a number"),
            "--upload-port" => opts.upload_port = value("--upload-port").parse().expect("--upload-port: a number"),
            "--token" => opts.token = value("--token"),
            "--op-delay-ms" => opts.op_delay = Duration::from_millis(value("--op-delay-ms").parse().expect("a number")),
            "--quiet" => opts.verbose = false,
            // The live Disk's pauses (B1, R1 in real-disk-evidence.md); 0 turns one off.
            "--finalize-ms-per-mib" => opts.finalize_ms_per_mib = value("--finalize-ms-per-mib").parse().expect("a number"),
            "--lag-ms-per-mib" => opts.lag_ms_per_mib = value("--lag-ms-per-mib").parse().expect("a number"),
            // Benchmarks: upload bodies are read and thrown away.
            "--sink" => opts.sink = true,
            _ => {
                eprintln!("{HELP}");
                std::process::exit(if a == "-h" || a == "--help" { 0 } else { 2 })
            }
        }
    }
    if !opts.sink {
        // A free account's 10 GB, so that `ysync check` shows something
        // real; the benchmarks' sink mode keeps it unlimited (cheaper).
        opts.total_space = 10 << 30;
    }
    let disk = emulator::FakeDisk::with(opts);
    println!("fake Yandex Disk listening; use in ysync.conf:\n");
    println!("  api_url = {}\n  token = {}\n", disk.api_url(), disk.token());
    println!("or, to try `ysync login` (the code is approved by itself), instead of token:\n");
    println!(
        "  oauth_url = {}\n  client_id = test-client\n  client_secret = test-secret\n  token_file = /tmp/ysync-demo-token\n",
        disk.oauth_url()
    );
    println!("tree: curl {}", disk.api_url().replace("/v1/disk", "/_emulator/tree"));
    println!("Ctrl-C stops it (everything is kept in memory only).\n");
    loop {
        std::thread::park();
    }
}
