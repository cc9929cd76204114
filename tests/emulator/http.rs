//! A tiny blocking HTTP/1.1 server piece: read one request head, write one
//! response. Keep-alive is the caller's loop. Enough for the emulator, no more.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::TcpStream;

pub struct Head {
    pub method: String,
    /// Path without the query.
    pub path: String,
    /// Raw query string (without `?`).
    pub query: String,
    pub headers: Vec<(String, String)>,
}

impl Head {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    pub fn content_length(&self) -> Option<u64> {
        self.header("content-length").and_then(|v| v.trim().parse().ok())
    }

    pub fn chunked(&self) -> bool {
        self.header("transfer-encoding").is_some_and(|v| v.to_ascii_lowercase().contains("chunked"))
    }

    pub fn wants_close(&self) -> bool {
        self.header("connection").is_some_and(|v| v.eq_ignore_ascii_case("close"))
    }
}

/// Reads a request head; `Ok(None)` when the client closed the connection.
pub fn read_head(r: &mut BufReader<TcpStream>) -> io::Result<Option<Head>> {
    let mut line = String::new();
    if r.read_line(&mut line)? == 0 {
        return Ok(None);
    }
    let mut parts = line.split_whitespace();
    let (Some(method), Some(target)) = (parts.next(), parts.next()) else {
        return Err(io::Error::new(io::ErrorKind::InvalidData, format!("bad request line {line:?}")));
    };
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let mut head = Head { method: method.into(), path: path.into(), query: query.into(), headers: Vec::new() };
    loop {
        line.clear();
        if r.read_line(&mut line)? == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        let l = line.trim_end();
        if l.is_empty() {
            return Ok(Some(head));
        }
        if let Some((k, v)) = l.split_once(':') {
            head.headers.push((k.trim().into(), v.trim().into()));
        }
    }
}

/// Reads a whole body (Content-Length or chunked) into memory.
pub fn read_body(r: &mut BufReader<TcpStream>, head: &Head) -> io::Result<Vec<u8>> {
    if head.chunked() {
        let mut out = Vec::new();
        loop {
            let mut size = String::new();
            r.read_line(&mut size)?;
            let n = usize::from_str_radix(size.trim().split(';').next().unwrap_or(""), 16)
                .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "bad chunk size"))?;
            let mut chunk = vec![0; n + 2];
            r.read_exact(&mut chunk)?;
            if n == 0 {
                return Ok(out);
            }
            out.extend_from_slice(&chunk[..n]);
        }
    }
    let mut out = vec![0; head.content_length().unwrap_or(0) as usize];
    r.read_exact(&mut out)?;
    Ok(out)
}

pub struct Reply {
    pub status: u16,
    pub body: Vec<u8>,
    pub headers: Vec<(&'static str, String)>,
}

impl Reply {
    pub fn json(status: u16, v: serde_json::Value) -> Reply {
        Reply { status, body: serde_json::to_vec(&v).unwrap(), headers: Vec::new() }
    }

    pub fn empty(status: u16) -> Reply {
        Reply { status, body: Vec::new(), headers: Vec::new() }
    }

    pub fn text(status: u16, text: String) -> Reply {
        Reply { status, body: text.into_bytes(), headers: vec![("Content-Type", "text/plain; charset=utf-8".into())] }
    }
}

pub fn write_reply(w: &mut TcpStream, reply: &Reply) -> io::Result<()> {
    write_reply_at(w, reply, 0)
}

/// Writes `reply`, its body at most `rate` bytes/s (0: at once), a few
/// KiB at a time: a line that is slow but never stalls.
pub fn write_reply_at(w: &mut TcpStream, reply: &Reply, rate: u64) -> io::Result<()> {
    let mut out = format!("HTTP/1.1 {} {}\r\n", reply.status, reason(reply.status));
    if !reply.headers.iter().any(|(k, _)| *k == "Content-Type") {
        let ct = if reply.status < 300 { "application/json; charset=utf-8" } else { "application/json" };
        out.push_str(&format!("Content-Type: {ct}\r\n"));
    }
    for (k, v) in &reply.headers {
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    if !reply.headers.iter().any(|(k, _)| *k == "Content-Length") {
        out.push_str(&format!("Content-Length: {}\r\n", reply.body.len()));
    }
    out.push_str("\r\n");
    let mut bytes = out.into_bytes();
    if rate == 0 {
        bytes.extend_from_slice(&reply.body);
        w.write_all(&bytes)?;
        return w.flush();
    }
    w.write_all(&bytes)?;
    let started = std::time::Instant::now();
    let mut sent = 0u64;
    for chunk in reply.body.chunks(4096) {
        w.write_all(chunk)?;
        w.flush()?;
        sent += chunk.len() as u64;
        let due = std::time::Duration::from_micros(sent * 1_000_000 / rate);
        if let Some(wait) = due.checked_sub(started.elapsed()) {
            std::thread::sleep(wait);
        }
    }
    Ok(())
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        302 => "Found",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        409 => "Conflict",
        411 => "Length Required",
        413 => "Payload Too Large",
        423 => "Locked",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        507 => "Insufficient Storage",
        _ => "Status",
    }
}

/// Form-style query decoding, as the Disk does it: `+` is a space, then `%XX`.
/// `None` when the result is not UTF-8 or an escape is malformed.
pub fn form_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 2;
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

pub fn parse_query(q: &str) -> Option<Vec<(String, String)>> {
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            Some((form_decode(k)?, form_decode(v)?))
        })
        .collect()
}
