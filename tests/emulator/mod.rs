//! A Yandex Disk emulator: real HTTP on 127.0.0.1, the REST endpoints ysync
//! uses, with the status codes, error bodies and quirks of
//! `../shared/yandex-disk-api.md` (beside the repository), corrected by
//! `../shared/real-disk-evidence.md` where the two disagree:
//!
//! - the query is decoded form-style (`+` is a space), so a client that does
//!   not escape `+` stores the wrong name, as on the real Disk;
//! - a name with `:` needs the explicit `disk:/` prefix (else 400);
//! - upload links live on a second port and are single-use; a request
//!   there that carries the token is taken, as the live Disk takes rclone's,
//!   and counted (`token_leaks`), so tests can assert ysync never sends it;
//! - upload bodies come with `Content-Length` or chunked (as rclone's);
//!   a refused request's body is read, so the connection goes on serving,
//!   except after a 413 or 507 sent before the body (then it is closed);
//! - the endpoints other clients use (PATCH custom_properties, download,
//!   copy, publish, the flat file list, last-uploaded, the trash) work
//!   (`more.rs`), so rclone and yadisk can be pointed at it;
//! - deleting or moving a non-empty folder answers 202 and an operation that
//!   locks its paths (423 for anyone touching them) until it completes;
//! - a 429 carries no `Retry-After` unless a test asks for one (R6), and
//!   `Options::rate_limit` gives a request budget with a penalty;
//! - trash entries get `_<40 hex>` appended; listings page with `limit`
//!   (default 20) and `offset`; `fields` trims answers; 204s have empty bodies.
//!
//! Tests read the tree, the trash and per-endpoint counters directly, and
//! inject faults (error statuses, connection resets, delays, 202 answers).
//! The same port serves Yandex OAuth's device flow (`oauth.rs`) for
//! `ysync login`, with a scripted user.

pub mod http;
mod more;
pub mod oauth;

