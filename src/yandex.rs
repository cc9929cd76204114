//! `Remote` over the Yandex Disk REST API, with one keep-alive `ureq::Agent`.
//!
//! - Paths travel as `disk:/…`, percent-encoded except RFC 3986 unreserved
//!   characters: the server decodes the query form-style, so a raw `+` would
//!   become a space, and a name with `:` needs the explicit `disk:` prefix.
//! - The token goes to the API host only, never to upload links.
//! - HTTP 202 answers are polled until the operation ends.
//! - 204 bodies are never parsed.

use std::io::Read;
use std::time::Duration;

use serde::Deserialize;
use ureq::http::Response;
use ureq::{Agent, Body, SendBody};

use crate::digest::Hex;
use crate::remote::{Dates, DiskInfo, Error, Item, Link, OpStatus, Placed, Remote, RemoteFile};
use crate::retry::{Pacer, Poll, retry};

/// How long one asynchronous server operation may take before ysync gives up
/// on it for this cycle (deleting a huge folder can take minutes).
const OPERATION_LIMIT: Duration = Duration::from_secs(600);
const USER_AGENT: &str = concat!("ysync/", env!("CARGO_PKG_VERSION"));
/// Redirects a download link may take to its bytes.
const DOWNLOAD_REDIRECTS: usize = 5;

pub struct Yandex {
    agent: Agent,
    api: String,
    auth: String,
    timeout: Duration,
    /// Every API call goes through it (R6).
    pacer: Pacer,
}

#[derive(Deserialize)]
struct LinkJson {
    href: String,
    #[serde(default)]
    operation_id: Option<String>,
}

#[derive(Deserialize)]
struct Operation {
    status: String,
}

/// The methods of the API calls (uploads go through `put_body`).
#[derive(Clone, Copy)]
enum Method {
    Get,
    Delete,
    Put,
    Post,
}

impl Method {
    fn name(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Delete => "DELETE",
            Method::Put => "PUT",
            Method::Post => "POST",
        }
    }
}

/// The fields ysync reads of a Resource (a file's meta, or a listing item).
#[derive(Deserialize)]
struct Resource {
    #[serde(default)]
    name: String,
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    size: u64,
    #[serde(default)]
    sha256: String,
    #[serde(default)]
    md5: String,
    #[serde(default)]
    modified: String,
    #[serde(default)]
    created: String,
    #[serde(default)]
    custom_properties: Option<Props>,
}

/// The custom properties ysync reads (others are left alone, and one of
/// another type than a string is as good as none: it is someone else's).
#[derive(Deserialize, Default)]
struct Props {
    #[serde(default, deserialize_with = "any_str")]
    rclone_modified: Option<String>,
    #[serde(default, deserialize_with = "any_str")]
    ysync_uploaded: Option<String>,
    #[serde(default, deserialize_with = "any_str")]
    ysync_replaced: Option<String>,
}

/// A string, or `None` for a value of any other type (no `serde_json::Value`
/// in the binary: a second JSON model costs 20 KB on a router).
fn any_str<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    struct Lenient;
    impl<'de> serde::de::Visitor<'de> for Lenient {
        type Value = Option<String>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("any value")
        }
        fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
            Ok(Some(v.to_string()))
        }
        fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_unit<E>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut a: A) -> Result<Self::Value, A::Error> {
            while a.next_element::<serde::de::IgnoredAny>()?.is_some() {}
            Ok(None)
        }
        fn visit_map<A: serde::de::MapAccess<'de>>(self, mut a: A) -> Result<Self::Value, A::Error> {
            while a.next_entry::<serde::de::IgnoredAny, serde::de::IgnoredAny>()?.is_some() {}
            Ok(None)
        }
    }
    d.deserialize_any(Lenient)
}

impl Resource {
    fn file(&self) -> RemoteFile {
        let props = self.custom_properties.as_ref();
        let secs = |t: &str| crate::units::parse_rfc3339(t).map_or(0, |ns| ns.div_euclid(1_000_000_000).max(0) as u64);
        let dates = Dates {
            mtime_ns: props.and_then(|p| p.rclone_modified.as_deref()).and_then(crate::units::parse_rfc3339),
            uploaded: props.and_then(|p| p.ysync_uploaded.as_deref()).and_then(|t| t.parse().ok()).unwrap_or(0),
            replaced: props.and_then(|p| p.ysync_replaced.as_deref()).and_then(|t| t.parse().ok()).unwrap_or(0),
            changed: secs(if self.kind == "dir" { &self.created } else { &self.modified }),
        };
        RemoteFile { size: self.size, sha256: Hex::known(&self.sha256), md5: Hex::known(&self.md5), dates }
    }
}

