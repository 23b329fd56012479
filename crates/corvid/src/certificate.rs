//! `corvid certificate create`: a certificate authority, a server certificate it signs and an
//! admin client certificate, for a secured server without an existing PKI.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair,
};

#[derive(clap::Args, Debug)]
pub struct CreateArgs {
    /// The server's name: a DNS name or an IP address clients connect to (localhost and
    /// 127.0.0.1 are always added).
    #[arg(long)]
    pub name: String,
    /// The directory to write ca.pem, server.pem/server.key and admin.pem/admin.key (and
    /// admin-with-key.pem, both in one file) into.
    #[arg(long)]
    pub out: PathBuf,
}

/// Writes the three certificates and prints how to use them.
pub fn create(args: &CreateArgs) -> anyhow::Result<()> {
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create {}", args.out.display()))?;
    let mut ca = CertificateParams::new(Vec::<String>::new())?;
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, format!("Corvid CA for {}", args.name));
    let ca = CertifiedIssuer::self_signed(ca, KeyPair::generate()?)?;
    write(&args.out, "ca.pem", &ca.pem())?;

    let mut names = vec![args.name.clone()];
    for name in ["localhost", "127.0.0.1"] {
        if !names.iter().any(|it| it == name) {
            names.push(name.to_owned());
        }
    }
    let mut server = CertificateParams::new(names)?;
    server
        .distinguished_name
        .push(DnType::CommonName, args.name.clone());
    set_validity(&mut server);
    // The server presents this certificate as a client too (Raven ETL).
    server.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    let key = KeyPair::generate()?;
    let server = server.signed_by(&key, &ca)?;
    write(&args.out, "server.pem", &server.pem())?;
    write(&args.out, "server.key", &key.serialize_pem())?;

    let mut admin = CertificateParams::new(Vec::<String>::new())?;
    admin
        .distinguished_name
        .push(DnType::CommonName, format!("{} admin", args.name));
    admin.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    set_validity(&mut admin);
    let key = KeyPair::generate()?;
    let admin = admin.signed_by(&key, &ca)?;
    write(&args.out, "admin.pem", &admin.pem())?;
    write(&args.out, "admin.key", &key.serialize_pem())?;
    // The Python client wants the certificate and its key in one PEM file.
    write(
        &args.out,
        "admin-with-key.pem",
        &format!("{}{}", admin.pem(), key.serialize_pem()),
    )?;

    let out = args.out.display();
    println!(
        "Wrote {out}/ca.pem, server.pem, server.key, admin.pem, admin.key, admin-with-key.pem.

Serve HTTPS, with admin.pem as a ClusterAdmin client certificate:
  corvid serve --bind 0.0.0.0:8443 --certificate {out}/server.pem --certificate-key {out}/server.key --admin-certificate {out}/admin.pem

curl:
  curl --cacert {out}/ca.pem --cert {out}/admin.pem --key {out}/admin.key https://{name}:8443/databases

Python client (ravendb):
  store = DocumentStore(['https://{name}:8443'], 'db')
  store.certificate_pem_path = '{out}/admin-with-key.pem'
  store.trust_store_path = '{out}/ca.pem'
  store.initialize()

Register more client certificates with PUT /admin/certificates (docs/security/certificates.md).",
        name = args.name
    );
    Ok(())
}

/// From the start of this year to the start of the year after next: about two years, like
/// RavenDB's generated certificates (rcgen's default runs to year 4096).
fn set_validity(params: &mut CertificateParams) {
    let year: i32 = corvid_store::Timestamp::now().to_iso()[..4]
        .parse()
        .unwrap_or(2026);
    params.not_before = rcgen::date_time_ymd(year, 1, 1);
    params.not_after = rcgen::date_time_ymd(year + 2, 1, 1);
}

fn write(dir: &Path, name: &str, text: &str) -> anyhow::Result<()> {
    let path = dir.join(name);
    std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))
}
