//! Crash safety and flaky networks, randomized but replayable: each test
//! prints its seed (`YSYNC_TEST_SEED=… cargo test --test it chaos::` replays it).

use std::process::Stdio;
use std::thread::sleep;
use std::time::Duration;

use crate::emulator::{FakeDisk, Options};
use crate::support::{Fixture, Rng, assert_state_matches_remote, bytes, mutate, stderr};

/// SIGKILL at random moments of `ysync run` against a slowed Disk (between
/// requests, mid-upload, mid-save), with the tree edited between kills; one
/// clean `once` must then converge to an exact mirror.
#[test]
fn sigkill_at_random_moments_never_breaks_the_mirror() {
    const KILLS: usize = 32;
    let mut rng = Rng::from_env();
    // Links live 30 minutes, as on the real Disk: a kill between asking
    // for a link and using it must not block that file.
    let slow =
        Options { latency: Duration::from_millis(5), upload_rate: 3 << 20, op_delay: Duration::from_millis(100), ..Options::default() };
    let fx = Fixture::with(FakeDisk::with(slow), "/Backup", "interval = 1\nmax_delete = 100%");
    fx.write("anchor.txt", "never deleted, so local_dir is never empty");
    for i in 0..12 {
        mutate(&fx, &mut rng, i);
    }
    let mut killed_busy = 0;
    for step in 0..KILLS {
        for _ in 0..=rng.below(3) {
            mutate(&fx, &mut rng, 100 + step);
        }
        // YSYNC_TEST_LOGS=DIR keeps each killed run's log there, for a failing seed.
        let logs = std::env::var_os("YSYNC_TEST_LOGS").map_or_else(|| fx.tmp.path().to_path_buf(), std::path::PathBuf::from);
        let log = std::fs::File::create(logs.join(format!("run-{step:02}.log"))).unwrap();
        let mut child = fx.command(&["-v", "run"]).stdout(Stdio::null()).stderr(log).spawn().unwrap();
        sleep(Duration::from_millis(rng.below(700)));
        let before = fx.emu.total_requests();
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        killed_busy += usize::from(before > 0);
        fx.emu.reset_counts();
    }
    let out = fx.ysync(&["-v", "once"]);
    println!("the converging run:\n{}", stderr(&out));
    assert_eq!(out.status.code(), Some(0), "after {KILLS} kills");
    fx.assert_mirror();
    assert_state_matches_remote(&fx);
    fx.emu.reset_counts();
    fx.sync();
    assert_eq!(fx.emu.total_requests(), 0, "converged: the next cycle is idle");
    println!("{KILLS} kill points, {killed_busy} while ysync was talking to the Disk");
}

/// Three in ten requests fail (5xx, 429, resets before and after the
/// work, slow answers); ysync converges within a few cycles every time.
#[test]
fn thirty_percent_of_requests_failing_still_converges() {
    let mut rng = Rng::from_env();
    let flaky = Options { fault_rate: 0.3, seed: rng.next(), op_delay: Duration::from_millis(50), ..Options::default() };
    let fx = Fixture::with(FakeDisk::with(flaky), "/Backup", "max_delete = 100%");
    fx.write("anchor.txt", "a");
    for i in 0..30 {
        fx.write(&format!("d{}/f{i}.bin", i % 4), bytes(rng.below(50_000) as usize, rng.next()));
    }
    let mut cycles = Vec::new();
    for round in 0..3 {
        if round > 0 {
            for step in 0..8 {
                mutate(&fx, &mut rng, round * 100 + step);
            }
        }
        let mut n = 0;
        loop {
            n += 1;
            let out = fx.ysync(&["once"]);
            match out.status.code() {
                Some(0) => break,
                Some(1) if n < 6 => {}
                other => panic!("round {round}, cycle {n}: exit {other:?}\n{}", stderr(&out)),
            }
        }
        cycles.push(n);
    }
    let (faults, requests) = (fx.emu.faults_injected(), fx.emu.total_requests());
    println!("cycles to converge per round: {cycles:?}; {faults} of {requests} requests failed");
    // Each request fails with probability 0.3: the count is binomial, and
    // four standard deviations below its mean is what "really about 30%"
    // can promise (a fixed 20% floor failed one run in a few hundred when a
    // run happened to make few requests).
    let n = requests as f64;
    let floor = 0.3 * n - 4.0 * (0.21 * n).sqrt();
    assert!(faults as f64 >= floor, "only {faults} of {requests} requests failed: the fault rate was not 30%");
    fx.emu.set_fault_rate(0.0);
    fx.assert_mirror();
    assert_state_matches_remote(&fx);
}
