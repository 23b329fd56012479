"""The official Python client against a secured Corvid (HTTPS, client certificates).

Runs only when CORVID_SECURED_URL (https://...) and CORVID_CERTS (a directory written by
`corvid certificate create`, whose admin.pem the server registered with --admin-certificate)
are set; scripts/check starts such a server.
"""

from __future__ import annotations

import base64
import datetime
import os
import uuid

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from ravendb import CreateDatabaseOperation, DeleteDatabaseOperation, DocumentStore
from ravendb.exceptions.exceptions import AuthorizationException
from ravendb.serverwide.database_record import DatabaseRecord
from ravendb.serverwide.operations.certificates import (
    DatabaseAccess,
    DeleteCertificateOperation,
    GetCertificatesOperation,
    PutClientCertificateOperation,
    SecurityClearance,
)

URL = os.environ.get("CORVID_SECURED_URL", "").rstrip("/")
CERTS = os.environ.get("CORVID_CERTS", "")

pytestmark = pytest.mark.skipif(
    not (URL and CERTS), reason="CORVID_SECURED_URL and CORVID_CERTS are not set"
)


def _store(database: str | None, certificate: str | None) -> DocumentStore:
    store = DocumentStore(urls=[URL], database=database)
    if certificate:
        store.certificate_pem_path = certificate
    store.trust_store_path = os.path.join(CERTS, "ca.pem")
    store.initialize()
    return store


@pytest.fixture()
def admin():
    store = _store(None, os.path.join(CERTS, "admin-with-key.pem"))
    yield store
    store.close()


@pytest.fixture()
def database(admin):
    name = f"py_secured_{uuid.uuid4().hex[:8]}"
    admin.maintenance.server.send(CreateDatabaseOperation(DatabaseRecord(name)))
    yield name
    admin.maintenance.server.send(DeleteDatabaseOperation(name, hard_delete=True))


def _client_certificate(tmp_path, name: str) -> tuple[str, str]:
    """A self-made client certificate: (PEM file with the key, base64 DER)."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .sign(key, hashes.SHA256())
    )
    path = tmp_path / f"{name}.pem"
    path.write_bytes(
        certificate.public_bytes(serialization.Encoding.PEM)
        + key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    der = certificate.public_bytes(serialization.Encoding.DER)
    return str(path), base64.b64encode(der).decode()


def test_the_admin_certificate_reads_and_writes(admin, database):
    with _store(database, os.path.join(CERTS, "admin-with-key.pem")) as store:
        with store.open_session() as session:
            session.store({"Name": "Ada"}, "users/1")
            session.save_changes()
        with store.open_session() as session:
            assert session.load("users/1", dict)["Name"] == "Ada"


def test_no_certificate_is_refused(database):
    store = _store(database, None)
    try:
        with pytest.raises(AuthorizationException) as refused:
            with store.open_session() as session:
                session.load("users/1", dict)
        assert "requires client certificate" in str(refused.value), refused.value
    finally:
        store.close()


def test_a_registered_read_only_certificate_reads_but_cannot_write(admin, database, tmp_path):
    with _store(database, os.path.join(CERTS, "admin-with-key.pem")) as store:
        with store.open_session() as session:
            session.store({"Name": "Ada"}, "users/1")
            session.save_changes()
    pem, der = _client_certificate(tmp_path, "reader")
    admin.maintenance.server.send(
        PutClientCertificateOperation(
            "reader", der, {database: DatabaseAccess.READ}, SecurityClearance.VALID_USER
        )
    )
    listed = admin.maintenance.server.send(GetCertificatesOperation(0, 100))
    reader = next(it for it in listed if it.name == "reader")
    try:
        with _store(database, pem) as store:
            with store.open_session() as session:
                assert session.load("users/1", dict)["Name"] == "Ada"
            with pytest.raises(Exception) as refused:
                with store.open_session() as session:
                    session.store({"Name": "Bob"}, "users/2")
                    session.save_changes()
            assert "Could not authorize access" in str(refused.value), refused.value
    finally:
        admin.maintenance.server.send(DeleteCertificateOperation(reader.thumbprint))
