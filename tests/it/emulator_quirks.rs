//! The emulator reproduces the Disk's quirks strictly; if it did not, the
//! mirror tests could pass against a forgiving fake and fail on the real Disk.

use crate::emulator::FakeDisk;
use serde_json::Value;
use ureq::Agent;

struct Call {
    status: u16,
    body: String,
}

fn agent() -> Agent {
    Agent::config_builder().http_status_as_error(false).build().into()
}

fn api(emu: &FakeDisk, method: &str, rest: &str) -> Call {
    let url = format!("{}/{rest}", emu.api_url());
    let auth = format!("OAuth {}", emu.token());
    let a = agent();
    let res = match method {
        "GET" => a.get(&url).header("Authorization", &auth).call(),
        "PUT" => a.put(&url).header("Authorization", &auth).send_empty(),
        "DELETE" => a.delete(&url).header("Authorization", &auth).call(),
        "POST" => a.post(&url).header("Authorization", &auth).send_empty(),
        _ => unreachable!(),
    };
    let mut r = res.unwrap();
    Call { status: r.status().as_u16(), body: r.body_mut().read_to_string().unwrap_or_default() }
}

fn json(c: &Call) -> Value {
    serde_json::from_str(&c.body).unwrap_or_else(|e| panic!("{e}: {}", c.body))
}

#[test]
fn plus_in_the_query_is_a_space() {
    let emu = FakeDisk::start();
    assert_eq!(api(&emu, "PUT", "resources?path=disk%3A%2Fa+b").status, 201);
    assert!(emu.exists("/a b"));
    assert_eq!(api(&emu, "PUT", "resources?path=disk%3A%2Fa%2Bb").status, 201);
    assert!(emu.exists("/a+b"));
}

#[test]
fn a_colon_needs_the_disk_prefix() {
    let emu = FakeDisk::start();
    assert_eq!(api(&emu, "PUT", "resources?path=%2Ft%2010%3A30").status, 400);
    assert_eq!(api(&emu, "PUT", "resources?path=disk%3A%2Ft%2010%3A30").status, 201);
}

#[test]
fn errors_carry_the_disk_error_names() {
    let emu = FakeDisk::start();
    let c = api(&emu, "PUT", "resources?path=disk%3A%2Fno%2Fparent");
    assert_eq!((c.status, json(&c)["error"].as_str()), (409, Some("DiskPathDoesntExistsError")));
    api(&emu, "PUT", "resources?path=disk%3A%2Fd");
    let c = api(&emu, "PUT", "resources?path=disk%3A%2Fd");
    assert_eq!((c.status, json(&c)["error"].as_str()), (409, Some("DiskPathPointsToExistentDirectoryError")));
    let c = api(&emu, "GET", "resources?path=disk%3A%2Fmissing");
    assert_eq!((c.status, json(&c)["error"].as_str()), (404, Some("DiskNotFoundError")));
    let r = agent().get(&format!("{}/resources?path=disk%3A%2F", emu.api_url())).call().unwrap();
    assert_eq!(r.status().as_u16(), 401);
}

