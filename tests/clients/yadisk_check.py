"""The Python yadisk library (written against the live Disk) against the
emulator: each call a real client makes, and what came back.

    python3 tests/clients/yadisk_check.py http://127.0.0.1:PORT TOKEN

Prints one line per step (ok / FAILED with the error) and exits 1 if any
step failed. Run by `make clients` with a fresh `fake-disk`.
"""
import io
import sys

import yadisk
import yadisk.settings

api, token = sys.argv[1].rstrip("/"), sys.argv[2]
yadisk.settings.BASE_API_URL = api
# The device flow and the refresh grant are served on the same port. The
# OAuth request classes read the setting once, at import.
yadisk.settings.BASE_OAUTH_API_URL = api
for _cls in vars(yadisk._api.auth).values():
    if isinstance(_cls, type) and getattr(_cls, "base_url", None) == "https://oauth.yandex.ru":
        _cls.base_url = api

failed = 0


def step(name, f):
    global failed
    try:
        got = f()
        print(f"ok      {name}" + (f": {got}" if got is not None else ""))
    except Exception as e:  # every failure is a finding, not a crash
        failed += 1
        print(f"FAILED  {name}: {type(e).__name__}: {e}")


y = yadisk.Client(token=token, id="test-client", secret="test-secret")
odd = "/yadisk/a+b: 10%#?&=;'\"Фото"
step("check_token", lambda: y.check_token())
step("get_disk_info", lambda: y.get_disk_info().user.login)
step("mkdir", lambda: y.mkdir("/yadisk") and None)
step("makedirs with odd names", lambda: y.makedirs(odd + "/deep") and None)
step("upload", lambda: y.upload(io.BytesIO(b"hello from yadisk"), "/yadisk/hello.txt") and None)
step("upload (overwrite)", lambda: y.upload(io.BytesIO(b"hello again"), "/yadisk/hello.txt", overwrite=True) and None)
step("upload an odd name", lambda: y.upload(io.BytesIO(b"odd"), odd + "/file+1.txt") and None)
step("get_meta md5/sha256", lambda: (lambda m: (m.size, m.md5[:8], m.sha256[:8]))(y.get_meta("/yadisk/hello.txt")))
step("listdir", lambda: sorted(i.name for i in y.listdir("/yadisk")))
step("listdir with limit", lambda: len(list(y.listdir(odd, max_items=10, limit=1))))
step("exists / is_file / is_dir", lambda: (y.exists("/yadisk/hello.txt"), y.is_file("/yadisk/hello.txt"), y.is_dir("/yadisk")))
step("patch custom_properties", lambda: y.patch("/yadisk/hello.txt", {"k": "v"}).custom_properties)
step("download", lambda: (lambda b: (y.download("/yadisk/hello.txt", b), b.getvalue())[1])(io.BytesIO()))
step("copy", lambda: y.copy("/yadisk/hello.txt", "/yadisk/copy.txt") and None)
step("copy a folder (202, waited for)", lambda: y.copy(odd, "/yadisk/odd-copy") and None)
step("move", lambda: y.move("/yadisk/copy.txt", "/yadisk/moved.txt") and None)
step("rename", lambda: y.rename("/yadisk/moved.txt", "renamed.txt") and None)
step("move a folder (202, waited for)", lambda: y.move("/yadisk/odd-copy", "/yadisk/odd-moved") and None)
step("publish / unpublish", lambda: (y.publish("/yadisk/hello.txt") and None, y.get_meta("/yadisk/hello.txt").public_url is not None, y.unpublish("/yadisk/hello.txt") and None)[1])
step("get_files", lambda: len(list(y.get_files(limit=100))))
step("get_last_uploaded", lambda: [f.path for f in y.get_last_uploaded(limit=2)])
step("remove a file (to the trash)", lambda: y.remove("/yadisk/renamed.txt") and None)
step("remove a folder (202, waited for)", lambda: y.remove("/yadisk/odd-moved") and None)
step("remove permanently", lambda: y.remove("/yadisk/hello.txt", permanently=True) and None)
step("trash_listdir", lambda: sorted(i.name.rsplit("_", 1)[0] for i in y.trash_listdir("/")))
step("restore_trash", lambda: y.restore_trash(next(iter(y.trash_listdir("/"))).path) and None)
step("remove_trash (all)", lambda: y.remove_trash("/") and None)
step("a missing path is NotFoundError", lambda: (lambda: y.get_meta("/nope"))() if False else (y.exists("/nope")))
step("a wrong token is UnauthorizedError", lambda: yadisk.Client(token="wrong").check_token())


def device_flow():
    import time
    code = y.get_device_code()
    for _ in range(10):
        time.sleep(code.interval)
        try:
            t = y.get_token_from_device_code(code.device_code)
            return t
        except yadisk.exceptions.AuthorizationPendingError:
            continue
    raise RuntimeError("still pending")


tokens = {}
step("device flow: code, pending, token", lambda: (lambda t: (tokens.update(t=t), (t.expires_in, bool(t.refresh_token)))[1])(device_flow()))
step("refresh_token grant", lambda: (lambda t: (t.access_token == token, bool(t.refresh_token)))(y.refresh_token(tokens["t"].refresh_token)))
y.close()
sys.exit(1 if failed else 0)
