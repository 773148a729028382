"""A local test bed: a moto server as the AWS account and a real Varnish caching the bucket.

Two tiers too: an edge Varnish whose backend is the bucket's Varnish (the shield), and
`LateShield`, which lets the shield's purge land after a visitor has already refetched the
old copy from the shield into the edge: the race Fastly documents for shielded services.
Used by `s3purge demo` and by the test suite's fixtures. Everything binds to 127.0.0.1
and is stopped by `close()`; readiness is read from the processes, not guessed.
"""

from __future__ import annotations

import json
import queue
import shutil
import socket
import subprocess
import tempfile
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

VCL = """vcl 4.1;
import xkey;
backend s3origin {{ .host = "127.0.0.1"; .port = "{origin_port}"; }}
acl purgers {{ "127.0.0.1"; "::1"; }}

sub vcl_recv {{
    if (req.method == "PURGE") {{
        if (client.ip !~ purgers) {{ return (synth(403, "Forbidden")); }}
        return (purge);
    }}
    if (req.method == "BAN") {{
        if (client.ip !~ purgers) {{ return (synth(403, "Forbidden")); }}
        if (!req.http.X-Ban-Url) {{ return (synth(400, "X-Ban-Url header required")); }}
        ban("obj.http.x-host == " + req.http.host + " && obj.http.x-url ~ " + req.http.X-Ban-Url);
        return (synth(200, "Ban added"));
    }}
    if (req.method == "PURGEKEYS") {{
        if (client.ip !~ purgers) {{ return (synth(403, "Forbidden")); }}
        if (!req.http.Xkey-Purge) {{ return (synth(400, "Xkey-Purge header required")); }}
        if (req.http.Xkey-Soft) {{ set req.http.n-gone = xkey.softpurge(req.http.Xkey-Purge); }}
        else {{ set req.http.n-gone = xkey.purge(req.http.Xkey-Purge); }}
        return (synth(200, "Invalidated " + req.http.n-gone + " objects"));
    }}
    unset req.http.Authorization; unset req.http.Cookie;
}}
sub vcl_backend_fetch {{
    set bereq.http.x-public-host = bereq.http.host;
    set bereq.http.x-public-url = bereq.url;          # what BANs match: the URL clients request
{to_origin}
}}
sub vcl_backend_response {{
    set beresp.http.x-url = bereq.http.x-public-url;
    set beresp.http.x-host = bereq.http.x-public-host;
    if (beresp.http.x-amz-meta-surrogate-key) {{
        set beresp.http.xkey = beresp.http.x-amz-meta-surrogate-key;
    }}
    set beresp.ttl = 1h;                              # cache everything: stale until purged
    set beresp.grace = 0s;
}}
sub vcl_deliver {{
    if (obj.hits > 0) {{ set resp.http.X-Cache = "HIT"; }} else {{ set resp.http.X-Cache = "MISS"; }}
    unset resp.http.x-url; unset resp.http.x-host;
}}
"""


TO_BUCKET = """\
    if (bereq.url ~ "/$") {{ set bereq.url = bereq.url + "index.html"; }}  # like S3 website hosting
    # S3 reads a raw '+' in a path as a space; moto reads it as a '+': make the origin S3's
    set bereq.url = "/{bucket}" + regsuball(bereq.url, "\\+", "%20");  # path-style bucket URL
    set bereq.http.Host = "127.0.0.1:{origin_port}";"""
