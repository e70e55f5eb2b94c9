"""The configurations docs/deploy.md hands operators are accepted by the
programs that read them: Debian's nginx (``nginx -t``, with a certificate
made here in place of the real one) and systemd (``systemd-analyze verify``
on the units, in a scratch root where gortc's path exists). A setting
either program does not know, or a typo in a directive, fails here instead
of on an operator's machine."""

from __future__ import annotations

import datetime
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
SYSTEMD_UNITS = ("gortc.service", "gortc-backup.service", "gortc-backup.timer")


def require(program: str, package: str) -> str:
    found = shutil.which(program) or shutil.which(program, path="/usr/sbin:/sbin")
    if found is None:
        if os.environ.get("CI"):
            pytest.fail(f"CI needs {program} for the deployment files (apt-get install {package})")
        pytest.skip(f"{program} is not installed (apt-get install {package})")
    return found


def throwaway_certificate(folder: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "chat.example.org")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


@pytest.mark.parametrize("site", ["gortc.conf", "gortc-instances.conf"])
def test_nginx_accepts_the_site(site: str, tmp_path: Path) -> None:
    nginx = require("nginx", "nginx")
    cert, key = throwaway_certificate(tmp_path)
    text = (DEPLOY / "nginx" / site).read_text()
    # Only the certificate paths change: the rest is checked as shipped.
    text = text.replace("/etc/letsencrypt/live/chat.example.org/fullchain.pem", str(cert))
    text = text.replace("/etc/letsencrypt/live/chat.example.org/privkey.pem", str(key))
    (tmp_path / "site.conf").write_text(text)
    # A main configuration like Debian's, all its paths in tmp_path.
    (tmp_path / "nginx.conf").write_text(
        f"""
        pid {tmp_path}/nginx.pid;
        error_log {tmp_path}/error.log;
        events {{}}
        http {{
            access_log off;
            client_body_temp_path {tmp_path}/body;
            proxy_temp_path {tmp_path}/proxy;
            fastcgi_temp_path {tmp_path}/fastcgi;
            uwsgi_temp_path {tmp_path}/uwsgi;
            scgi_temp_path {tmp_path}/scgi;
            include {tmp_path}/site.conf;
        }}
        """
    )
    checked = subprocess.run(
        [nginx, "-t", "-q", "-e", str(tmp_path / "error.log"), "-p", str(tmp_path),
         "-c", str(tmp_path / "nginx.conf")],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    problems = checked.stderr + (tmp_path / "error.log").read_text(errors="replace")
    assert checked.returncode == 0, problems
    # -q hides the "syntax is ok" lines; a warning (a directive nginx takes
    # but ignores or deprecates) is still a finding.
    assert "[warn]" not in problems and "[emerg]" not in problems, problems


def test_systemd_accepts_the_units(tmp_path: Path) -> None:
    analyze = require("systemd-analyze", "systemd")
    root = tmp_path / "root"
    # verify checks that every command exists: gortc's own path (a stand-in
    # here), /bin/sh and find as the units name them.
    gortc = root / "opt/gortc/bin/gortc"
    gortc.parent.mkdir(parents=True)
    gortc.write_text("#!/bin/sh\n")
    gortc.chmod(0o755)
    for program in ("/bin/sh", "/usr/bin/find"):
        target = root / program.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(program, target)
    shutil.copytree("/lib/systemd/system", root / "lib/systemd/system", symlinks=True)
    units = root / "etc/systemd/system"
    units.mkdir(parents=True)
    for unit in SYSTEMD_UNITS:
        shutil.copy(DEPLOY / "systemd" / unit, units / unit)
    checked = subprocess.run(
        [analyze, "verify", f"--root={root}", *SYSTEMD_UNITS],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    # systemd-analyze exits 0 on unknown keys and bad values (it ignores
    # them, as systemd would): any line it prints is a finding.
    assert checked.returncode == 0 and not checked.stderr.strip(), checked.stderr
    assert not checked.stdout.strip(), checked.stdout
