"""An HTTPS proxy on loopback that lets TensorFlow's built-in gs:// filesystem reach fake-gcs-server:
TensorFlow's endpoints are built in (https://www.googleapis.com/storage/v1/, storage.googleapis.com), but
its HTTP client honours `https_proxy` and `CURL_CA_BUNDLE`. The proxy answers CONNECT, ends TLS with a
certificate for *.googleapis.com signed by the test's own CA, and relays each request to the emulator over
plain HTTP, with two changes: it drops `Transfer-Encoding: identity` (Go's net/http, the emulator's server,
answers 501 to it; Cloud Storage accepts it) and turns the emulator's `http://` upload locations into
`https://` ones.

Usage: python -m tests.gcs_proxy LISTEN_PORT EMULATOR_PORT CERT_FILE KEY_FILE
"""

from __future__ import annotations

import http.client
import socket
import ssl
import sys
import threading

DROPPED = ("transfer-encoding", "content-length", "connection", "authorization")


def read_request(stream) -> tuple[str, str, list[tuple[str, str]], bytes] | None:
    line = stream.readline(65537)
    if not line:
        return None
    method, path, _ = line.decode().split(" ", 2)
    headers = []
    while (header := stream.readline(65537)) not in (b"\r\n", b"\n", b""):
        name, value = header.decode().split(":", 1)
        headers.append((name.strip(), value.strip()))
    encoding = next((v.lower() for k, v in headers if k.lower() == "transfer-encoding"), "")
    body = b""
    if encoding == "chunked":
        while size := int(stream.readline(65537).split(b";")[0], 16):
            body += stream.read(size)
            stream.readline(65537)
        stream.readline(65537)
    else:
        length = next((int(v) for k, v in headers if k.lower() == "content-length"), 0)
        body = stream.read(length) if length else b""
    return method, path, [(k, v) for k, v in headers if k.lower() not in DROPPED], body


def relay(tls: ssl.SSLSocket, emulator_port: int) -> None:
    stream = tls.makefile("rb")
    backend = http.client.HTTPConnection("127.0.0.1", emulator_port)
    while request := read_request(stream):
        method, path, headers, body = request
        backend.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
        for name, value in [*headers, ("Content-Length", str(len(body)))]:
            backend.putheader(name, value)
        backend.endheaders(body)
        response = backend.getresponse()
        data = response.read()
        lines = [f"HTTP/1.1 {response.status} {response.reason}"]
        for name, value in response.getheaders():
            if name.lower() in DROPPED:
                continue
            if name.lower() == "location":
                value = value.replace("http://", "https://", 1)
            lines.append(f"{name}: {value}")
        lines.append(f"Content-Length: {len(data)}")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode()
        tls.sendall(head + (b"" if method == "HEAD" else data))


def handle(client: socket.socket, context: ssl.SSLContext, emulator_port: int) -> None:
    try:
        received = b""
        while b"\r\n\r\n" not in received:
            chunk = client.recv(4096)
            if not chunk:
                return
            received += chunk
        if not received.startswith(b"CONNECT "):
            client.sendall(b"HTTP/1.1 405 Method Not Allowed\r\n\r\n")
            return
        client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
        relay(context.wrap_socket(client, server_side=True), emulator_port)
    except (OSError, ValueError) as error:
        print(f"proxy: {error!r}", file=sys.stderr, flush=True)
    finally:
        client.close()


def main() -> None:
    listen_port, emulator_port, cert, key = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("127.0.0.1", listen_port))
    server.listen(64)
    while True:
        client, _ = server.accept()
        threading.Thread(target=handle, args=(client, context, emulator_port), daemon=True).start()


if __name__ == "__main__":
    main()
