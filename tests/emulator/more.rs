//! Endpoints ysync does not call, so that clients written against the live
//! Disk (rclone, the Python yadisk library) work against the emulator too:
//! what they sent and the emulator refused is Part 2 of
//! `shared/real-disk-evidence.md` (M4, M5). The shapes follow the REST
//! reference (yandex-disk-api.md) and the recorded traffic of yadisk's
//! tests: `PATCH /resources` (custom_properties), `GET /resources/download`
//! (a link on the second port, no token needed), `POST /resources/copy`,
//! `PUT /resources/publish` and `/unpublish`, `GET /resources/files`,
//! `GET /resources/last-uploaded`, `DELETE /trash/resources` (one entry or
//! all) and `PUT /trash/resources/restore`.

use super::*;

impl Disk {
    fn present(&self, p: &str) -> bool {
        (p == "/" || self.nodes.contains_key(p)) && !self.hidden(p)
    }

    /// `PATCH /resources`: `{"custom_properties": {...}}` merged into the
    /// resource's own (a `null` value removes a key); answers the resource.
    pub(super) fn patch(&mut self, p: &str, body: &[u8]) -> Reply {
        if !self.present(p) {
            return not_found();
        }
        let v: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
        let Some(given) = v.get("custom_properties").and_then(Value::as_object) else {
            return error(400, "FieldValidationError", "Expected a JSON body with custom_properties.");
        };
        let mut props = self.props.get(p).cloned().unwrap_or_default();
        for (k, val) in given {
            if val.is_null() {
                props.remove(k);
            } else {
                props.insert(k.clone(), val.clone());
            }
        }
        // "The total length of custom_properties … 1024 characters" (D-patch).
        if Value::Object(props.clone()).to_string().chars().count() > 1024 {
            return error(400, "FieldValidationError", "custom_properties is longer than 1024 characters.");
        }
        self.props.insert(p.to_string(), props);
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
        self.times.entry(p.to_string()).or_insert((now, now)).1 = now;
        Reply::json(200, self.resource(p))
    }

    /// `GET /resources/download`: a single link to the file's bytes. (The
    /// live Disk zips a folder; the emulator does not.)
    pub(super) fn download(&mut self, shared: &Shared, p: &str) -> Reply {
        match self.nodes.get(p) {
            Some(Node::File(_)) if !self.hidden(p) => {}
            Some(Node::Dir) => return error(400, "FieldValidationError", "Folder downloads (zip) are not emulated."),
            _ => return not_found(),
        }
        let id = self.next_id();
        self.downloads.insert(id.clone(), p.to_string());
        let href = format!("{}{id}", shared.upload_base.replace("/upload-target/", "/download/"));
        Reply::json(200, json!({"href": href, "method": "GET", "templated": false}))
    }

    /// The file a download link serves.
    pub(super) fn download_path(&self, id: &str) -> Option<String> {
        self.downloads.get(id).cloned()
    }

    /// The bytes behind a download link (the second port, no token).
    pub(super) fn download_bytes(&self, id: &str) -> Reply {
        match self.downloads.get(id).and_then(|p| self.nodes.get(p)) {
            Some(Node::File(b)) => {
                Reply { status: 200, body: b.to_vec(), headers: vec![("Content-Type", "application/octet-stream".into())] }
            }
            _ => error(404, "NotFoundError", "Unknown download link."),
        }
    }

    /// `POST /resources/copy`: like a move, but the source stays; a folder
    /// with content is copied by an operation (202).
    pub(super) fn copy(&mut self, shared: &Shared, from: &str, to: &str, q: &Query) -> Reply {
        // (A copy locks only its destination on the live Disk too, as far
        // as anyone knows; the emulator checks the source's lock as well.)
        if let Some(refusal) = self.refuse_transfer(from, to, q) {
            return refusal;
        }
        if self.has_children(from) || q.get("force_async") == Some("true") {
            return self.async_op(shared, Effect::Copy { from: from.into(), to: to.into() }, vec![to.into()]);
        }
        self.duplicate(from, to);
        Reply::json(201, json!({"href": resource_href(shared, to), "method": "GET", "templated": false}))
    }

    pub(super) fn duplicate(&mut self, from: &str, to: &str) {
        self.take_subtree(to);
        let meta = self.metadata_of(from);
        let copies: Vec<(String, Node)> = self
            .nodes
            .iter()
            .filter(|(k, _)| k.as_str() == from || is_under(k, from))
            .map(|(k, n)| (format!("{to}{}", &k[from.len()..]), n.clone()))
            .collect();
        for (k, n) in copies {
            self.nodes.insert(k, n);
        }
        let keep = !self.props_lost_on_move;
        self.carry(to, meta, keep);
    }

    /// `PUT /resources/publish` and `/unpublish`.
    pub(super) fn publish(&mut self, shared: &Shared, p: &str, public: bool) -> Reply {
        if !self.present(p) {
            return not_found();
        }
        if public {
            let key = format!("{}==", &hex(&Sha256::digest(p.as_bytes()))[..24]);
            self.public.insert(p.to_string(), key);
        } else {
            self.public.remove(p);
        }
        Reply::json(200, json!({"href": resource_href(shared, p), "method": "GET", "templated": false}))
    }

    /// `GET /resources/files`: every file, flat, by path; `limit` (20),
    /// `offset`, `media_type` (a comma list).
    pub(super) fn files(&self, q: &Query) -> Reply {
        let kinds: Vec<&str> = q.get("media_type").map(|m| m.split(',').collect()).unwrap_or_default();
        let mut files: Vec<&String> = self
            .nodes
            .iter()
            .filter(|(k, n)| matches!(n, Node::File(_)) && !self.hidden(k))
            .map(|(k, _)| k)
            .filter(|k| kinds.is_empty() || kinds.contains(&media_type(k.rsplit('/').next().unwrap_or(""))))
            .collect();
        files.sort();
        self.file_page(files, q, true)
    }

    /// `GET /resources/last-uploaded`: the newest uploads first; `limit` (20).
    pub(super) fn last_uploaded(&self, q: &Query) -> Reply {
        let mut files: Vec<&String> = self.stamps.keys().filter(|k| matches!(self.nodes.get(*k), Some(Node::File(_)))).collect();
        files.sort_by_key(|k| std::cmp::Reverse(self.stamps[*k]));
        self.file_page(files, q, false)
    }

    fn file_page(&self, files: Vec<&String>, q: &Query, with_offset: bool) -> Reply {
        let limit: usize = q.get("limit").and_then(|l| l.parse().ok()).unwrap_or(20);
        let offset: usize = if with_offset { q.get("offset").and_then(|l| l.parse().ok()).unwrap_or(0) } else { 0 };
        let items: Vec<Value> = files.into_iter().skip(offset).take(limit).map(|k| self.resource(k)).collect();
        let mut v = json!({"items": items, "limit": limit});
        if with_offset {
            v["offset"] = json!(offset);
        }
        if let Some(f) = q.get("fields") {
            v = trim_fields(&v, &f.split(',').map(str::trim).filter(|s| !s.is_empty()).collect::<Vec<_>>());
        }
        Reply::json(200, v)
    }

    /// `DELETE /trash/resources`: the entry at `path` (`trash:/name_<hex>`
    /// or its name), or, without `path`, all of the trash.
    pub(super) fn trash_delete(&mut self, q: &Query) -> Reply {
        match q.get("path").filter(|p| !p.is_empty() && *p != "trash:/" && *p != "/") {
            None => self.trash.clear(),
            Some(p) => {
                let name = p.trim_start_matches("trash:").trim_start_matches('/');
                let before = self.trash.len();
                self.trash.retain(|t| t.path.trim_start_matches("trash:/") != name);
                if self.trash.len() == before {
                    return not_found();
                }
            }
        }
        Reply::empty(204)
    }

    /// `PUT /trash/resources/restore`: the entry back at its origin (or at
    /// `name` in the same folder).
    pub(super) fn trash_restore(&mut self, shared: &Shared, q: &Query) -> Reply {
        let name = q.get("path").unwrap_or_default().trim_start_matches("trash:").trim_start_matches('/').to_string();
        let Some(i) = self.trash.iter().position(|t| t.path.trim_start_matches("trash:/") == name) else {
            return not_found();
        };
        let origin = self.trash[i].origin_path.trim_start_matches("disk:").to_string();
        let target = match q.get("name") {
            Some(n) if !n.is_empty() => format!("{}/{n}", parent(&origin).trim_end_matches('/')),
            _ => origin.clone(),
        };
        if self.nodes.contains_key(&target) && q.get("overwrite") != Some("true") {
            return error(409, "DiskResourceAlreadyExistsError", &format!("Resource \"disk:{target}\" already exists."));
        }
        if !self.is_dir(parent(&target)) {
            return error(409, "DiskPathDoesntExistsError", "The original folder is gone.");
        }
        let entry = self.trash.remove(i);
        self.take_subtree(&target);
        for (k, n) in entry.nodes {
            self.nodes.insert(format!("{target}{}", &k[origin.len()..]), n);
        }
        Reply::json(201, json!({"href": resource_href(shared, &target), "method": "GET", "templated": false}))
    }
}

/// The link a 201 gives to the resource: on the real host, as recorded, or
/// on this emulator for clients that follow it (`Options::real_op_links`).
pub(super) fn resource_href(shared: &Shared, p: &str) -> String {
    let base = if shared.opts.real_op_links { "https://cloud-api.yandex.net/v1/disk".to_string() } else { shared.api_url.clone() };
    format!("{base}/resources?path={}", encode_query(&format!("disk:{p}")))
}

fn encode_query(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}