use std::collections::{BTreeMap, HashMap};
use std::io::{BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use http::{Head, Reply};

/// What a test can ask the emulator to do to matching requests.
#[derive(Debug, Clone)]
pub enum FaultKind {
    /// Answer with this status and `error` name (a JSON error body).
    Status(u16, &'static str),
    /// Close the connection without answering; for an upload PUT, after
    /// half of the body arrived.
    Reset,
    /// Do the work, then close the connection without answering (the
    /// "failed at the end although the file landed" case).
    ResetAfter,
    /// Wait this long, then answer normally.
    Delay(Duration),
    /// Upload PUT only: answer 202 and place the file when the operation ends.
    Accepted,
    /// Upload PUT only: read half of the body, then stop reading (a peer
    /// that hangs) for this long, then close the connection.
    Stall(Duration),
    /// The request works, but the server operation it starts (202) is
    /// forgotten at once: it has no effect, and polling it answers 404
    /// `DiskOperationNotFoundError` (the recorded answer for an unknown id).
    Vanish,
    /// A download only: the bytes arrive with one of them changed (a
    /// broken proxy or disk); the size is right, the sha256 is not.
    Corrupt,
    /// SIGKILL the client (tests' crash points): before the request is
    /// worked on, or after the work, instead of the answer.
    Kill { after: bool },
}

/// A crash point: the client dies at its `request`-th request (counting
/// from 1 over both ports), before or after the Disk did the work.
#[derive(Debug, Clone, Copy)]
pub struct KillAt {
    pub request: u64,
    pub after: bool,
}

#[derive(Debug, Clone)]
pub struct Fault {
    /// A counter key such as `PUT upload` or `GET /v1/disk/resources/upload`; `*` for all.
    pub endpoint: String,
    /// Only requests whose decoded `path` contains this (empty: any).
    pub path_contains: String,
    pub kind: FaultKind,
    /// How many requests it hits.
    pub times: u32,
}

impl Fault {
    pub fn new(endpoint: &str, kind: FaultKind, times: u32) -> Fault {
        Fault { endpoint: endpoint.into(), path_contains: String::new(), kind, times }
    }
}

#[derive(Debug, Clone)]
pub struct Options {
    pub token: String,
    /// 0 picks a free port.
    pub api_port: u16,
    pub upload_port: u16,
    /// How long an asynchronous operation (202) takes.
    pub op_delay: Duration,
    pub total_space: u64,
    pub max_file_size: u64,
    /// Print one line per request on stdout (for the standalone emulator).
    pub verbose: bool,
    /// Added to every request.
    pub latency: Duration,
    /// Upload PUT bodies are read at this many bytes/s (0: no limit).
    pub upload_rate: u64,
    /// Share of requests (0.0–1.0) that get a random fault: 5xx, 429,
    /// a reset before or after the work, or a slow answer.
    pub fault_rate: f64,
    pub seed: u64,
    /// An upload link not used within this time dies, and its operation
    /// fails (the real Disk: 30 minutes).
    pub link_ttl: Duration,
    /// Uploads to throttled media types (decided from the name when the
    /// link is asked for) go at most this many bytes/s (the real Disk: ~128 KiB/s).
    pub throttle_rate: u64,
    /// Benchmarks: upload bodies are hashed and thrown away (files are
    /// stored empty but report the size and hashes that were sent), so the
    /// emulator's memory is never the bottleneck.
    pub sink: bool,
    /// The OAuth app and the scripted user of `ysync login`.
    pub oauth: oauth::Script,
    /// DELETE ignores `md5=`, as the live Disk may (R2: the guard is in the
    /// Russian docs only, and no recording shows a refusal).
    pub ignore_md5: bool,
    /// The uploader's pause after a body before it answers, per MiB (B1 in
    /// real-disk-evidence.md: rclone's docs say about 2 minutes per GiB,
    /// 117 ms per MiB, the default; ydcmd timed out on 2.97 GB files that
    /// landed). Sink mode has none (benchmarks measure ysync).
    pub finalize_ms_per_mib: u64,
    /// For this long per MiB after an upload's answer the Disk does not
    /// show the file: its metadata and moves answer 404, listings leave it
    /// out, deletes answer 423 (R1: right after a 201 metadata calls answered
    /// 500, a fresh 50 GB file 404; rclone waits for the operation since).
    /// The default, 20 ms per MiB, is a guess that grows with the size as
    /// the evidence does; small files are shown at once.
    pub lag_ms_per_mib: u64,
    /// Operation links (202 answers) name the real API host, as recorded
    /// (`https://cloud-api.yandex.net/v1/disk/operations/<id>`, every other
    /// one `http://`, which the Disk also sends: yadisk's changelog 1.2.15);
    /// `false`: this emulator's own address, for clients that follow links.
    pub real_op_links: bool,
    /// API requests allowed per second (a bucket that holds one second's
    /// worth; 0: no limit). No quota is published (R6 in
    /// real-disk-evidence.md); rclone paces every call (10 ms … 2 s).
    pub rate_limit: u32,
    /// Once the bucket runs dry, every API request is refused for this long
    /// (the harsher plausible limit: a penalty, not just a refill).
    pub rate_penalty: Duration,
    /// The `Retry-After` of a 429, if any. `None`, the default: no source
    /// shows cloud-api sending one (R6).
    pub retry_after: Option<u64>,
    /// Download bodies go at most this many bytes/s (0: no limit): a slow
    /// home line, over which restoring a large version takes minutes.
    pub download_rate: u64,
    /// Custom properties do not survive a move or a copy (the harsher
    /// reading of evidence that does not say; `false`, the default, keeps
    /// them, see `times`).
    pub props_lost_on_move: bool,
    /// A download link first answers 302 with a relative `Location` (a
    /// path on the same host). The API notes say "302 redirects are
    /// possible, follow them" (3.11) without showing one; relative is the
    /// harsher of the forms RFC 9110 allows.
    pub download_redirect: bool,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            token: "test-token".into(),
            api_port: 0,
            upload_port: 0,
            op_delay: Duration::from_millis(150),
            // Unlimited unless a test sets a size (then quota checks cost O(files)).
            total_space: u64::MAX,
            max_file_size: 1 << 30,
            verbose: false,
            latency: Duration::ZERO,
            upload_rate: 0,
            fault_rate: 0.0,
            seed: 1,
            link_ttl: Duration::from_secs(1800),
            throttle_rate: 128 << 10,
            sink: false,
            oauth: oauth::Script::default(),
            real_op_links: true,
            ignore_md5: false,
            finalize_ms_per_mib: 117,
            lag_ms_per_mib: 20,
            rate_limit: 0,
            rate_penalty: Duration::ZERO,
            retry_after: None,
            download_rate: 0,
            download_redirect: false,
            props_lost_on_move: false,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    Dir,
    File(Arc<Vec<u8>>),
}

#[derive(Debug, Clone)]
pub struct TrashEntry {
    /// `trash:/name_<40 hex>`
    pub path: String,
    pub origin_path: String,
    /// The removed nodes, keyed by their original absolute paths.
    pub nodes: BTreeMap<String, Node>,
}

enum Effect {
    Delete {
        path: String,
        permanently: bool,
    },
    Move {
        from: String,
        to: String,
    },
    Copy {
        from: String,
        to: String,
    },
    /// A 202 upload: the file appears when the operation ends.
    Store {
        path: String,
        data: Arc<Vec<u8>>,
    },
    /// An upload link's deadline: unused by then, it dies.
    Expire {
        link: String,
    },
    None,
}

struct Op {
    done_at: Instant,
    effect: Effect,
    locks: Vec<String>,
    done: bool,
    failed: bool,
}

struct Link {
    path: String,
    used: bool,
    op_id: String,
    throttled: bool,
}

/// What a move or a copy takes along of each resource: its path below the
/// source, its times and its custom properties.
type Carried = Vec<(String, Option<(u64, u64)>, Option<serde_json::Map<String, Value>>)>;

/// A test's action at a request ([`FakeDisk::before`]).
type Action = Box<dyn FnOnce() + Send>;

#[derive(Default)]
struct Disk {
    /// Absolute paths (`/a/b`); the root `/` is implicit.
    nodes: BTreeMap<String, Node>,
    trash: Vec<TrashEntry>,
    links: HashMap<String, Link>,
    ops: HashMap<String, Op>,
    counts: BTreeMap<String, u64>,
    uploaded_bytes: u64,
    /// Bytes that went through throttled links.
    throttled_bytes: u64,
    token_leaks: u64,
    faults: Vec<Fault>,
    /// Operations that hold locks (folder deletes and moves).
    locking: Vec<String>,
    /// Operations by deadline, so that `settle` looks only at due ones.
    schedule: std::collections::BTreeSet<(Instant, String)>,
    /// Overrides `Options::fault_rate` when set.
    fault_rate: Option<f64>,
    /// Fresh uploads, and when the Disk will show them (`Options::lag`).
    hidden: HashMap<String, Instant>,
    /// `FaultKind::Vanish`: the next operation is forgotten at once.
    vanish_next: bool,
    /// Sink mode: the sizes that were sent, for listings.
    sunk: HashMap<String, Sunk>,
    /// `PATCH /resources` custom_properties, download links, public keys,
    /// and when each file was stored (for `last-uploaded`): `more.rs`.
    props: HashMap<String, serde_json::Map<String, Value>>,
    /// Items a hostile or broken server adds to a folder's listing (names
    /// with `/`, `..`, control characters): [`FakeDisk::inject_items`].
    injected: HashMap<String, Vec<Value>>,
    /// Each resource's `created` and `modified` (Unix seconds): an upload
    /// makes a new resource; a PATCH bumps `modified` (yadisk's recorded
    /// `test_patch`: 19:19:30 became 19:19:31 when a property went); a
    /// move or a copy keeps both, and the custom properties, with the
    /// resource (its `resource_id` is no hash of its path in the
    /// recordings, so an object that moves; rclone's backend sets no time
    /// after a server-side move or copy, relying on that). Unknown: shown
    /// as 2026-01-01.
    times: HashMap<String, (u64, u64)>,
    /// `Options::props_lost_on_move`.
    props_lost_on_move: bool,
    downloads: HashMap<String, String>,
    public: HashMap<String, String>,
    stamps: HashMap<String, u64>,
    /// Requests seen on both ports, for `kill_at`.
    seen: u64,
    kill_at: Option<KillAt>,
    /// The process that `kill_at` kills.
    victim: Arc<std::sync::atomic::AtomicU32>,
    /// Faults given out, explicit and random.
    faults_injected: u64,
    /// `Options::rate_limit`: tokens left, when they were counted, and the
    /// end of a penalty; 429s given for it.
    bucket: Option<(f64, Instant)>,
    penalty_until: Option<Instant>,
    rate_limited: u64,
    rng: u64,
    seq: u64,
    oauth: oauth::OAuth,
    /// Tests' actions at a request ([`FakeDisk::before`]): a counter key
    /// and a path part to match, run once before the request is worked on.
    before: Vec<(String, String, Action)>,
}

struct Shared {
    disk: Mutex<Disk>,
    opts: Options,
    api_url: String,
    upload_base: String,
    stop: AtomicBool,
    /// When the emulator started (its own token's life begins then).
    started: Instant,
}

pub struct FakeDisk {
    shared: Arc<Shared>,
    addrs: Vec<String>,
}

impl FakeDisk {
    pub fn start() -> FakeDisk {
        FakeDisk::with(Options::default())
    }

    pub fn with(opts: Options) -> FakeDisk {
        let api = TcpListener::bind(("127.0.0.1", opts.api_port)).expect("bind the API port");
        let up = TcpListener::bind(("127.0.0.1", opts.upload_port)).expect("bind the upload port");
        let api_addr = api.local_addr().unwrap().to_string();
        let up_addr = up.local_addr().unwrap().to_string();
        let shared = Arc::new(Shared {
            disk: Mutex::new(Disk { rng: opts.seed | 1, props_lost_on_move: opts.props_lost_on_move, ..Disk::default() }),
            opts,
            api_url: format!("http://{api_addr}/v1/disk"),
            upload_base: format!("http://{up_addr}/upload-target/"),
            stop: AtomicBool::new(false),
            started: Instant::now(),
        });
        for (listener, upload) in [(api, false), (up, true)] {
            let s = shared.clone();
            thread::spawn(move || accept_loop(listener, s, upload));
        }
        FakeDisk { shared, addrs: vec![api_addr, up_addr] }
    }

    /// The `api_url` to put in ysync's config.
    pub fn api_url(&self) -> String {
        self.shared.api_url.clone()
    }

    pub fn token(&self) -> String {
        self.shared.opts.token.clone()
    }

    /// The `oauth_url` to put in ysync's config.
    pub fn oauth_url(&self) -> String {
        self.shared.api_url.trim_end_matches("/v1/disk").to_string()
    }

    /// What the OAuth endpoints saw.
    pub fn oauth_record(&self) -> oauth::Record {
        self.disk().oauth.record.clone()
    }

    fn disk(&self) -> MutexGuard<'_, Disk> {
        let mut d = self.shared.disk.lock().unwrap();
        d.settle();
        d
    }

    /// Everything below `root` (absolute), keyed by relative path; folders map to `None`.
    pub fn tree(&self, root: &str) -> BTreeMap<String, Option<Vec<u8>>> {
        let d = self.disk();
        let prefix = if root == "/" { "/".to_string() } else { format!("{root}/") };
        d.nodes
            .range(prefix.clone()..)
            .take_while(|(k, _)| k.starts_with(&prefix))
            .map(|(k, n)| {
                let rel = k[prefix.len()..].to_string();
                (rel, if let Node::File(b) = n { Some(b.as_ref().clone()) } else { None })
            })
            .collect()
    }

    pub fn exists(&self, path: &str) -> bool {
        path == "/" || self.disk().nodes.contains_key(path)
    }

    pub fn file(&self, path: &str) -> Option<Vec<u8>> {
        match self.disk().nodes.get(path) {
            Some(Node::File(b)) => Some(b.as_ref().clone()),
            _ => None,
        }
    }

    /// Puts a file on the Disk directly (creating its folders), as if some
    /// other client had uploaded it.
    pub fn put_file(&self, path: &str, data: &[u8]) {
        let mut d = self.disk();
        for (i, _) in path.match_indices('/').skip(1) {
            d.nodes.entry(path[..i].to_string()).or_insert(Node::Dir);
        }
        d.stamp(path);
        d.born(path);
        d.nodes.insert(path.to_string(), Node::File(Arc::new(data.to_vec())));
    }

    /// Items the listing of `folder` shows besides what is there, as a
    /// hostile server (or one someone got between) may answer: no live
    /// Disk is known to, but a client must never write outside its folder
    /// whatever a listing says (issue 27, item 6).
    pub fn inject_items(&self, folder: &str, items: Vec<Value>) {
        self.disk().injected.insert(folder.to_string(), items);
    }

    /// A file's custom properties, as the Disk keeps them (`None`: none).
    pub fn props(&self, path: &str) -> Option<serde_json::Map<String, Value>> {
        self.disk().props.get(path).filter(|m| !m.is_empty()).cloned()
    }

    /// Sets a file's custom properties, as another client would.
    pub fn set_props(&self, path: &str, props: serde_json::Map<String, Value>) {
        self.disk().props.insert(path.to_string(), props);
    }

    /// Removes a file or a folder tree directly (not to the trash), as if
    /// someone had deleted it in the Disk's web interface.
    pub fn remove(&self, path: &str) {
        self.disk().take_subtree(path);
    }

    pub fn trash(&self) -> Vec<TrashEntry> {
        self.disk().trash.clone()
    }

    /// Waits until the Disk shows every fresh upload (`Options::lag`), for a
    /// test whose next cycle must not meet the lag: ysync's answer to it (a
    /// move asked again) depends on how fast the machine starts that cycle.
    /// Bounded by the longest lag still to run.
    pub fn wait_shown(&self) {
        let until = self.disk().hidden.values().max().copied();
        if let Some(wait) = until.and_then(|t| t.checked_duration_since(Instant::now())) {
            thread::sleep(wait);
        }
    }

    /// Requests per endpoint, e.g. `GET /v1/disk/resources/upload` or `PUT upload`.
    pub fn counts(&self) -> BTreeMap<String, u64> {
        self.disk().counts.clone()
    }

    pub fn count(&self, endpoint: &str) -> u64 {
        self.disk().counts.get(endpoint).copied().unwrap_or(0)
    }

    pub fn total_requests(&self) -> u64 {
        self.disk().counts.values().sum()
    }

    pub fn reset_counts(&self) {
        let mut d = self.disk();
        d.counts.clear();
        d.uploaded_bytes = 0;
    }

    pub fn uploaded_bytes(&self) -> u64 {
        self.disk().uploaded_bytes
    }

    pub fn throttled_bytes(&self) -> u64 {
        self.disk().throttled_bytes
    }

    /// Upload requests that carried an Authorization header (must stay 0).
    pub fn token_leaks(&self) -> u64 {
        self.disk().token_leaks
    }

    /// 429s answered because of `Options::rate_limit`.
    pub fn rate_limited(&self) -> u64 {
        self.shared.disk.lock().unwrap().rate_limited
    }

    pub fn faults_injected(&self) -> u64 {
        self.disk().faults_injected
    }

    /// Changes the share of randomly failing requests.
    pub fn set_fault_rate(&self, rate: f64) {
        self.shared.disk.lock().unwrap().fault_rate = Some(rate);
    }

    /// Kills the process whose id is then given to `victim` at a request,
    /// counted from now.
    pub fn kill_at(&self, at: KillAt) -> Arc<std::sync::atomic::AtomicU32> {
        let mut d = self.disk();
        d.kill_at = Some(KillAt { request: d.seen + at.request, ..at });
        d.victim.clone()
    }

    pub fn inject(&self, fault: Fault) {
        self.disk().faults.push(fault);
    }

    /// Runs `act` once, when the first request with this counter key (`PUT
    /// upload`, `GET /v1/disk/resources/upload`…) whose decoded path holds
    /// `path_contains` arrives, before the Disk works on it: for a test to
    /// change the local folder at an exact point of a cycle (after the
    /// scan, before an upload).
    pub fn before(&self, endpoint: &str, path_contains: &str, act: impl FnOnce() + Send + 'static) {
        self.disk().before.push((endpoint.into(), path_contains.into(), Box::new(act)));
    }

    /// A human-readable listing of the whole Disk.
    pub fn dump(&self) -> String {
        self.shared.disk.lock().unwrap().dump()
    }
}

impl Drop for FakeDisk {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        for a in &self.addrs {
            let _ = TcpStream::connect(a); // wake the accept loops
        }
    }
}