/// What the live Disk accepts, the emulator accepts (Part 2 of
/// real-disk-evidence.md): a token on the upload link is counted, not
/// refused (M1); a chunked body is stored (M2); after a refusal the same
/// keep-alive connection still works (M3).
#[test]
fn upload_links_are_single_use_take_chunked_bodies_and_count_a_token() {
    let emu = FakeDisk::start();
    let link = |emu: &FakeDisk, name: &str| {
        json(&api(emu, "GET", &format!("resources/upload?path=disk%3A%2F{name}&overwrite=true")))["href"].as_str().unwrap().to_string()
    };
    let a = agent();

    let href = link(&emu, "signed.txt");
    let r = a.put(&href).header("Authorization", "OAuth x").send(&b"abc"[..]).unwrap();
    assert_eq!(r.status().as_u16(), 201, "taken, as rclone's signed uploads are");
    assert_eq!(emu.token_leaks(), 1, "but counted, for tests of ysync");

    let href = link(&emu, "chunked.txt");
    let mut body = &b"sent in chunks"[..];
    let r = a.put(&href).send(ureq::SendBody::from_reader(&mut body)).unwrap();
    assert_eq!(r.status().as_u16(), 201, "a body without Content-Length is taken");
    assert_eq!(emu.file("/chunked.txt").as_deref(), Some(&b"sent in chunks"[..]));

    let href = link(&emu, "f.txt");
    assert_eq!(a.put(&href).send(&b"abc"[..]).unwrap().status().as_u16(), 201);
    assert_eq!(emu.file("/f.txt").as_deref(), Some(&b"abc"[..]));
    // Refused with its body read: the same agent (connection) goes on.
    assert_eq!(a.put(&href).send(&b"xyz"[..]).unwrap().status().as_u16(), 400, "a link works once");
    let href = link(&emu, "g.txt");
    assert_eq!(a.put(&href).send(&b"g"[..]).unwrap().status().as_u16(), 201, "the connection survived the refusal");
    assert_eq!(emu.file("/f.txt").as_deref(), Some(&b"abc"[..]));
}

