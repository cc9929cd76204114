//! Yandex OAuth's device flow, as far as `ysync login` uses it, served on
//! the API port (`oauth_url` = `http://127.0.0.1:PORT`):
//!
//! - `POST /device/code` (form: `client_id`, optional `device_id` of 6–50
//!   printable ASCII characters, `device_name` up to 100 characters) →
//!   `device_code`, `user_code`, `verification_url`, `interval`, `expires_in`;
//! - `POST /token` (form: `grant_type=device_code`, `code`, `client_id`,
//!   `client_secret`) → 400 `authorization_pending` until the scripted
//!   user answers, then the token (the emulator's own, issued anew for
//!   `token_life`) with a refresh token, or `access_denied`; `invalid_grant`
//!   once the codes' lifetime is over;
//! - `POST /token` with `grant_type=refresh_token` (Yandex ID's docs,
//!   "Update a token": `refresh_token`, `client_id`, `client_secret`) → a
//!   new token and a new refresh token (the old refresh token is spent), or,
//!   while the token has more than `keep_while_left` to live, the same token
//!   back ("the main token may not change … if it still has plenty of time
//!   before it expires"); an unknown refresh token is `invalid_grant`.
//!
//! Tokens expire: the Disk answers 401 to one past its life.
//!
//! Strict where a careless client would go wrong: the body must be a form,
//! the client credentials must match, and a poll that comes sooner than the
//! interval (plus 5 s for every `slow_down` given) is answered `slow_down`
//! and counted in `early_polls`. Error names follow RFC 8628, which the
//! device flow of Yandex ID implements.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde_json::json;

use super::http::{self, Head, Reply};

/// How the scripted user behaves, and what the server announces.
#[derive(Debug, Clone)]
pub struct Script {
    pub client_id: String,
    pub client_secret: String,
    /// The polling interval announced, in seconds (Yandex: 5).
    pub interval: u64,
    /// The codes' lifetime, in seconds (Yandex: 600).
    pub expires_in: u64,
    /// Polls answered `authorization_pending` before the user answers.
    pub pending_polls: u32,
    /// The user denies access instead of allowing it.
    pub deny: bool,
    /// These polls (1-based) are answered `slow_down` even when on time.
    pub slow_down_at: Vec<u32>,
    /// Answer an expired code with RFC 8628's `expired_token` instead of the
    /// `invalid_grant` that Yandex sends (yadisk documents `invalid_grant`,
    /// "invalid or expired device_code", and `bad_verification_code`: R5 in
    /// real-disk-evidence.md), to test ysync's fallback.
    pub rfc_names: bool,
    /// How long a token lives (Yandex: a year; the recorded exchange says
    /// `expires_in: 31535338`).
    pub token_life: Duration,
    /// A refresh while the token has more than this left gives the same
    /// token back; `None`: half of `token_life`. Yandex does not say where
    /// "plenty of time" ends.
    pub keep_while_left: Option<Duration>,
}

impl Default for Script {
    fn default() -> Script {
        Script {
            client_id: "test-client".into(),
            client_secret: "test-secret".into(),
            interval: 1,
            // The recorded exchange (YD-rec test_device_code_auth.json).
            expires_in: 300,
            pending_polls: 1,
            deny: false,
            slow_down_at: Vec::new(),
            rfc_names: false,
            token_life: Duration::from_secs(365 * 86_400),
            keep_while_left: None,
        }
    }
}

/// One flow in progress.
struct Grant {
    device_code: String,
    issued: Instant,
    polls: u32,
    last_poll: Instant,
    /// The interval with every `slow_down` added.
    gap: Duration,
}

/// What happened, for tests to assert on.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Record {
    pub codes_issued: u32,
    pub polls: u32,
    /// Polls that came sooner than allowed.
    pub early_polls: u32,
    pub device_ids: Vec<String>,
    pub device_names: Vec<String>,
    /// `grant_type=refresh_token` requests, and those that gave a new token.
    pub refreshes: u32,
    pub renewed: u32,
    /// API requests refused because their token had expired.
    pub expired_uses: u32,
}

#[derive(Default)]
pub struct OAuth {
    grants: Vec<Grant>,
    pub record: Record,
    seq: u64,
    /// Access tokens issued, and when each expires.
    tokens: HashMap<String, Instant>,
    /// Refresh tokens not yet spent, and the access token each came with.
    refresh: HashMap<String, String>,
}

struct Form(Vec<(String, String)>);

impl Form {
    fn get(&self, k: &str) -> Option<&str> {
        self.0.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str())
    }
}

fn oauth_error(name: &str, description: &str) -> Reply {
    Reply::json(400, json!({"error": name, "error_description": description}))
}

impl OAuth {
    /// Is `token` one the Disk takes now? The emulator's own token lives
    /// `token_life` from the start.
    pub fn accepts(&mut self, script: &Script, own: &str, token: &str, started: Instant) -> bool {
        let expires = *self.tokens.entry(own.to_string()).or_insert(started + script.token_life);
        let expires = if token == own { expires } else { self.tokens.get(token).copied().unwrap_or(started) };
        let live = Instant::now() < expires;
        if !live && (token == own || self.tokens.contains_key(token)) {
            self.record.expired_uses += 1;
        }
        live
    }