#[derive(Deserialize)]
struct Listing {
    #[serde(rename = "type")]
    kind: String,
    #[serde(rename = "_embedded")]
    embedded: Option<Embedded>,
}

#[derive(Deserialize)]
struct Embedded {
    items: Vec<Resource>,
    #[serde(default)]
    total: Option<u64>,
}

/// Entries per listing page (the Disk's default is 20).
const PAGE: usize = 1000;

/// A folder listing longer than this (2 million entries, twice the
/// largest folder ysync is measured with) is a server that does not end,
/// not a folder: the loop over pages ends there, and memory with it.
const MAX_PAGES: usize = 2_000;

#[derive(Deserialize)]
struct Disk {
    total_space: u64,
    used_space: u64,
    #[serde(default)]
    max_file_size: u64,
    #[serde(default)]
    user: Option<User>,
}

#[derive(Deserialize)]
struct User {
    #[serde(default)]
    login: String,
}

#[derive(Deserialize, Default)]
struct ApiError {
    #[serde(default)]
    error: String,
    #[serde(default)]
    description: String,
}

impl Yandex {
    /// `PATCH /resources` with `{"custom_properties": props}` (API notes
    /// 3.12; yadisk's recorded `test_patch`): keys merge, others stay.
    fn patch<T: serde::Serialize>(&mut self, path: &str, props: &T) -> Result<(), Error> {
        #[derive(serde::Serialize)]
        struct Patch<'a, T> {
            custom_properties: &'a T,
        }
        let body = serde_json::to_string(&Patch { custom_properties: props }).expect("serialises");
        let body = body.as_str();
        let url = self.resource_url("resources", path, "&fields=type");
        retry(&self.pacer, "PATCH", || {
            log::trace!("PATCH {url}");
            let res = self.agent.patch(&url).header("Authorization", &self.auth).content_type("application/json").send(body);
            let mut resp = check(res.map_err(transport)?)?;
            resp.body_mut().read_to_string().map_err(transport).map(drop)
        })
    }

    pub fn new(api_url: &str, token: &str, timeout: Duration) -> Yandex {
        Yandex {
            agent: agent(timeout),
            api: api_url.trim_end_matches('/').to_string(),
            auth: format!("OAuth {token}"),
            timeout,
            pacer: Pacer::default(),
        }
    }

    fn resource_url(&self, endpoint: &str, path: &str, extra: &str) -> String {
        format!("{}/{endpoint}?path={}{extra}", self.api, encode(&format!("disk:{path}")))
    }

    /// Sends an API request (with the token), retrying transient failures,
    /// and returns the status and the body (small JSON; empty for 204).
    /// Every call ysync makes to the API host is safe to repeat.
    fn api_call(&self, method: Method, url: &str) -> Result<(u16, String), Error> {
        retry(&self.pacer, method.name(), || {
            let mut resp = self.api_call_once(method, url)?;
            let status = resp.status().as_u16();
            if status == 204 {
                return Ok((status, String::new()));
            }
            Ok((status, resp.body_mut().read_to_string().map_err(transport)?))
        })
    }

    fn api_call_once(&self, method: Method, url: &str) -> Result<Response<Body>, Error> {
        log::trace!("{} {url}", method.name());
        let res = match method {
            Method::Get => self.agent.get(url).header("Authorization", &self.auth).call(),
            Method::Delete => self.agent.delete(url).header("Authorization", &self.auth).call(),
            Method::Put => self.agent.put(url).header("Authorization", &self.auth).send_empty(),
            Method::Post => self.agent.post(url).header("Authorization", &self.auth).send_empty(),
        };
        check(res.map_err(transport)?)
    }

    /// A call that may answer 202 with an operation to wait for. A failed
    /// operation is repeated as a whole, as the docs advise.
    fn operation_call(&self, method: Method, url: &str) -> Result<(), Error> {
        let mut repeats = 0;
        loop {
            let result = match self.api_call(method, url) {
                Ok((202, body)) => self.wait(&json::<LinkJson>(&body)?.href),
                Ok(_) => Ok(()),
                Err(e) => Err(e),
            };
            match result {
                Err(Error::OperationFailed(s)) if repeats < 2 => {
                    repeats += 1;
                    log::debug!("{} {url}: the operation ended {s}; repeating it", method.name());
                }
                other => return other,
            }
        }
    }

    /// Polls an operation href until it ends. An operation the Disk no
    /// longer knows (404 `DiskOperationNotFoundError`) has failed: its work
    /// may not have happened (R9 in real-disk-evidence.md), so it is never
    /// taken for a success; the caller repeats the request.
    fn wait(&self, href: &str) -> Result<(), Error> {
        let url = self.operation_url(href)?;
        let mut poll = Poll::with(Duration::from_millis(100), Duration::from_secs(2), OPERATION_LIMIT);
        loop {
            let op: Operation = match self.api_call(Method::Get, &url) {
                Ok((_, body)) => json(&body)?,
                Err(Error::NotFound) => return Err(Error::OperationFailed("the Disk no longer knows the operation".into())),
                Err(e) => return Err(e),
            };
            match op.status.as_str() {
                "success" => return Ok(()),
                "failed" | "failure" => return Err(Error::OperationFailed(op.status)),
                _ if !poll.again() => {
                    return Err(Error::Timeout(format!("operation still {} after {:?}", op.status, OPERATION_LIMIT)));
                }
                _ => {}
            }
        }
    }

    /// Where to poll the operation an href names. The token goes to the
    /// configured API host only: an href there is followed (an `http://`
    /// one with the API's scheme); on any other host (the Disk's answers
    /// name `cloud-api.yandex.net` whatever host was asked, sometimes over
    /// `http://`) only the operation's id is taken from it, and polled at
    /// `{api_url}/operations/<id>`. R8 in real-disk-evidence.md.
    fn operation_url(&self, href: &str) -> Result<String, Error> {
        let (scheme, rest) = self.api.split_once("://").expect("api_url validated by config");
        let authority = rest.split('/').next().unwrap_or(rest);
        for s in ["https", "http"] {
            if let Some(tail) = href.strip_prefix(&format!("{s}://{authority}/")) {
                return Ok(format!("{scheme}://{authority}/{tail}"));
            }
        }
        // `…/operations/<id>`, or the `…/operations?id=<id>` of the trash docs.
        let id = match href.rsplit_once("/operations/") {
            Some((_, tail)) => tail.split(['?', '#']).next().unwrap_or(""),
            None => href.split_once("operations?id=").map_or("", |(_, t)| t.split('&').next().unwrap_or("")),
        };
        // Ids are hex; nothing else is put into a URL that carries the token.
        if id.is_empty() || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
            return Err(Error::Protocol(format!("an operation link without a plain operation id, not followed: {href}")));
        }
        Ok(format!("{}/operations/{id}", self.api))
    }

    fn put_body(&self, href: &str, body: &mut dyn Read, size: u64) -> Result<Response<Body>, Error> {
        // After the last byte the uploader finalises the file before it
        // answers, longer for bigger files (rclone's docs: about 2 minutes
        // per GiB; ydcmd timed out on 2.97 GB files that did land: B1 in
        // real-disk-evidence.md). The answer gets twice that on top of
        // `timeout`; the body's writes keep `timeout` each.
        let answer = self.timeout + Duration::from_secs(size.saturating_mul(240) >> 30);
        // No Authorization here: upload links are capability URLs on another host.
        let res = self
            .agent
            .put(href)
            .config()
            .timeout_recv_response(Some(answer))
            .timeout_per_read(Some(answer))
            .build()
            .header("Content-Length", size.to_string())
            .header("Content-Type", "application/octet-stream")
            .send(SendBody::from_reader(body));
        check(res.map_err(transport)?)
    }
}