/// The endpoints real clients call besides ysync's (M4, M5).
#[test]
fn the_endpoints_other_clients_use_work() {
    let emu = FakeDisk::start();
    emu.put_file("/a/one.txt", b"one");
    emu.put_file("/a/sub/two.jpg", b"two");
    let a = agent();
    let auth = format!("OAuth {}", emu.token());
    let url = |rest: &str| format!("{}/{rest}", emu.api_url());

    // PATCH custom_properties (rclone sets its modification time so).
    let mut r = a
        .patch(&url("resources?path=disk%3A%2Fa%2Fone.txt"))
        .header("Authorization", &auth)
        .header("Content-Type", "application/json")
        .send(r#"{"custom_properties":{"rclone_modified":"2026-01-02T03:04:05Z"}}"#)
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let v: Value = serde_json::from_str(&r.body_mut().read_to_string().unwrap()).unwrap();
    assert_eq!(v["custom_properties"]["rclone_modified"], "2026-01-02T03:04:05Z");
    assert_eq!(
        json(&api(&emu, "GET", "resources?path=disk%3A%2Fa%2Fone.txt"))["custom_properties"]["rclone_modified"],
        "2026-01-02T03:04:05Z"
    );

    // Download: a tokenless link to the bytes.
    let href = json(&api(&emu, "GET", "resources/download?path=disk%3A%2Fa%2Fone.txt"))["href"].as_str().unwrap().to_string();
    assert_eq!(a.get(&href).call().unwrap().body_mut().read_to_string().unwrap(), "one");

    // Copy: a file at once, a folder with content by an operation.
    assert_eq!(api(&emu, "POST", "resources/copy?from=disk%3A%2Fa%2Fone.txt&path=disk%3A%2Fcopy.txt").status, 201);
    assert_eq!(emu.file("/copy.txt").as_deref(), Some(&b"one"[..]));
    assert_eq!(emu.file("/a/one.txt").as_deref(), Some(&b"one"[..]), "the source stays");
    assert_eq!(api(&emu, "POST", "resources/copy?from=disk%3A%2Fa&path=disk%3A%2Fb").status, 202);
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert_eq!(emu.file("/b/sub/two.jpg").as_deref(), Some(&b"two"[..]));

    // Publish gives a public key and URL.
    assert_eq!(api(&emu, "PUT", "resources/publish?path=disk%3A%2Fcopy.txt").status, 200);
    assert!(json(&api(&emu, "GET", "resources?path=disk%3A%2Fcopy.txt"))["public_url"].as_str().is_some());

    // The flat file list, and the newest uploads first.
    let files = json(&api(&emu, "GET", "resources/files?limit=100&media_type=image"));
    let paths: Vec<&str> = files["items"].as_array().unwrap().iter().map(|i| i["path"].as_str().unwrap()).collect();
    assert_eq!(paths, ["disk:/a/sub/two.jpg", "disk:/b/sub/two.jpg"]);
    emu.put_file("/newest.txt", b"n");
    let last = json(&api(&emu, "GET", "resources/last-uploaded?limit=1"));
    assert_eq!(last["items"][0]["path"], "disk:/newest.txt");

    // The trash: restore one entry, empty the rest.
    assert_eq!(api(&emu, "DELETE", "resources?path=disk%3A%2Fcopy.txt").status, 204);
    let name = emu.trash()[0].path.clone();
    assert_eq!(api(&emu, "PUT", &format!("trash/resources/restore?path={}", name.replace(':', "%3A").replace('/', "%2F"))).status, 201);
    assert_eq!(emu.file("/copy.txt").as_deref(), Some(&b"one"[..]));
    assert_eq!(api(&emu, "DELETE", "resources?path=disk%3A%2Fnewest.txt").status, 204);
    assert_eq!(api(&emu, "DELETE", "trash/resources").status, 204);
    assert!(emu.trash().is_empty());
}

#[test]
fn non_empty_folder_delete_is_asynchronous_and_locks_the_path() {
    let emu = FakeDisk::start();
    emu.put_file("/d/x.txt", b"x");
    let c = api(&emu, "DELETE", "resources?path=disk%3A%2Fd");
    assert_eq!(c.status, 202);
    let href = json(&c)["href"].as_str().unwrap().to_string();
    // Named on the real host, as recorded; the id is what matters.
    assert!(
        href.starts_with("https://cloud-api.yandex.net/v1/disk/operations/")
            || href.starts_with("http://cloud-api.yandex.net/v1/disk/operations/"),
        "{href}"
    );
    let op = &format!("operations/{}", href.rsplit('/').next().unwrap());
    assert_eq!(json(&api(&emu, "GET", op))["status"], "in-progress");
    assert_eq!(api(&emu, "PUT", "resources?path=disk%3A%2Fd%2Fnew").status, 423, "locked while the operation runs");
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert_eq!(json(&api(&emu, "GET", op))["status"], "success");
    assert!(!emu.exists("/d"));
    let trash = emu.trash();
    assert_eq!(trash.len(), 1);
    assert!(trash[0].path.starts_with("trash:/d_") && trash[0].path.len() == "trash:/d_".len() + 40, "{}", trash[0].path);
    // An empty folder or a file goes at once, with an empty 204.
    emu.put_file("/f", b"1");
    let c = api(&emu, "DELETE", "resources?path=disk%3A%2Ff&permanently=true");
    assert_eq!((c.status, c.body.as_str()), (204, ""));
}

#[test]
fn listings_page_and_fields_trim() {
    let emu = FakeDisk::start();
    for i in 0..25 {
        emu.put_file(&format!("/l/f{i:02}"), b"x");
    }
    emu.put_file("/l/sub/x", b"x");
    let page = json(&api(&emu, "GET", "resources?path=disk%3A%2Fl"));
    let items = page["_embedded"]["items"].as_array().unwrap();
    assert_eq!((items.len(), page["_embedded"]["total"].as_u64()), (20, Some(26)));
    assert_eq!(items[0]["type"], "dir", "folders first");
    let trimmed = json(&api(&emu, "GET", "resources?path=disk%3A%2Fl&offset=20&limit=10&fields=_embedded.items.path"));
    assert_eq!(trimmed["_embedded"].as_object().unwrap().keys().collect::<Vec<_>>(), ["items"], "total/limit/offset dropped");
    assert_eq!(trimmed["_embedded"]["items"].as_array().unwrap().len(), 6);
    assert_eq!(trimmed["_embedded"]["items"][5], serde_json::json!({"path": "disk:/l/f24"}));
    let file = json(&api(&emu, "GET", "resources?path=disk%3A%2Fl%2Ff00"));
    assert!(file.get("_embedded").is_none());
    assert_eq!(file["sha256"].as_str().unwrap().len(), 64);
}