fn accept_loop(listener: TcpListener, shared: Arc<Shared>, upload: bool) {
    for stream in listener.incoming() {
        if shared.stop.load(Ordering::SeqCst) {
            return;
        }
        let Ok(stream) = stream else { continue };
        let s = shared.clone();
        thread::spawn(move || {
            let _ = serve(stream, &s, upload);
        });
    }
}

/// What the request loop does after a handler ran.
enum Next {
    Reply(Reply),
    /// A reply whose body goes at `Options::download_rate`.
    Paced(Reply),
    /// A reply's head and half its body, then the connection closes.
    Cut(Reply),
    Reset,
}

fn serve(stream: TcpStream, shared: &Shared, upload: bool) -> std::io::Result<()> {
    let mut writer = stream.try_clone()?;
    let mut reader = BufReader::new(stream);
    while let Some(head) = http::read_head(&mut reader)? {
        if shared.stop.load(Ordering::SeqCst) {
            return Ok(());
        }
        if head.header("expect").is_some_and(|v| v.eq_ignore_ascii_case("100-continue")) {
            writer.write_all(b"HTTP/1.1 100 Continue\r\n\r\n")?;
        }
        let next = if upload { handle_upload(shared, &head, &mut reader) } else { handle_api(shared, &head, &mut reader) };
        let close = head.wants_close();
        match next {
            Next::Reply(reply) => {
                if shared.opts.verbose {
                    let q = http::form_decode(&head.query).unwrap_or_default();
                    println!("{} {}{}{} -> {}", head.method, head.path, if q.is_empty() { "" } else { "?" }, q, reply.status);
                }
                http::write_reply(&mut writer, &reply)?;
                if reply.headers.iter().any(|(k, v)| *k == "Connection" && v == "close") {
                    return Ok(());
                }
            }
            Next::Paced(reply) => http::write_reply_at(&mut writer, &reply, shared.opts.download_rate)?,
            Next::Cut(mut reply) => {
                let full = reply.body.len();
                reply.body.truncate(full / 2);
                reply.headers.push(("Content-Length", full.to_string()));
                http::write_reply_at(&mut writer, &reply, 0)?;
                let _ = writer.shutdown(Shutdown::Both);
                return Ok(());
            }
            Next::Reset => {
                let _ = writer.shutdown(Shutdown::Both);
                return Ok(());
            }
        }
        if close {
            return Ok(());
        }
    }
    Ok(())
}

fn error(status: u16, name: &str, description: &str) -> Reply {
    // `message` is localised on the real Disk; ysync must not read it.
    Reply::json(status, json!({"message": "Ошибка (эмулятор)", "description": description, "error": name}))
}

/// A 429, with `Retry-After` only when the options ask for one (R6).
fn too_many(opts: &Options) -> Reply {
    let mut r = error(429, "TooManyRequestsError", "Too many requests.");
    if let Some(secs) = opts.retry_after {
        r.headers.push(("Retry-After", secs.to_string()));
    }
    r
}

/// Sink mode's record of a body it read and threw away: its size and the
/// hashes the Disk would report.
struct Sunk {
    size: u64,
    sha256: String,
    md5: String,
}

impl Sunk {
    fn of(r: &mut dyn Read) -> std::io::Result<Sunk> {
        let (mut sha, mut md5, mut size) = (Sha256::new(), md5::Md5::new(), 0u64);
        let mut buf = vec![0u8; 256 << 10];
        loop {
            let n = r.read(&mut buf)?;
            if n == 0 {
                return Ok(Sunk { size, sha256: hex(&sha.finalize()), md5: hex(&md5.finalize()) });
            }
            sha.update(&buf[..n]);
            md5.update(&buf[..n]);
            size += n as u64;
        }
    }
}

/// `reply` with `Connection: close`: the request's body was left unread.
fn closing(mut reply: Reply) -> Reply {
    reply.headers.push(("Connection", "close".into()));
    reply
}

fn not_found() -> Reply {
    error(404, "DiskNotFoundError", "Resource not found.")
}