impl Yandex {
    /// A folder's listing, page by page, at most `max_pages` of them.
    fn list_pages(&mut self, path: &str, max_pages: usize) -> Result<Option<Vec<Item>>, Error> {
        const FIELDS: &str = "type,_embedded.total,_embedded.items.name,_embedded.items.type,\
                              _embedded.items.size,_embedded.items.sha256,_embedded.items.md5,\
                              _embedded.items.modified,_embedded.items.created,_embedded.items.custom_properties";
        let mut items: Vec<Item> = Vec::new();
        let mut pages = 0;
        loop {
            pages += 1;
            if pages > max_pages {
                return Err(Error::Protocol(format!("the listing of {path} did not end after {max_pages} pages of {PAGE}")));
            }
            let extra = format!("&limit={PAGE}&offset={}&fields={FIELDS}", items.len());
            let page: Listing = match self.api_call(Method::Get, &self.resource_url("resources", path, &extra)) {
                Ok((_, body)) => json(&body)?,
                Err(Error::NotFound) => return Ok(None),
                Err(e) => return Err(e),
            };
            let Some(embedded) = page.embedded.filter(|_| page.kind == "dir") else { return Ok(None) };
            let got = embedded.items.len();
            // A server that ignores `offset` sends the first page again.
            let before = &items[items.len().saturating_sub(got)..];
            if got > 0 && before.len() == got && before.iter().zip(&embedded.items).all(|(a, b)| a.name == b.name) {
                return Err(Error::Protocol(format!("the listing of {path} sent the same page twice (is `offset` ignored?)")));
            }
            items.extend(embedded.items.into_iter().map(|i| Item { dir: i.kind == "dir", file: i.file(), name: i.name }));
            // The listing is not a snapshot; stop on a short page or at the total.
            if got < PAGE || embedded.total.is_some_and(|t| items.len() as u64 >= t) {
                return Ok(Some(items));
            }
        }
    }
}