TO_PARENT = "    # an edge: the tier above is a cache that speaks the public Host and paths"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Moto:
    """An in-process moto server (S3, SQS, SNS, IAM, ... all on one port)."""

    port: int = field(default_factory=free_port)
    _server: Any = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Moto:
        import logging

        from moto.server import ThreadedMotoServer

        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per request is noise here

        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)
        self._server.start()
        return self

    def reset(self) -> None:
        import httpx

        httpx.post(f"{self.url}/moto-api/reset").raise_for_status()

    def close(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None


@dataclass
class Varnish:
    """varnishd in the foreground with our VCL; its cache is the bucket `bucket` on `origin_port`,
    or, with `parent`, the cache (a shield) on that port."""

    origin_port: int
    bucket: str
    port: int = field(default_factory=free_port)
    parent: int | None = None
    _process: subprocess.Popen[str] | None = None
    _workdir: str = ""

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> Varnish:
        varnishd = shutil.which("varnishd") or "/usr/sbin/varnishd"
        if not Path(varnishd).exists():
            raise RuntimeError("varnishd not found: apt-get install varnish varnish-modules")
        self._workdir = tempfile.mkdtemp(prefix="s3purge-varnish-")
        Path(self._workdir).chmod(0o755)  # varnishd drops root for its own users: let them read
        vcl = Path(self._workdir, "s3purge.vcl")
        vcl.write_text(self.vcl())
        vcl.chmod(0o644)
        self._process = subprocess.Popen(
            [
                varnishd,
                "-F",
                "-a",
                f"127.0.0.1:{self.port}",
                "-T",
                "127.0.0.1:0",
                "-f",
                str(vcl),
                "-s",
                "malloc,64m",
                "-n",
                str(Path(self._workdir, "n")),
                "-p",
                "ban_lurker_sleep=0.05",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        self._wait_for("said Child starts", timeout)
        return self

    def vcl(self) -> str:
        upstream = self.origin_port if self.parent is None else self.parent
        to_origin = TO_BUCKET.format(bucket=self.bucket, origin_port=upstream) if self.parent is None else TO_PARENT
        return VCL.format(origin_port=upstream, bucket=self.bucket, to_origin=to_origin)

    def _wait_for(self, text: str, timeout: float) -> None:
        """Block until varnishd prints `text` (it is then serving), or fail with its output."""
        assert self._process is not None and self._process.stdout is not None
        lines: queue.Queue[str | None] = queue.Queue()
        stdout = self._process.stdout

        def pump() -> None:
            for line in stdout:
                lines.put(line)
            lines.put(None)

        threading.Thread(target=pump, daemon=True).start()
        seen: list[str] = []
        while True:
            try:
                line = lines.get(timeout=timeout)
            except queue.Empty:
                line = None
            if line is None:
                self.close()
                raise RuntimeError("varnishd did not start:\n" + "".join(seen[-20:]))
            seen.append(line)
            if text in line:
                return

    def close(self) -> None:
        if self._process is not None:
            self._process.terminate()
            try:
                self._process.wait(10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
            self._process = None
        if self._workdir:
            shutil.rmtree(self._workdir, ignore_errors=True)
            self._workdir = ""


def public_read_policy(bucket: str) -> str:
    """A bucket policy letting the cache (anonymous) read objects, as a CDN origin needs."""
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": "*",
                    "Action": "s3:GetObject",
                    "Resource": f"arn:aws:s3:::{bucket}/*",
                }
            ],
        }
    )


class LateShield:
    """Stands in front of a shield's purge endpoint: a visitor reaches the edge before each
    purge is passed on, so the edge (already purged) refetches the shield's old copy.

    Purges are counted (`purges`) and `wait_purges(n)` blocks until n have passed through.
    """

    def __init__(self, shield: str, edge: str) -> None:
        self.shield, self.edge = shield.rstrip("/"), edge.rstrip("/")
        self.purges = 0
        self.visits: list[bytes] = []
        """What the visitor got from the edge just before each purge was passed on."""
        self._counted = threading.Condition()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _relay_handler(self))
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def relay(self, method: str, path: str, headers: dict[str, str]) -> tuple[int, bytes]:
        import httpx

        host = headers.get("Host", "")
        if method == "PURGE":  # the race: the visitor comes in between the edge's purge and the shield's
            self.visits.append(httpx.get(self.edge + path, headers={"Host": host}).content)
        answer = httpx.request(method, self.shield + path, headers=headers)
        if method == "PURGE":
            with self._counted:
                self.purges += 1
                self._counted.notify_all()
        return answer.status_code, answer.content

    def wait_purges(self, count: int, timeout: float = 10.0) -> bool:
        with self._counted:
            return self._counted.wait_for(lambda: self.purges >= count, timeout)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def _relay_handler(relay: LateShield) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _any(self) -> None:
            headers = {k: v for k, v in self.headers.items() if k.lower() not in ("content-length", "connection")}
            status, body = relay.relay(self.command, self.path, headers)
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_PURGE = do_BAN = do_PURGEKEYS = do_GET = do_HEAD = _any

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler
