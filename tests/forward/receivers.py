"""The real receivers, started and stopped by the tests on loopback: redis-server, rsyslogd
(TCP and TLS with a test CA, into a file), systemd-journal-remote in passive mode, and an
OTLP/HTTP server that parses what it receives with the official protobuf definitions."""

from __future__ import annotations

import contextlib
import datetime
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.conftest import free_port
from tests.support.servers import stop

START_TIMEOUT = 20.0


def wait_port(host: str, port: int, proc: subprocess.Popen[bytes], what: str) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            out = proc.stdout.read().decode(errors="replace") if proc.stdout else ""
            raise RuntimeError(f"{what} exited with {proc.returncode}: {out}")
        with socket.socket() as s:
            if s.connect_ex((host, port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"{what} did not listen on {host}:{port}")


@contextlib.contextmanager
def redis_server(host: str) -> Iterator[int]:
    port = free_port(host)
    proc = subprocess.Popen(
        ["redis-server", "--bind", host, "--port", str(port), "--save", "", "--appendonly", "no"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_port(host, port, proc, "redis-server")
        yield port
    finally:
        stop(proc)
        if proc.stdout:
            proc.stdout.close()


# --- A test CA and a server certificate for 127.0.0.x ------------------------------------


@dataclass(frozen=True)
class Tls:
    ca: Path
    cert: Path
    key: Path


def make_tls(directory: Path, ip: str) -> Tls:
    import ipaddress

    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "logway forward test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, ip)]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(ip))]),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    tls = Tls(directory / "ca.pem", directory / "server.pem", directory / "server-key.pem")
    tls.ca.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    tls.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    tls.key.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    )
    return tls


# --- rsyslogd -------------------------------------------------------------------------------


class Rsyslog:
    """rsyslogd in the foreground, `imtcp` on host:port (TLS when `tls`), every message's
    raw text a line in `out` (RFC 5424 as received, the framing removed)."""

    def __init__(self, directory: Path, host: str, tls: Tls | None = None) -> None:
        self.dir = directory
        self.dir.mkdir(parents=True, exist_ok=True)
        self.host = host
        self.port = free_port(host)
        self.out = directory / "received.log"
        self.tls = tls
        self.proc: subprocess.Popen[bytes] | None = None

    def _config(self) -> str:
        tls = ""
        driver = ""
        if self.tls is not None:
            tls = (
                f'global(DefaultNetstreamDriver="gtls" '
                f'DefaultNetstreamDriverCAFile="{self.tls.ca}" '
                f'DefaultNetstreamDriverCertFile="{self.tls.cert}" '
                f'DefaultNetstreamDriverKeyFile="{self.tls.key}")\n'
            )
            driver = ' StreamDriver.Name="gtls" StreamDriver.Mode="1" StreamDriver.AuthMode="anon"'
        return (
            f'global(workDirectory="{self.dir}")\n'
            + tls
            + f'module(load="imtcp"{driver})\n'
            + f'input(type="imtcp" address="{self.host}" port="{self.port}")\n'
            + 'template(name="raw" type="string" string="%rawmsg%\\n")\n'
            + f'action(type="omfile" file="{self.out}" template="raw" flushOnTXEnd="on"'
            + ' asyncWriting="off")\n'
        )

    def start(self) -> Rsyslog:
        conf = self.dir / "rsyslog.conf"
        conf.write_text(self._config())
        self.proc = subprocess.Popen(
            ["rsyslogd", "-n", "-f", str(conf), "-i", str(self.dir / "rsyslogd.pid")],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        wait_port(self.host, self.port, self.proc, "rsyslogd")
        return self

    def stop(self) -> None:
        if self.proc is not None:
            stop(self.proc)
            if self.proc.stdout:
                self.proc.stdout.close()
            self.proc = None

    def lines(self) -> list[str]:
        if not self.out.exists():
            return []
        return self.out.read_text(errors="replace").splitlines()


# --- systemd-journal-remote ------------------------------------------------------------------

JOURNAL_REMOTE = Path("/lib/systemd/systemd-journal-remote")


@contextlib.contextmanager
def journal_remote(directory: Path, host: str) -> Iterator[tuple[int, Path]]:
    """Passive mode over plain HTTP, into one journal file."""
    port = free_port(host)
    output = directory / "remote.journal"
    proc = subprocess.Popen(
        [
            str(JOURNAL_REMOTE),
            f"--listen-http={host}:{port}",
            "--split-mode=none",
            f"--output={output}",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_port(host, port, proc, "systemd-journal-remote")
        yield port, output
    finally:
        stop(proc)
        if proc.stdout:
            proc.stdout.close()


def journalctl_available() -> bool:
    return JOURNAL_REMOTE.exists() and shutil.which("journalctl") is not None


# --- OTLP/HTTP -------------------------------------------------------------------------------


class OtlpServer:
    """Answers `POST /v1/logs` with 200 `{}` after parsing the body into the official
    `ExportLogsServiceRequest` (an unparseable body is 400, as a collector answers)."""

    def __init__(self, host: str) -> None:
        from google.protobuf import json_format
        from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
            ExportLogsServiceRequest,
        )

        received: list[ExportLogsServiceRequest] = []
        self.received = received
        self.bodies: list[bytes] = []
        bodies = self.bodies

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                bodies.append(body)
                try:
                    assert self.path == "/v1/logs", self.path
                    assert self.headers["Content-Type"] == "application/json"
                    request = ExportLogsServiceRequest()
                    json_format.Parse(body, request)
                except Exception as exc:
                    self.send_response(400)
                    self.end_headers()
                    self.wfile.write(str(exc).encode())
                    return
                received.append(request)
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer((host, free_port(host)), Handler)
        self.url = f"otlp+http://{host}:{self.server.server_address[1]}/v1/logs"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> OtlpServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join()