impl Remote for Yandex {
    fn mkdir(&mut self, path: &str) -> Result<(), Error> {
        match self.api_call(Method::Put, &self.resource_url("resources", path, "")) {
            Ok(_) | Err(Error::IsFolder) => Ok(()),
            Err(e) => Err(e),
        }
    }

    fn upload_link(&mut self, path: &str, overwrite: bool) -> Result<Link, Error> {
        let url = self.resource_url("resources/upload", path, &format!("&overwrite={overwrite}"));
        let link: LinkJson = json(&self.api_call(Method::Get, &url)?.1)?;
        Ok(Link { href: link.href, operation: link.operation_id.filter(|id| !id.is_empty()) })
    }

    fn put(&mut self, link: &Link, body: &mut dyn Read, size: u64) -> Result<Placed, Error> {
        let resp = self.put_body(&link.href, body, size)?;
        if resp.status().as_u16() != 202 {
            return Ok(Placed::Now);
        }
        // Received but not yet placed on the Disk: wait for it.
        if let Some(op) = &link.operation {
            self.wait(&format!("{}/operations/{}", self.api, encode(op)))?;
        }
        Ok(Placed::Later)
    }

    fn operation(&mut self, id: &str) -> Result<OpStatus, Error> {
        match self.api_call(Method::Get, &format!("{}/operations/{}", self.api, encode(id))) {
            Ok((_, body)) => Ok(match json::<Operation>(&body)?.status.as_str() {
                "success" => OpStatus::Success,
                "failed" | "failure" => OpStatus::Failed,
                _ => OpStatus::InProgress,
            }),
            Err(Error::NotFound) => Ok(OpStatus::Failed),
            Err(e) => Err(e),
        }
    }

    fn delete(&mut self, path: &str, permanently: bool, md5: Option<Hex<16>>) -> Result<(), Error> {
        let guard = md5.map(|m| format!("&md5={m}")).unwrap_or_default();
        let url = self.resource_url("resources", path, &format!("&permanently={permanently}{guard}"));
        match self.operation_call(Method::Delete, &url) {
            Err(Error::NotFound) => Ok(()),
            other => other,
        }
    }

    fn move_to(&mut self, from: &str, to: &str, overwrite: bool) -> Result<(), Error> {
        let extra = format!("&from={}&overwrite={overwrite}", encode(&format!("disk:{from}")));
        self.operation_call(Method::Post, &self.resource_url("resources/move", to, &extra))
    }

    /// `GET /resources/download` gives a link on the downloader host, which
    /// answers with the bytes or redirects (API notes 3.11: "302 redirects
    /// are possible, follow them"); followed here, at most
    /// `DOWNLOAD_REDIRECTS` times, a relative `Location` against the link it
    /// came from, never from `https` down to plain `http`, and without the
    /// token, as for uploads. The body has no total time limit (a version
    /// of 10 GB takes as long as it takes), only `timeout` per read: a
    /// stalled download ends, a slow one does not. The writer bounds what
    /// it takes (`history::fetch`: the listed size).
    fn download(&mut self, path: &str, to: &mut dyn std::io::Write) -> Result<u64, Error> {
        let link: LinkJson = json(&self.api_call(Method::Get, &self.resource_url("resources/download", path, ""))?.1)?;
        let mut href = link.href;
        for _ in 0..=DOWNLOAD_REDIRECTS {
            let resp = self
                .agent
                .get(&href)
                .config()
                .timeout_recv_body(None)
                .timeout_per_read(Some(self.timeout))
                .build()
                .call()
                .map_err(transport)?;
            if resp.status().is_redirection() {
                let next = resp.headers().get("location").and_then(|v| v.to_str().ok());
                let next = next.ok_or_else(|| Error::Protocol("a download redirect without a Location".into()))?;
                href = redirect(&href, next)?;
                continue;
            }
            let resp = check(resp)?;
            let mut body = resp.into_body().into_reader();
            return std::io::copy(&mut body, to).map_err(|e| Error::Network(format!("downloading {path}: {e}")));
        }
        Err(Error::Protocol(format!("the download of {path} was redirected more than {DOWNLOAD_REDIRECTS} times")))
    }

    fn list(&mut self, path: &str) -> Result<Option<Vec<Item>>, Error> {
        self.list_pages(path, MAX_PAGES)
    }

    fn exists(&mut self, path: &str) -> Result<bool, Error> {
        match self.api_call(Method::Get, &self.resource_url("resources", path, "&fields=type")) {
            Ok(_) => Ok(true),
            Err(Error::NotFound) => Ok(false),
            Err(e) => Err(e),
        }
    }
    fn stat(&mut self, path: &str) -> Result<Option<RemoteFile>, Error> {
        let url = self.resource_url("resources", path, "&fields=type,size,sha256,md5,modified,custom_properties");
        match self.api_call(Method::Get, &url) {
            Ok((_, body)) => {
                let m: Resource = json(&body)?;
                Ok((m.kind == "file").then(|| m.file()))
            }
            Err(Error::NotFound) => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn set_token(&mut self, token: &str) {
        self.auth = format!("OAuth {token}");
    }

    /// `rclone_modified` and `ysync_uploaded`, in one [`Yandex::patch`].
    fn set_date(&mut self, path: &str, mtime_ns: i64, uploaded: Option<u64>) -> Result<(), Error> {
        #[derive(serde::Serialize)]
        struct Dated {
            rclone_modified: String,
            #[serde(skip_serializing_if = "Option::is_none")]
            ysync_uploaded: Option<String>,
        }
        self.patch(path, &Dated { rclone_modified: crate::units::utc_ns(mtime_ns), ysync_uploaded: uploaded.map(|u| u.to_string()) })
    }

    fn mark_replaced(&mut self, path: &str, at: u64) -> Result<(), Error> {
        #[derive(serde::Serialize)]
        struct Replaced {
            ysync_replaced: String,
        }
        self.patch(path, &Replaced { ysync_replaced: at.to_string() })
    }

    fn disk_info(&mut self) -> Result<DiskInfo, Error> {
        let url = format!("{}/?fields=total_space,used_space,max_file_size,user.login", self.api);
        let d: Disk = json(&self.api_call(Method::Get, &url)?.1)?;
        Ok(DiskInfo {
            login: d.user.map(|u| u.login).unwrap_or_default(),
            total: d.total_space,
            used: d.used_space,
            free: d.total_space.saturating_sub(d.used_space),
            max_file_size: d.max_file_size,
        })
    }
}

/// The HTTP client: keep-alive, no redirects (the token must not follow
/// one), every status returned as an answer rather than an error.
pub fn agent(timeout: Duration) -> Agent {
    Agent::config_builder()
        .http_status_as_error(false)
        .timeout_connect(Some(timeout))
        .timeout_recv_response(Some(timeout))
        // A whole answer body (a listing page is some 250 KB) gets ten times
        // `timeout`, so a slow line still lists while a trickle cannot hold
        // a cycle for ever; each read has `timeout` of its own (below).
        .timeout_recv_body(Some(timeout * 10))
        .timeout_send_request(Some(timeout))
        // A peer that stops reading or answering is a stall, not a slow
        // transfer: each write and each read gets `timeout` on its own,
        // however long the whole upload takes.
        .timeout_per_write(Some(timeout))
        .timeout_per_read(Some(timeout))
        .user_agent(USER_AGENT)
        .max_redirects(0)
        .build()
        .into()
}

/// Where a redirect from `from` to `location` leads: an absolute URL as
/// it is, a path (`/dl/2`) on the same host, a relative one beside
/// `from`'s path (RFC 3986 §5.2, without dot segments, which no
/// downloader sends). From `https` only to `https`, unless the host is
/// this machine (the emulator).
fn redirect(from: &str, location: &str) -> Result<String, Error> {
    let (scheme, rest) = from.split_once("://").ok_or_else(|| Error::Protocol(format!("not a URL: {from}")))?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or(rest);
    let next = if location.contains("://") {
        location.to_string()
    } else if let Some(path) = location.strip_prefix("//") {
        format!("{scheme}://{path}")
    } else if location.starts_with('/') {
        format!("{scheme}://{authority}{location}")
    } else {
        let path = rest[authority.len()..].split(['?', '#']).next().unwrap_or("");
        let dir = path.rsplit_once('/').map_or("", |(d, _)| d);
        format!("{scheme}://{authority}{dir}/{location}")
    };
    if scheme == "https" && !next.starts_with("https://") && !crate::config::is_loopback_url(&next) {
        return Err(Error::Protocol(format!("a download redirect from https to {}; not followed", next.split("://").next().unwrap_or(""))));
    }
    Ok(next)
}

/// Percent-encodes everything except RFC 3986 unreserved characters.
pub fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn json<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, Error> {
    serde_json::from_str(text).map_err(|e| Error::Protocol(format!("{e} in {:?}", truncate(text, 200))))
}

fn truncate(s: &str, n: usize) -> &str {
    match s.char_indices().nth(n) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

/// Maps an HTTP error status (and the Disk's `error` name) to `Error`.
fn check(mut resp: Response<Body>) -> Result<Response<Body>, Error> {
    let status = resp.status().as_u16();
    if status < 400 {
        return Ok(resp);
    }
    let retry_after = resp.headers().get("retry-after").and_then(|v| v.to_str().ok()).and_then(|v| v.trim().parse().ok());
    let body = resp.body_mut().with_config().limit(64 * 1024).read_to_string().unwrap_or_default();
    let ApiError { error: name, description } = serde_json::from_str(&body).unwrap_or_default();
    Err(match (status, name.as_str()) {
        (401, _) => Error::Unauthorized,
        (403, _) => Error::Forbidden(if name.is_empty() { "Forbidden".into() } else { name }),
        (404, _) => Error::NotFound,
        (409, "DiskPathDoesntExistsError") => Error::ParentMissing,
        (409, "DiskPathPointsToExistentDirectoryError") => Error::IsFolder,
        (409, "DiskResourceAlreadyExistsError") => Error::AlreadyExists,
        (409, "MD5DifferError") => Error::Md5Differs,
        (413, _) => Error::TooLarge,
        (423, _) => Error::Locked(if name.is_empty() { "Locked".into() } else { name }),
        (429, _) => Error::TooManyRequests(retry_after),
        (507, _) => Error::InsufficientStorage,
        (500..=599, _) => Error::Server(status),
        _ => Error::Http { status, name, description },
    })
}

fn transport(e: ureq::Error) -> Error {
    match e {
        ureq::Error::Timeout(t) => Error::Timeout(t.to_string()),
        ureq::Error::Io(io) if io.kind() == std::io::ErrorKind::TimedOut => Error::Timeout(io.to_string()),
        other => Error::Network(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoding_keeps_only_unreserved_characters() {
        assert_eq!(encode("disk:/a+b.txt"), "disk%3A%2Fa%2Bb.txt");
        assert_eq!(encode("100% done?#&=;"), "100%25%20done%3F%23%26%3D%3B");
        assert_eq!(encode("time 10:30"), "time%2010%3A30");
        assert_eq!(encode("Фото"), "%D0%A4%D0%BE%D1%82%D0%BE");
        assert_eq!(encode("A-z_0.9~"), "A-z_0.9~");
        assert_eq!(encode("\"'"), "%22%27");
    }

    /// A server on this machine that answers every request with `page(n)`
    /// (n counting from 0), as a hostile or broken API host would.
    fn serve(page: impl Fn(usize) -> String + Send + 'static) -> String {
        use std::io::{BufRead, BufReader, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/v1/disk", listener.local_addr().unwrap());
        std::thread::spawn(move || {
            let mut n = 0;
            for stream in listener.incoming().flatten() {
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut w = stream;
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 {
                        break;
                    }
                    if line != "\r\n" {
                        continue;
                    }
                    let body = page(n);
                    n += 1;
                    let head = format!("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n", body.len());
                    if w.write_all(head.as_bytes()).and_then(|()| w.write_all(body.as_bytes())).is_err() {
                        break;
                    }
                }
            }
        });
        url
    }

    fn page_of(names: impl Iterator<Item = String>) -> String {
        let items: Vec<String> = names.map(|n| format!(r#"{{"name":"{n}","type":"file","size":1}}"#)).collect();
        format!(r#"{{"type":"dir","_embedded":{{"items":[{}]}}}}"#, items.join(","))
    }

    #[test]
    fn a_listing_that_never_ends_is_cut_off_not_held() {
        // Finding 21: pages without `total`, the offset ignored, or fresh
        // names for ever; memory grew until MAX_PAGES pages of 1000.
        let same = serve(|_| page_of((0..PAGE).map(|i| format!("f{i}"))));
        let e = Yandex::new(&same, "t", Duration::from_secs(5)).list("/x").unwrap_err();
        assert!(e.to_string().contains("sent the same page twice"), "{e}");
        let fresh = serve(|n| page_of((0..PAGE).map(move |i| format!("p{n}-{i}"))));
        let e = Yandex::new(&fresh, "t", Duration::from_secs(5)).list_pages("/x", 5).unwrap_err();
        assert!(e.to_string().contains("did not end after 5 pages"), "{e}");
        // An honest short page ends it.
        let short = serve(|_| page_of((0..3).map(|i| format!("f{i}"))));
        assert_eq!(Yandex::new(&short, "t", Duration::from_secs(5)).list("/x").unwrap().unwrap().len(), 3);
    }

    #[test]
    fn download_redirects_resolve_relative_locations_and_never_downgrade() {
        let from = "https://downloader.disk.yandex.ru/disk/abc/file?x=1";
        assert_eq!(redirect(from, "https://other.example/dl").unwrap(), "https://other.example/dl");
        assert_eq!(redirect(from, "/dl/2").unwrap(), "https://downloader.disk.yandex.ru/dl/2");
        assert_eq!(redirect(from, "next?y=2").unwrap(), "https://downloader.disk.yandex.ru/disk/abc/next?y=2");
        assert_eq!(redirect(from, "//cdn.example/f").unwrap(), "https://cdn.example/f");
        assert!(redirect(from, "http://downloader.disk.yandex.ru/dl").is_err(), "no https -> http");
        assert_eq!(redirect("http://127.0.0.1:8765/d/1", "/d/2").unwrap(), "http://127.0.0.1:8765/d/2");
        assert!(redirect(from, "http://127.0.0.1:9/d").is_ok(), "the emulator on this machine");
    }

    #[test]
    fn operation_links_are_followed_only_on_the_api_host() {
        let y = Yandex::new("https://cloud-api.yandex.net/v1/disk", "t", Duration::from_secs(1));
        let op = |href: &str| y.operation_url(href);
        assert_eq!(op("http://cloud-api.yandex.net/v1/disk/operations/ab").unwrap(), "https://cloud-api.yandex.net/v1/disk/operations/ab");
        // Another host: only the id is taken, and asked of the API host.
        assert_eq!(op("https://evil.example/v1/disk/operations/ab").unwrap(), "https://cloud-api.yandex.net/v1/disk/operations/ab");
        assert_eq!(op("https://x.example/v1/disk/operations?id=cd12&x=1").unwrap(), "https://cloud-api.yandex.net/v1/disk/operations/cd12");
        assert!(op("https://x.example/v1/disk/operations?id=c%2Fd").is_err(), "only plain ids");
        assert!(op("https://cloud-api.yandex.net.evil.example/x").is_err());
        assert!(op("https://evil.example/v1/disk/operations/a/b").is_err());
        let com = Yandex::new("https://cloud-api.yandex.com/v1/disk", "t", Duration::from_secs(1));
        assert_eq!(
            com.operation_url("https://cloud-api.yandex.net/v1/disk/operations/ab").unwrap(),
            "https://cloud-api.yandex.com/v1/disk/operations/ab",
            "rclone's host: the Disk's links name the .net one"
        );
    }
}