/// Counter key for a request: method and route, ids left out.
fn route(method: &str, path: &str, upload: bool) -> String {
    if upload {
        return format!("{method} upload");
    }
    let p = path.trim_end_matches('/');
    if p.starts_with("/v1/disk/operations") {
        return format!("{method} /v1/disk/operations");
    }
    format!("{method} {p}")
}

/// Counts the request and picks its fault: the first matching injected
/// one, else a random one at the configured rate.
fn pre(shared: &Shared, key: &str, path: &str) -> Option<FaultKind> {
    if !shared.opts.latency.is_zero() {
        thread::sleep(shared.opts.latency);
    }
    let mut d = shared.disk.lock().unwrap();
    if let Some(i) = d.before.iter().position(|(k, p, _)| k == key && path.contains(p.as_str())) {
        let (_, _, act) = d.before.remove(i);
        drop(d);
        act();
        d = shared.disk.lock().unwrap();
    }
    *d.counts.entry(key.to_string()).or_default() += 1;
    d.seen += 1;
    d.settle();
    if let Some(k) = d.kill_at.filter(|k| k.request == d.seen) {
        d.kill_at = None;
        return Some(FaultKind::Kill { after: k.after });
    }
    let kind =
        match d.faults.iter_mut().find(|f| f.times > 0 && (f.endpoint == "*" || f.endpoint == key) && path.contains(&f.path_contains)) {
            Some(f) => {
                f.times -= 1;
                let kind = f.kind.clone();
                d.faults.retain(|f| f.times > 0);
                kind
            }
            None => {
                let rate = d.fault_rate.unwrap_or(shared.opts.fault_rate);
                if rate <= 0.0 || d.random() % 10_000 >= (rate * 10_000.0) as u64 {
                    return None;
                }
                const RANDOM: [FaultKind; 8] = [
                    FaultKind::Status(500, "InternalServerError"),
                    FaultKind::Status(502, "BadGateway"),
                    FaultKind::Status(503, "ServiceUnavailable"),
                    FaultKind::Status(504, "GatewayTimeout"),
                    FaultKind::Status(429, "TooManyRequestsError"),
                    FaultKind::Reset,
                    FaultKind::ResetAfter,
                    FaultKind::Delay(Duration::from_millis(300)),
                ];
                RANDOM[(d.random() % RANDOM.len() as u64) as usize].clone()
            }
        };
    d.faults_injected += 1;
    Some(kind)
}

fn handle_api(shared: &Shared, head: &Head, reader: &mut BufReader<TcpStream>) -> Next {
    let body = if head.content_length().unwrap_or(0) > 0 || head.chunked() {
        http::read_body(reader, head).unwrap_or_default()
    } else {
        Vec::new()
    };
    if head.path == "/_emulator/tree" {
        return Next::Reply(Reply::text(200, shared.disk.lock().unwrap().dump()));
    }
    if head.path == "/_emulator/counts" {
        let mut d = shared.disk.lock().unwrap();
        let mut v = serde_json::to_value(&d.counts).unwrap();
        v["uploaded_bytes"] = json!(d.uploaded_bytes);
        if head.method == "POST" {
            d.counts.clear();
            d.uploaded_bytes = 0;
        }
        return Next::Reply(Reply::json(200, v));
    }
    let key = route(&head.method, &head.path, false);
    let Some(query) = http::parse_query(&head.query) else {
        return Next::Reply(error(400, "FieldValidationError", "Query is not valid UTF-8."));
    };
    let q = Query(query);
    let raw_path = q.get("path").unwrap_or_default().to_string();
    let fault = pre(shared, &key, &raw_path);
    if shared.disk.lock().unwrap().over_rate(&shared.opts) {
        return Next::Reply(too_many(&shared.opts));
    }
    match fault {
        Some(FaultKind::Status(429, _)) => return Next::Reply(too_many(&shared.opts)),
        Some(FaultKind::Status(s, name)) => return Next::Reply(error(s, name, "Injected fault.")),
        Some(FaultKind::Reset) => return Next::Reset,
        Some(FaultKind::Delay(d)) => thread::sleep(d),
        Some(FaultKind::Kill { after: false }) => {
            kill_victim(shared);
            return Next::Reset;
        }
        Some(
            FaultKind::Accepted
            | FaultKind::ResetAfter
            | FaultKind::Stall(_)
            | FaultKind::Vanish
            | FaultKind::Corrupt
            | FaultKind::Kill { after: true },
        )
        | None => {}
    }
    let mut d = shared.disk.lock().unwrap();
    if let Some(reply) = d.oauth.handle(&shared.opts.oauth, &shared.opts.token, head, &body) {
        return Next::Reply(reply);
    }
    drop(d);
    let mut d = shared.disk.lock().unwrap();
    let token = head.header("authorization").and_then(|a| a.strip_prefix("OAuth ")).unwrap_or_default();
    if !d.oauth.accepts(&shared.opts.oauth, &shared.opts.token, token, shared.started) {
        return Next::Reply(error(401, "UnauthorizedError", "Unauthorized"));
    }
    d.settle();
    d.vanish_next = matches!(fault, Some(FaultKind::Vanish));
    let reply = match (head.method.as_str(), head.path.trim_end_matches('/')) {
        ("GET", "/v1/disk") => d.info(&shared.opts),
        ("GET", "/v1/disk/resources") => with_path(&raw_path, |p| d.meta(p, &q)),
        ("PUT", "/v1/disk/resources") => with_path(&raw_path, |p| d.mkdir(shared, p, &raw_path)),
        ("PATCH", "/v1/disk/resources") => with_path(&raw_path, |p| d.patch(p, &body)),
        ("GET", "/v1/disk/resources/download") => with_path(&raw_path, |p| d.download(shared, p)),
        ("POST", "/v1/disk/resources/copy") => {
            let from = q.get("from").unwrap_or_default().to_string();
            with_path(&from, |f| with_path(&raw_path, |t| d.copy(shared, f, t, &q)))
        }
        ("PUT", "/v1/disk/resources/publish") => with_path(&raw_path, |p| d.publish(shared, p, true)),
        ("PUT", "/v1/disk/resources/unpublish") => with_path(&raw_path, |p| d.publish(shared, p, false)),
        ("GET", "/v1/disk/resources/files") => d.files(&q),
        ("GET", "/v1/disk/resources/last-uploaded") => d.last_uploaded(&q),
        ("DELETE", "/v1/disk/trash/resources") => d.trash_delete(&q),
        ("PUT", "/v1/disk/trash/resources/restore") => d.trash_restore(shared, &q),
        ("DELETE", "/v1/disk/resources") => with_path(&raw_path, |p| d.delete(shared, p, &q)),
        ("POST", "/v1/disk/resources/move") => {
            let from = q.get("from").unwrap_or_default().to_string();
            with_path(&from, |f| with_path(&raw_path, |t| d.move_(shared, f, t, &q)))
        }
        ("GET", "/v1/disk/resources/upload") => with_path(&raw_path, |p| d.upload_link(shared, p, &raw_path, &q)),
        ("GET", p) if p.starts_with("/v1/disk/operations/") => d.operation(&p["/v1/disk/operations/".len()..]),
        ("GET", "/v1/disk/trash/resources") => d.trash_list(),
        (_, p) if p.starts_with("/v1/disk") => error(405, "MethodNotAllowedError", "Method not allowed."),
        _ => error(404, "NotFoundError", "Unknown endpoint."),
    };
    drop(d);
    if matches!(fault, Some(FaultKind::Kill { after: true })) {
        kill_victim(shared);
        return Next::Reset;
    }
    if matches!(fault, Some(FaultKind::ResetAfter)) {
        return Next::Reset;
    }
    Next::Reply(reply)
}

/// The decoded query parameters of one request.
pub struct Query(Vec<(String, String)>);

impl Query {
    fn get(&self, k: &str) -> Option<&str> {
        self.0.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str())
    }
}

/// Validates a `path` parameter as the Disk does and normalises it to `/a/b`.
fn with_path(raw: &str, f: impl FnOnce(&str) -> Reply) -> Reply {
    match normalize(raw) {
        Ok(p) => f(&p),
        Err(why) => error(400, "FieldValidationError", &why),
    }
}

pub fn normalize(raw: &str) -> Result<String, String> {
    if raw.is_empty() {
        return Err("Parameter `path` is required.".into());
    }
    let rest = if let Some(r) = raw.strip_prefix("disk:") {
        if !r.starts_with('/') {
            return Err(format!("Invalid path \"{raw}\"."));
        }
        r.to_string()
    } else if raw.contains(':') {
        // The real Disk reads `/a:b` as a scheme and fails.
        return Err(format!("Invalid path \"{raw}\": a name with ':' needs the disk:/ prefix."));
    } else if raw.starts_with('/') {
        raw.to_string()
    } else {
        format!("/{raw}")
    };
    let mut parts = Vec::new();
    for part in rest.split('/').filter(|p| !p.is_empty()) {
        if part == "." || part == ".." || part.chars().any(|c| (c.is_control() && !"\t\n\r".contains(c)) || c == '\u{7f}') {
            return Err(format!("Invalid name \"{part}\"."));
        }
        if part.chars().count() > 255 {
            return Err("Name is longer than 255 characters.".into());
        }
        parts.push(part);
    }
    Ok(format!("/{}", parts.join("/")))
}

fn parent(p: &str) -> &str {
    match p.rfind('/') {
        Some(0) | None => "/",
        Some(i) => &p[..i],
    }
}

fn is_under(p: &str, dir: &str) -> bool {
    dir == "/" || (p.len() > dir.len() && p.starts_with(dir) && p.as_bytes()[dir.len()] == b'/')
}

/// `2026-12-07T15:04:05+00:00`, as the Disk writes its times. Written
/// apart from ysync's `src/units.rs` on purpose: the stand-in for the Disk
/// must not share a bug with the client it checks.
fn rfc3339(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    let rem = secs % 86_400;
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}+00:00", rem / 3600, rem % 3600 / 60, rem % 60)
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

impl Disk {
    /// `Options::rate_limit`: takes one token for an API request, or
    /// refuses it (and, out of tokens, starts the penalty).
    fn over_rate(&mut self, opts: &Options) -> bool {
        if opts.rate_limit == 0 {
            return false;
        }
        let now = Instant::now();
        if self.penalty_until.is_some_and(|t| now < t) {
            self.rate_limited += 1;
            return true;
        }
        let cap = f64::from(opts.rate_limit);
        let (tokens, at) = self.bucket.unwrap_or((cap, now));
        let tokens = (tokens + now.duration_since(at).as_secs_f64() * cap).min(cap);
        if tokens < 1.0 {
            self.bucket = Some((tokens, now));
            self.penalty_until = Some(now + opts.rate_penalty);
            self.rate_limited += 1;
            return true;
        }
        self.bucket = Some((tokens - 1.0, now));
        false
    }

    fn random(&mut self) -> u64 {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        self.rng
    }

    fn next_id(&mut self) -> String {
        self.seq += 1;
        hex(&Sha256::digest(self.seq.to_le_bytes()))
    }

    fn is_dir(&self, p: &str) -> bool {
        p == "/" || matches!(self.nodes.get(p), Some(Node::Dir))
    }

    fn locked(&self, p: &str) -> bool {
        let active = self.locking.iter().filter_map(|id| self.ops.get(id)).filter(|o| !o.done);
        active.flat_map(|o| &o.locks).any(|l| l == p || is_under(p, l) || is_under(l, p))
    }

    fn has_children(&self, p: &str) -> bool {
        let prefix = format!("{p}/");
        self.nodes.range(prefix.clone()..).next().is_some_and(|(k, _)| k.starts_with(&prefix))
    }

    fn used(&self) -> u64 {
        let live: usize = self.nodes.values().map(|n| if let Node::File(b) = n { b.len() } else { 0 }).sum();
        let trash: usize = self.trash.iter().flat_map(|t| t.nodes.values()).map(|n| if let Node::File(b) = n { b.len() } else { 0 }).sum();
        (live + trash) as u64
    }

    /// Completes operations whose time has come.
    fn schedule(&mut self, id: &str, at: Instant) {
        if let Some(op) = self.ops.get_mut(id) {
            op.done_at = at;
            self.schedule.insert((at, id.to_string()));
        }
    }

    fn settle(&mut self) {
        let now = Instant::now();
        if self.hidden.len() > 64 {
            self.hidden.retain(|_, t| *t > now);
        }
        let mut due = Vec::new();
        while let Some((at, id)) = self.schedule.first().cloned() {
            if at > now {
                break;
            }
            self.schedule.pop_first();
            if self.ops.get(&id).is_some_and(|o| !o.done && o.done_at <= now) {
                due.push(id);
            }
        }
        for id in due {
            if let Effect::Expire { link } = &self.ops[&id].effect {
                let used = self.links.get(link).is_some_and(|l| l.used);
                let op = self.ops.get_mut(&id).unwrap();
                if used {
                    self.schedule(&id, now + Duration::from_secs(86400)); // its PUT decides
                } else {
                    (op.done, op.failed) = (true, true);
                }
                continue;
            }
            let op = self.ops.get_mut(&id).unwrap();
            op.done = true;
            match std::mem::replace(&mut op.effect, Effect::None) {
                Effect::Delete { path, permanently } => self.remove(&path, permanently),
                Effect::Move { from, to } => self.relocate(&from, &to),
                Effect::Copy { from, to } => self.duplicate(&from, &to),
                Effect::Store { path, data } => {
                    self.stamp(&path);
                    self.born(&path);
                    self.nodes.insert(path, Node::File(data));
                }
                Effect::None | Effect::Expire { .. } => {}
            }
        }
    }

    fn take_subtree(&mut self, p: &str) -> BTreeMap<String, Node> {
        let mut taken = BTreeMap::new();
        if let Some(n) = self.nodes.remove(p) {
            taken.insert(p.to_string(), n);
        }
        let keys: Vec<String> = self.nodes.keys().filter(|k| is_under(k, p)).cloned().collect();
        for k in keys {
            let n = self.nodes.remove(&k).unwrap();
            taken.insert(k, n);
        }
        for k in taken.keys() {
            self.props.remove(k);
            self.times.remove(k);
        }
        taken
    }

    /// A new resource at `p` (an upload, a new folder): its times now, no
    /// custom properties (an upload over a file is a new file).
    fn born(&mut self, p: &str) {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
        self.times.insert(p.to_string(), (now, now));
        self.props.remove(p);
    }

    /// The times and properties of the resources at and below `from`, for
    /// a move or a copy to `to` to take along ([`Disk::carry`]).
    fn metadata_of(&self, from: &str) -> Carried {
        let under = |k: &String| k.as_str() == from || is_under(k, from);
        let mut keys: Vec<&String> = self.times.keys().chain(self.props.keys()).filter(|k| under(k)).collect();
        keys.sort();
        keys.dedup();
        keys.into_iter().map(|k| (k[from.len()..].to_string(), self.times.get(k).copied(), self.props.get(k).cloned())).collect()
    }

    fn carry(&mut self, to: &str, meta: Carried, keep_props: bool) {
        for (rest, times, props) in meta {
            let k = format!("{to}{rest}");
            if let Some(t) = times {
                self.times.insert(k.clone(), t);
            }
            match props.filter(|_| keep_props) {
                Some(p) => drop(self.props.insert(k, p)),
                None => drop(self.props.remove(&k)),
            }
        }
    }

    fn remove(&mut self, p: &str, permanently: bool) {
        let nodes = self.take_subtree(p);
        if !permanently && !nodes.is_empty() {
            let name = p.rsplit('/').next().unwrap_or(p);
            let id = self.next_id();
            self.trash.push(TrashEntry { path: format!("trash:/{name}_{}", &id[..40]), origin_path: format!("disk:{p}"), nodes });
        }
    }

    fn relocate(&mut self, from: &str, to: &str) {
        self.take_subtree(to);
        let meta = self.metadata_of(from);
        for (k, n) in self.take_subtree(from) {
            let new = format!("{to}{}", &k[from.len()..]);
            if let Some(sunk) = self.sunk.remove(&k) {
                self.sunk.insert(new.clone(), sunk);
            }
            self.nodes.insert(new, n);
        }
        let keep = !self.props_lost_on_move;
        self.carry(to, meta, keep);
    }

    /// Notes that a file was stored now (for `last-uploaded`).
    fn stamp(&mut self, p: &str) {
        self.seq += 1;
        self.stamps.insert(p.to_string(), self.seq);
    }

    fn resource(&self, p: &str) -> Value {
        let name = if p == "/" { "disk" } else { p.rsplit('/').next().unwrap() };
        let (created, modified) =
            self.times.get(p).map_or(("2026-01-01T00:00:00+00:00".to_string(), "2026-01-01T00:00:00+00:00".to_string()), |(c, m)| {
                (rfc3339(*c), rfc3339(*m))
            });
        let common = json!({
            "name": name, "path": format!("disk:{p}"), "created": created,
            "modified": modified, "resource_id": format!("4000:{}", hex(&Sha256::digest(p.as_bytes()))),
            "revision": 1767225600000000u64, "comment_ids": {}, "exif": {},
        });
        let mut v = common;
        match self.nodes.get(p) {
            Some(Node::File(b)) => {
                let o = v.as_object_mut().unwrap();
                o.insert("type".into(), json!("file"));
                if let Some(sunk) = self.sunk.get(p) {
                    // Sink mode kept no bytes: what was sent, as hashed on the way.
                    o.insert("size".into(), json!(sunk.size));
                    o.insert("sha256".into(), json!(sunk.sha256));
                    o.insert("md5".into(), json!(sunk.md5));
                } else {
                    o.insert("size".into(), json!(b.len()));
                    o.insert("sha256".into(), json!(hex(&Sha256::digest(b.as_slice()))));
                    o.insert("md5".into(), json!(hex(&md5::Md5::digest(b.as_slice()))));
                }
                o.insert("mime_type".into(), json!("application/octet-stream"));
                o.insert("media_type".into(), json!(media_type(name)));
                o.insert("antivirus_status".into(), json!("clean"));
            }
            _ => {
                v.as_object_mut().unwrap().insert("type".into(), json!("dir"));
            }
        }
        if let Some(props) = self.props.get(p).filter(|m| !m.is_empty()) {
            v["custom_properties"] = Value::Object(props.clone());
        }
        if let Some(key) = self.public.get(p) {
            v["public_key"] = json!(key);
            v["public_url"] = json!(format!("https://yadi.sk/d/{}", &key[..12]));
        }
        v
    }

    fn info(&self, opts: &Options) -> Reply {
        Reply::json(
            200,
            json!({
                "total_space": opts.total_space, "used_space": self.used(), "trash_size": 0,
                "max_file_size": opts.max_file_size, "paid_max_file_size": 53687091200u64, "is_paid": false,
                "user": {"uid": "4000", "login": "emulator", "display_name": "Fake Disk", "country": "ru"},
                "system_folders": {"downloads": "disk:/Загрузки/"},
            }),
        )
    }

    /// Is `p` a fresh upload the Disk does not show yet (`Options::lag`)?
    fn hidden(&self, p: &str) -> bool {
        self.hidden.get(p).is_some_and(|t| Instant::now() < *t)
    }

    fn meta(&self, p: &str, q: &Query) -> Reply {
        if !self.is_dir(p) && !self.nodes.contains_key(p) || self.hidden(p) {
            return not_found();
        }
        let mut v = self.resource(p);
        if self.is_dir(p) {
            let limit: usize = q.get("limit").and_then(|l| l.parse().ok()).unwrap_or(20);
            let offset: usize = q.get("offset").and_then(|l| l.parse().ok()).unwrap_or(0);
            let prefix = if p == "/" { "/".to_string() } else { format!("{p}/") };
            let mut kids: Vec<&String> = self
                .nodes
                .range(prefix.clone()..)
                .take_while(|(k, _)| k.starts_with(&prefix))
                .map(|(k, _)| k)
                .filter(|k| !k[prefix.len()..].contains('/') && !self.hidden(k))
                .collect();
            // Folders first, then files, each by name.
            kids.sort_by_key(|k| (!self.is_dir(k), k.to_string()));
            let real = kids.len();
            let mut items: Vec<Value> = kids.into_iter().skip(offset).take(limit).map(|k| self.resource(k)).collect();
            let injected = self.injected.get(p).map_or(&[][..], Vec::as_slice);
            let total = real + injected.len();
            if offset + limit > real {
                items.extend(injected.iter().skip(offset.saturating_sub(real)).take(offset + limit - real.max(offset)).cloned());
            }
            v.as_object_mut().unwrap().insert(
                "_embedded".into(),
                json!({"sort": "", "items": items, "limit": limit, "offset": offset, "path": format!("disk:{p}"), "total": total}),
            );
        }
        if let Some(f) = q.get("fields") {
            v = trim_fields(&v, &f.split(',').map(str::trim).filter(|s| !s.is_empty()).collect::<Vec<_>>());
        }
        Reply::json(200, v)
    }

    fn mkdir(&mut self, shared: &Shared, p: &str, raw: &str) -> Reply {
        if self.locked(p) {
            return error(423, "DiskResourceLockedError", "Resource is locked.");
        }
        match self.nodes.get(p) {
            _ if p == "/" => {
                return error(
                    409,
                    "DiskPathPointsToExistentDirectoryError",
                    &format!("Specified path \"{raw}\" points to existent directory."),
                );
            }
            Some(Node::Dir) => {
                return error(
                    409,
                    "DiskPathPointsToExistentDirectoryError",
                    &format!("Specified path \"{raw}\" points to existent directory."),
                );
            }
            Some(Node::File(_)) => return error(409, "DiskResourceAlreadyExistsError", &format!("Resource \"{raw}\" already exists.")),
            None => {}
        }
        if !self.is_dir(parent(p)) {
            return error(409, "DiskPathDoesntExistsError", &format!("Specified path \"{raw}\" doesn't exists."));
        }
        self.born(p);
        self.nodes.insert(p.to_string(), Node::Dir);
        Reply::json(201, json!({"href": more::resource_href(shared, p), "method": "GET", "templated": false}))
    }

    fn async_op(&mut self, shared: &Shared, effect: Effect, locks: Vec<String>) -> Reply {
        let id = self.next_id();
        // Evidence: YD-rec test_move.json, test_permanent_remove.json (https);
        // YD-src changelog 1.2.15 (sometimes http). R8 in real-disk-evidence.md.
        let href = match (shared.opts.real_op_links, self.seq % 2) {
            (false, _) => format!("{}/operations/{id}", shared.api_url),
            (true, 0) => format!("https://cloud-api.yandex.net/v1/disk/operations/{id}"),
            (true, _) => format!("http://cloud-api.yandex.net/v1/disk/operations/{id}"),
        };
        if std::mem::take(&mut self.vanish_next) {
            return Reply::json(202, json!({"href": href, "method": "GET", "templated": false}));
        }
        let at = Instant::now() + shared.opts.op_delay;
        self.ops.insert(id.clone(), Op { done_at: at, effect, locks, done: false, failed: false });
        self.schedule(&id, at);
        let ops = &self.ops;
        self.locking.retain(|id| ops.get(id).is_some_and(|o| !o.done));
        self.locking.push(id.clone());
        Reply::json(202, json!({"href": href, "method": "GET", "templated": false}))
    }

    fn delete(&mut self, shared: &Shared, p: &str, q: &Query) -> Reply {
        if p == "/" {
            return error(400, "FieldValidationError", "Cannot delete the root.");
        }
        if self.locked(p) || self.hidden(p) {
            return error(423, "DiskResourceLockedError", "Resource is locked.");
        }
        let permanently = q.get("permanently") == Some("true");
        match self.nodes.get(p) {
            None => return not_found(),
            Some(Node::Dir) if q.get("md5").is_some() => return error(400, "FieldValidationError", "md5 is for files only."),
            Some(Node::File(b)) => {
                // The guard is documented (in Russian) but never recorded
                // refusing (R2): `ignore_md5` is the Disk that ignores it.
                if let Some(want) = q.get("md5").filter(|_| !shared.opts.ignore_md5)
                    && want != hex(&md5::Md5::digest(b.as_slice()))
                {
                    return error(409, "MD5DifferError", "MD5 differs.");
                }
            }
            Some(Node::Dir) => {}
        }
        if self.has_children(p) || q.get("force_async") == Some("true") {
            return self.async_op(shared, Effect::Delete { path: p.into(), permanently }, vec![p.into()]);
        }
        self.remove(p, permanently);
        Reply::empty(204)
    }

    /// Why a move or copy of `from` to `to` is refused, if it is.
    fn refuse_transfer(&self, from: &str, to: &str, q: &Query) -> Option<Reply> {
        if self.locked(from) || self.locked(to) {
            return Some(error(423, "DiskResourceLockedError", "Resource is locked."));
        }
        if !self.nodes.contains_key(from) || self.hidden(from) {
            return Some(not_found());
        }
        if !self.is_dir(parent(to)) {
            return Some(error(409, "DiskPathDoesntExistsError", &format!("Specified path \"disk:{to}\" doesn't exists.")));
        }
        if self.nodes.contains_key(to) && q.get("overwrite") != Some("true") {
            return Some(error(409, "DiskResourceAlreadyExistsError", &format!("Resource \"disk:{to}\" already exists.")));
        }
        if is_under(to, from) || to == from {
            return Some(error(409, "DiskResourceAlreadyExistsError", "Cannot move a folder into itself."));
        }
        None
    }

    fn move_(&mut self, shared: &Shared, from: &str, to: &str, q: &Query) -> Reply {
        if let Some(refusal) = self.refuse_transfer(from, to, q) {
            return refusal;
        }
        if self.has_children(from) || q.get("force_async") == Some("true") {
            return self.async_op(shared, Effect::Move { from: from.into(), to: to.into() }, vec![from.into(), to.into()]);
        }
        self.relocate(from, to);
        Reply::json(201, json!({"href": more::resource_href(shared, to), "method": "GET", "templated": false}))
    }

    fn upload_link(&mut self, shared: &Shared, p: &str, raw: &str, q: &Query) -> Reply {
        if self.locked(p) {
            return error(423, "DiskResourceLockedError", "Resource is locked.");
        }
        if !self.is_dir(parent(p)) {
            return error(409, "DiskPathDoesntExistsError", &format!("Specified path \"{raw}\" doesn't exists."));
        }
        match self.nodes.get(p) {
            Some(Node::Dir) => {
                return error(
                    409,
                    "DiskPathPointsToExistentDirectoryError",
                    &format!("Specified path \"{raw}\" points to existent directory."),
                );
            }
            Some(Node::File(_)) if q.get("overwrite") != Some("true") => {
                return error(409, "DiskResourceAlreadyExistsError", &format!("Resource \"{raw}\" already exists."));
            }
            _ => {}
        }
        if shared.opts.total_space != u64::MAX && self.used() >= shared.opts.total_space {
            return error(507, "DiskNotEnoughSpaceError", "Insufficient storage.");
        }
        let id = self.next_id();
        let op_id = self.next_id();
        // In progress until the PUT ends, or failed when the link dies unused.
        let expire = Effect::Expire { link: id.clone() };
        let at = Instant::now() + shared.opts.link_ttl;
        let op = Op { done_at: at, effect: expire, locks: vec![], done: false, failed: false };
        self.ops.insert(op_id.clone(), op);
        self.schedule(&op_id, at);
        let throttled = matches!(media_type(p), "compressed" | "data" | "video" | "audio") && p.contains('.');
        self.links.insert(id.clone(), Link { path: p.into(), used: false, op_id: op_id.clone(), throttled });
        Reply::json(200, json!({"operation_id": op_id, "href": format!("{}{id}", shared.upload_base), "method": "PUT", "templated": false}))
    }

    fn operation(&self, id: &str) -> Reply {
        match self.ops.get(id) {
            None => error(404, "DiskOperationNotFoundError", "Operation not found."),
            Some(o) => Reply::json(
                200,
                json!({"status": match (o.done, o.failed) { (false, _) => "in-progress", (true, false) => "success", (true, true) => "failed" }}),
            ),
        }
    }

    fn trash_list(&self) -> Reply {
        let items: Vec<Value> =
            self.trash.iter().map(|t| json!({"path": t.path, "origin_path": t.origin_path, "name": t.path.rsplit('/').next()})).collect();
        Reply::json(
            200,
            json!({"type": "dir", "path": "trash:/", "_embedded": {"items": items, "total": items.len(), "limit": 20, "offset": 0}}),
        )
    }

    fn dump(&self) -> String {
        let mut out = String::from("/\n");
        for (k, n) in &self.nodes {
            let depth = k.matches('/').count();
            let name = k.rsplit('/').next().unwrap();
            match n {
                Node::Dir => out.push_str(&format!("{}{name}/\n", "  ".repeat(depth))),
                Node::File(b) => out.push_str(&format!("{}{name}  ({} bytes)\n", "  ".repeat(depth), b.len())),
            }
        }
        if !self.trash.is_empty() {
            out.push_str(&format!("trash: {} entries\n", self.trash.len()));
        }
        out
    }
}

