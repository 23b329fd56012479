//! Client-certificate authentication, RavenDB's model.
//!
//! A secured server asks every TLS client for a certificate and accepts any at the TLS layer
//! (`crate::listener`). Here, each request's certificate is looked up by thumbprint among the
//! registered ones ([`certificates`]); [`access`] holds the ONE table of what each route
//! requires (no certificate, any valid one, a database permission, Operator, ClusterAdmin) and
//! the middleware that checks it, answering RavenDB's 403 `InvalidAuth`.
//!
//! An unsecured server (no `--certificate`) checks nothing: it listens on loopback only.

mod access;
mod certificates;

pub(crate) use access::{Caller, Identity, authorize};
pub(crate) use certificates::{
    CertificateDefinition, CertificateStore, PutCertificate, thumbprint,
};
pub use certificates::{DatabaseAccess, SecurityClearance};