    /// Issues `access` anew for `token_life`, with a fresh refresh token.
    fn issue(&mut self, script: &Script, access: String) -> Reply {
        self.seq += 1;
        let refresh = format!("ref{:016x}", self.seq.wrapping_mul(0x2545_f491_4f6c_dd1d));
        self.tokens.insert(access.clone(), Instant::now() + script.token_life);
        self.refresh.insert(refresh.clone(), access.clone());
        Reply::json(
            200,
            json!({"token_type": "bearer", "access_token": access, "expires_in": script.token_life.as_secs(), "refresh_token": refresh}),
        )
    }

    /// `grant_type=refresh_token`.
    fn renew(&mut self, script: &Script, form: &Form) -> Reply {
        self.record.refreshes += 1;
        let given = form.get("refresh_token").unwrap_or_default();
        let Some(access) = self.refresh.get(given).cloned() else {
            return oauth_error("invalid_grant", "Invalid refresh token");
        };
        let now = Instant::now();
        let left = self.tokens.get(&access).map_or(Duration::ZERO, |e| e.saturating_duration_since(now));
        if left > script.keep_while_left.unwrap_or(script.token_life / 2) {
            return Reply::json(
                200,
                json!({"token_type": "bearer", "access_token": access, "expires_in": left.as_secs(), "refresh_token": given}),
            );
        }
        self.refresh.remove(given);
        self.record.renewed += 1;
        let fresh = format!("tok{:016x}", (self.seq + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15));
        self.issue(script, fresh)
    }

    /// Answers `/device/code` and `/token`; `None` for other paths.
    pub fn handle(&mut self, script: &Script, token: &str, head: &Head, body: &[u8]) -> Option<Reply> {
        if head.path != "/device/code" && head.path != "/token" {
            return None;
        }
        if head.method != "POST" {
            return Some(oauth_error("invalid_request", "Method not allowed"));
        }
        let form_type = head.header("content-type").is_some_and(|t| t.starts_with("application/x-www-form-urlencoded"));
        let form = std::str::from_utf8(body).ok().and_then(http::parse_query).filter(|_| form_type);
        let Some(form) = form else {
            return Some(oauth_error("invalid_request", "Expected an application/x-www-form-urlencoded body"));
        };
        let form = Form(form);
        if form.get("client_id") != Some(script.client_id.as_str()) {
            return Some(oauth_error("invalid_client", "Client not found"));
        }
        Some(if head.path == "/device/code" {
            self.device_code(script, form.get("device_id"), form.get("device_name"))
        } else {
            self.token(script, token, &form)
        })
    }

    fn device_code(&mut self, script: &Script, device_id: Option<&str>, device_name: Option<&str>) -> Reply {
        // 32–126, spaces included: the recorded exchange sent "test device
        // 123" (YD-rec test_device_code_auth.json; the Yandex ID docs say so).
        let printable = |id: &str| (6..=50).contains(&id.len()) && id.bytes().all(|b| (0x20..0x7f).contains(&b));
        if device_id.is_some_and(|id| !printable(id)) {
            return oauth_error("invalid_request", "device_id must be 6 to 50 printable ASCII characters");
        }
        if device_name.is_some_and(|n| n.chars().count() > 100) {
            return oauth_error("invalid_request", "device_name is longer than 100 characters");
        }
        self.seq += 1;
        let device_code = format!("dev{:016x}", self.seq.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        let user_code = format!("{:08}", self.seq * 7_654_321 % 100_000_000);
        self.record.codes_issued += 1;
        self.record.device_ids.push(device_id.unwrap_or_default().to_string());
        self.record.device_names.push(device_name.unwrap_or_default().to_string());
        let now = Instant::now();
        self.grants.push(Grant {
            device_code: device_code.clone(),
            issued: now,
            polls: 0,
            last_poll: now,
            gap: Duration::from_secs(script.interval),
        });
        Reply::json(
            200,
            json!({
                "device_code": device_code,
                "user_code": user_code,
                "verification_url": "https://ya.ru/device",
                "interval": script.interval,
                "expires_in": script.expires_in,
            }),
        )
    }

    fn token(&mut self, script: &Script, token: &str, form: &Form) -> Reply {
        let get = |k| form.get(k);
        if get("client_secret") != Some(script.client_secret.as_str()) {
            return oauth_error("invalid_client", "Wrong client secret");
        }
        if get("grant_type") == Some("refresh_token") {
            return self.renew(script, form);
        }
        if get("grant_type") != Some("device_code") {
            return oauth_error("unsupported_grant_type", "Unsupported grant type");
        }
        let code = get("code").unwrap_or_default();
        let Some(g) = self.grants.iter_mut().find(|g| g.device_code == code) else {
            return oauth_error("invalid_grant", "Invalid device code");
        };
        let now = Instant::now();
        self.record.polls += 1;
        g.polls += 1;
        // A little slack for timer jitter; a client that ignores the interval is far off.
        let early = now.duration_since(g.last_poll) + Duration::from_millis(100) < g.gap;
        g.last_poll = now;
        if now.duration_since(g.issued) > Duration::from_secs(script.expires_in) {
            return match script.rfc_names {
                true => oauth_error("expired_token", "Code has expired"),
                false => oauth_error("invalid_grant", "Invalid or expired device code"),
            };
        }
        if early || script.slow_down_at.contains(&g.polls) {
            self.record.early_polls += u32::from(early);
            g.gap += Duration::from_secs(5);
            return oauth_error("slow_down", "Polling too often");
        }
        if g.polls <= script.pending_polls {
            return oauth_error("authorization_pending", "User has not yet authorized your application");
        }
        if script.deny {
            return oauth_error("access_denied", "User denied access");
        }
        self.issue(script, token.to_string())
    }
}