fn handle_upload(shared: &Shared, head: &Head, reader: &mut BufReader<TcpStream>) -> Next {
    if head.path.starts_with("/sink") {
        // A plain PUT that is read and thrown away: the baseline for `curl -T`.
        return Next::Reply(match drain(reader, head) {
            Ok(()) => Reply::empty(201),
            Err(_) => return Next::Reset,
        });
    }
    if let Some(id) = head.path.strip_prefix("/download/") {
        let _ = drain(reader, head);
        if shared.opts.download_redirect && !head.query.contains("moved=1") {
            let to = format!("/download/{id}?moved=1");
            return Next::Reply(Reply { status: 302, body: Vec::new(), headers: vec![("Location", to)] });
        }
        // Counted as `GET download`, and open to faults and kills like any
        // request: a cut (`Reset`: half the body, then the connection
        // closes), bytes changed on the way (`Corrupt`). No source shows
        // either on the live Disk; they are the harsher cases a client
        // must survive (real-disk-evidence.md, "Dates, custom properties
        // and downloads").
        let path = shared.disk.lock().unwrap().download_path(id).unwrap_or_default();
        let fault = pre(shared, "GET download", &path);
        let reply = shared.disk.lock().unwrap().download_bytes(id);
        return match fault {
            Some(FaultKind::Kill { .. }) => {
                kill_victim(shared);
                Next::Reset
            }
            Some(FaultKind::Reset | FaultKind::ResetAfter) => Next::Cut(reply),
            Some(FaultKind::Corrupt) => {
                let mut reply = reply;
                if let Some(b) = reply.body.last_mut() {
                    *b ^= 0x01;
                }
                Next::Paced(reply)
            }
            _ => Next::Paced(reply),
        };
    }
    let key = route(&head.method, &head.path, true);
    let id = head.path.strip_prefix("/upload-target/").unwrap_or("").to_string();
    let link_path = shared.disk.lock().unwrap().links.get(&id).map(|l| l.path.clone()).unwrap_or_default();
    let fault = pre(shared, &key, &link_path);
    // Counted, not refused: rclone signs every request, the upload PUT too,
    // and the live Disk takes it (M1). Tests assert ysync never sends it.
    if head.header("authorization").is_some() {
        shared.disk.lock().unwrap().token_leaks += 1;
    }
    if head.method != "PUT" {
        let _ = drain(reader, head);
        return Next::Reply(error(405, "MethodNotAllowedError", "Method not allowed."));
    }
    if matches!(fault, Some(FaultKind::Kill { after: false })) {
        kill_victim(shared); // the link stays unused
        return Next::Reset;
    }
    // Single use: the first request spends the link, whatever happens next.
    let (path, op_id, throttled) = {
        let mut d = shared.disk.lock().unwrap();
        match d.links.get_mut(&id) {
            None => {
                drop(d);
                let _ = drain(reader, head);
                return Next::Reply(error(404, "NotFoundError", "Unknown upload link."));
            }
            Some(l) if l.used => {
                drop(d);
                let _ = drain(reader, head);
                return Next::Reply(error(400, "BadRequestError", "Upload link already used."));
            }
            Some(l) => {
                l.used = true;
                (l.path.clone(), l.op_id.clone(), l.throttled)
            }
        }
    };
    // A chunked body (rclone sends every upload so, and the live Disk takes
    // it: M2, rclone PR #9786) is read whole first; its length is known then.
    let chunked = if head.content_length().is_none() && head.chunked() {
        match http::read_body(reader, head) {
            Ok(b) => Some(b),
            Err(_) => return Next::Reset,
        }
    } else {
        None
    };
    let Some(len) = head.content_length().or(chunked.as_ref().map(|b| b.len() as u64)) else {
        return Next::Reply(error(411, "LengthRequiredError", "Content-Length is required."));
    };
    // Both refusals come before the body is read, and it is not drained: a
    // client sending a large body meets a broken pipe, not the status. The
    // space check "at the beginning and end of uploading the file" (the
    // WebDAV docs, R4 in real-disk-evidence.md); the real uploader's order
    // is unknown, this is the harsher one.
    // The body stays unread, so the connection cannot serve another request:
    // it is closed after the answer.
    if len > shared.opts.max_file_size {
        return Next::Reply(closing(Reply::empty(413)));
    }
    if shared.opts.total_space != u64::MAX && shared.disk.lock().unwrap().used() + len > shared.opts.total_space {
        return Next::Reply(closing(error(507, "DiskNotEnoughSpaceError", "Insufficient storage.")));
    }
    if let Some(FaultKind::Delay(d)) = fault {
        thread::sleep(d);
    }
    if shared.opts.sink {
        let sunk = match &chunked {
            Some(body) => Sunk::of(&mut &body[..]),
            None => Sunk::of(&mut reader.take(len)),
        };
        let Some(sunk) = sunk.ok().filter(|s| s.size == len) else { return Next::Reset };
        let mut d = shared.disk.lock().unwrap();
        d.uploaded_bytes += len;
        d.sunk.insert(path.clone(), sunk);
        d.born(&path);
        d.nodes.insert(path, Node::File(Arc::new(Vec::new())));
        if let Some(op) = d.ops.get_mut(&op_id) {
            op.done = true;
        }
        return Next::Reply(Reply::empty(201));
    }
    let given = chunked.is_some();
    let mut data = chunked.unwrap_or_else(|| vec![0u8; len as usize]);
    let half = if matches!(fault, Some(FaultKind::Reset | FaultKind::Stall(_))) { len as usize / 2 } else { data.len() };
    let fail_op = || {
        if let Some(op) = shared.disk.lock().unwrap().ops.get_mut(&op_id) {
            (op.done, op.failed) = (true, true);
        }
    };
    let rate = match (throttled, shared.opts.upload_rate) {
        (true, 0) => shared.opts.throttle_rate,
        (true, r) => r.min(shared.opts.throttle_rate),
        (false, r) => r,
    };
    if !given && read_paced(reader, &mut data[..half], rate).is_err() || half < data.len() {
        fail_op(); // the body did not arrive whole: nothing is stored
        if let Some(FaultKind::Stall(d)) = fault {
            thread::sleep(d);
        }
        return Next::Reset;
    }
    if let Some(FaultKind::Status(s, name)) = fault {
        fail_op();
        return Next::Reply(error(s, name, "Injected fault."));
    }
    // The uploader finalises the file before it answers: a pause that grows
    // with the size, while the operation stays in progress (B1).
    let pause = Duration::from_millis(shared.opts.finalize_ms_per_mib.saturating_mul(len) >> 20);
    if !pause.is_zero() {
        thread::sleep(pause);
    }
    let mut d = shared.disk.lock().unwrap();
    d.settle();
    if !d.is_dir(parent(&path)) {
        return Next::Reply(error(409, "DiskPathDoesntExistsError", "Parent folder vanished."));
    }
    if d.is_dir(&path) {
        return Next::Reply(error(409, "DiskPathPointsToExistentDirectoryError", "A folder is there."));
    }
    if shared.opts.total_space != u64::MAX && d.used() + len > shared.opts.total_space {
        return Next::Reply(Reply::empty(507));
    }
    d.uploaded_bytes += len;
    if throttled {
        d.throttled_bytes += len;
    }
    let data = Arc::new(data);
    if matches!(fault, Some(FaultKind::Accepted)) {
        d.ops.get_mut(&op_id).unwrap().effect = Effect::Store { path, data };
        d.schedule(&op_id, Instant::now() + shared.opts.op_delay);
        return Next::Reply(Reply::empty(202));
    }
    let lag = Duration::from_millis(shared.opts.lag_ms_per_mib.saturating_mul(len) >> 20);
    if !lag.is_zero() {
        d.hidden.insert(path.clone(), Instant::now() + lag);
    }
    d.stamp(&path);
    d.born(&path);
    d.nodes.insert(path, Node::File(data));
    // The upload's operation ends when the Disk shows the file: rclone
    // waits for it before it touches a fresh upload (R1).
    let shown = Instant::now() + lag;
    if let Some(op) = d.ops.get_mut(&op_id) {
        if lag.is_zero() {
            op.done = true;
        } else {
            (op.effect, op.done_at) = (Effect::None, shown);
        }
    }
    if !lag.is_zero() {
        d.schedule(&op_id, shown);
    }
    drop(d);
    if matches!(fault, Some(FaultKind::Kill { after: true })) {
        kill_victim(shared);
        return Next::Reset;
    }
    if matches!(fault, Some(FaultKind::ResetAfter)) {
        return Next::Reset;
    }
    Next::Reply(Reply::empty(201))
}

/// SIGKILL to the process a test named (it may still be starting).
fn kill_victim(shared: &Shared) {
    let victim = shared.disk.lock().unwrap().victim.clone();
    let start = Instant::now();
    let mut pid = victim.load(Ordering::SeqCst);
    while pid == 0 && start.elapsed() < Duration::from_secs(5) {
        thread::sleep(Duration::from_millis(1));
        pid = victim.load(Ordering::SeqCst);
    }
    assert!(pid != 0, "kill_at without a victim");
    // The shell's builtin kill: no procps needed.
    let _ = std::process::Command::new("sh").args(["-c", &format!("kill -KILL {pid}")]).status();
}

/// Reads `buf` full, at most `rate` bytes per second (0: as fast as it comes).
fn read_paced(reader: &mut BufReader<TcpStream>, buf: &mut [u8], rate: u64) -> std::io::Result<()> {
    if rate == 0 {
        return reader.read_exact(buf);
    }
    let start = Instant::now();
    let mut done = 0;
    for chunk in buf.chunks_mut(16 * 1024) {
        reader.read_exact(chunk)?;
        done += chunk.len() as u64;
        let due = Duration::from_secs_f64(done as f64 / rate as f64);
        if let Some(wait) = due.checked_sub(start.elapsed()) {
            thread::sleep(wait);
        }
    }
    Ok(())
}

/// Reads a request's body and throws it away, so that the connection can
/// serve the next request (the live Disk keeps it usable after a refusal:
/// M3 in real-disk-evidence.md).
fn drain(reader: &mut BufReader<TcpStream>, head: &Head) -> std::io::Result<()> {
    if head.chunked() {
        return http::read_body(reader, head).map(drop);
    }
    let n = head.content_length().unwrap_or(0);
    let got = std::io::copy(&mut reader.take(n), &mut std::io::sink())?;
    if got < n { Err(std::io::ErrorKind::UnexpectedEof.into()) } else { Ok(()) }
}

fn media_type(name: &str) -> &'static str {
    let ext = name.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase()).unwrap_or_default();
    match ext.as_str() {
        "txt" | "md" | "doc" | "pdf" => "document",
        "db" | "dat" | "" => "data",
        "zip" | "gz" | "tgz" | "rar" | "7z" => "compressed",
        "mp4" | "avi" | "3gp" | "mkv" | "mov" => "video",
        // A guess, as in ysync: one report of an .mp3 at ~120 KB/s (R7).
        "mp3" | "flac" | "m4a" | "ogg" | "wav" => "audio",
        "jpg" | "jpeg" | "png" | "gif" => "image",
        _ => "unknown",
    }
}

/// Keeps only the listed dotted keys (`_embedded.items.path`); when only
/// children of a key are listed, only those children survive.
pub fn trim_fields(v: &Value, fields: &[&str]) -> Value {
    if fields.is_empty() {
        return v.clone();
    }
    match v {
        Value::Array(items) => Value::Array(items.iter().map(|i| trim_fields(i, fields)).collect()),
        Value::Object(map) => {
            let mut out = serde_json::Map::new();
            for (k, val) in map {
                if fields.contains(&k.as_str()) {
                    out.insert(k.clone(), val.clone());
                    continue;
                }
                let prefix = format!("{k}.");
                let sub: Vec<&str> = fields.iter().filter_map(|f| f.strip_prefix(prefix.as_str())).collect();
                if !sub.is_empty() {
                    out.insert(k.clone(), trim_fields(val, &sub));
                }
            }
            Value::Object(out)
        }
        other => other.clone(),
    }
}
