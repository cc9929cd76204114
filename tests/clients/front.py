"""A TLS front for rclone: rclone's yandex backend has no endpoint option
(its API root https://cloud-api.yandex.com/v1/disk is a constant), so it is
run with HTTPS_PROXY pointing here. This accepts `CONNECT
cloud-api.yandex.com:443` only, answers it, terminates TLS with a
throwaway certificate for that name, and pipes the plain bytes to the
emulator's API port. CONNECT to any other host is refused (nothing leaves
the machine).

    python3 tests/clients/front.py LISTEN_PORT EMULATOR_PORT CERT KEY
"""
import socket
import ssl
import sys
import threading

listen, upstream, cert, key = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(cert, key)


def pipe(a, b):
    try:
        while True:
            data = a.recv(65536)
            if not data:
                break
            b.sendall(data)
    except OSError:
        pass
    finally:
        for s in (a, b):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def serve(client):
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = client.recv(4096)
        if not chunk:
            client.close()
            return
        head += chunk
    line = head.split(b"\r\n", 1)[0].decode("latin-1")
    if not line.startswith("CONNECT cloud-api.yandex.com:443 "):
        client.sendall(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
        client.close()
        print(f"refused: {line}", flush=True)
        return
    client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
    try:
        tls = ctx.wrap_socket(client, server_side=True)
    except (ssl.SSLError, OSError) as e:
        print(f"TLS failed: {e}", flush=True)
        return
    up = socket.create_connection(("127.0.0.1", upstream))
    threading.Thread(target=pipe, args=(tls, up), daemon=True).start()
    pipe(up, tls)


srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", listen))
srv.listen(64)
print("front ready", flush=True)
while True:
    c, _ = srv.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
