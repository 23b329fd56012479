//! Raven ETL's loader: one `bulk_docs` request per batch (one destination transaction),
//! sent by a task of its own so the next batch can be prepared and sent meanwhile; a refused
//! item is isolated by splitting the batch and left out.

use std::collections::BTreeSet;

use corvid_client::{Client, ClientError};

use crate::destination::{
    AbortOnDrop, BadItemSearch, Delivered, Delivery, LoadError, Loader, Targets,
};
use crate::destinations::raven::commands::collection_id_prefix;
use crate::destinations::raven::encoder::{PrefixDelete, RavenLoad};

/// Sends Raven ETL batches through a RavenDB-protocol client.
pub(crate) struct RavenLoader {
    pub client: Client,
}

impl Loader for RavenLoader {
    type Batch = RavenLoad;

    async fn start<'a>(
        &'a mut self,
        load: &'a mut RavenLoad,
        targets: Targets<'a>,
    ) -> (Delivery, usize) {
        if load.commands.is_empty() {
            return (Delivery::Done(Ok(Delivered::default())), 0);
        }
        let Targets { owned, not_empty } = targets;
        let empty = empty_collections(&self.client, &load.prefix_deletes, owned, not_empty).await;
        let skipped: Vec<usize> = load
            .prefix_deletes
            .iter()
            .filter(|it| {
                empty.contains(&it.collection_prefix)
                    || (it.new_document && owned.contains(&it.collection_prefix))
            })
            .map(|it| it.index)
            .collect();
        load.remove_commands(&skipped);
        // The batch moves into the task that sends it: no copy.
        let load = std::mem::take(load);
        let n_commands = load.commands.len();
        let client = self.client.clone();
        let newly_owned: Vec<String> = empty.into_iter().collect();
        let task = tokio::spawn(async move {
            let mut search = BadItemSearch::new(load.items.len());
            while let Some(range) = search.next() {
                let sent = client
                    .bulk_docs_applied(load.item_commands(range.clone()))
                    .await
                    .map_err(|error| classify_client_error(&error));
                // The destination's answer names destination ids, not source items.
                search.record(
                    range,
                    sent,
                    |_| None,
                    |item_idx| load.items[item_idx].source_id.clone(),
                )?;
            }
            Ok(Delivered {
                newly_owned,
                skipped: search.finish()?,
                buffered: false,
            })
        });
        (Delivery::Sending(AbortOnDrop(task)), n_commands)
    }
}

/// Classifies a failed `bulk_docs` request: the node unreachable or unavailable (after
/// failover) is a reconnect; a missing database, refused credentials, a certificate that does
/// not verify (on every node) or an unknown route is configuration; a request the server
/// refuses as invalid is about an item in it (an id too long, a document nested too deep, a
/// collection name it cannot take).
pub(crate) fn classify_client_error(error: &ClientError) -> LoadError {
    let message = error.to_string();
    // A certificate not trusted, or ours refused in the handshake, stays so until an operator
    // changes a certificate or the trusted roots: not a node that will come back.
    if error.is_tls_failure() {
        return LoadError::Configuration { message };
    }
    match error {
        ClientError::AllNodesFailed { .. }
        | ClientError::Http { .. }
        | ClientError::InvalidResponse { .. } => LoadError::Reconnect { message },
        ClientError::NoUrls
        | ClientError::InvalidUrl { .. }
        | ClientError::HttpClientBuild { .. }
        | ClientError::DatabaseDoesNotExist { .. }
        | ClientError::DatabaseAlreadyExists { .. }
        | ClientError::NotFound { .. } => LoadError::Configuration { message },
        // ETL sends no change vectors: a conflict, or a body that cannot be written, is
        // about a document of the batch.
        ClientError::Concurrency { .. } | ClientError::Serialize { .. } => LoadError::BadItem {
            document_id: None,
            message,
        },
        ClientError::Server {
            status, type_name, ..
        } => match (*status, short_type_name(type_name.as_deref())) {
            (401 | 403, _) => LoadError::Configuration { message },
            (400 | 413 | 422, _) => LoadError::BadItem {
                document_id: None,
                message,
            },
            // RavenDB answers 500 for an argument it refuses: 4.1, asked to put an id of 3,015
            // bytes, answers `System.ArgumentException` "Key size is too big, must be at most
            // 2025 bytes" (checked against the reference server).
            (500, "ArgumentException" | "ArgumentOutOfRangeException" | "InvalidDataException") => {
                LoadError::BadItem {
                    document_id: None,
                    message,
                }
            }
            _ => LoadError::Reconnect { message },
        },
    }
}

fn short_type_name(type_name: Option<&str>) -> &str {
    type_name
        .and_then(|it| it.rsplit('.').next())
        .unwrap_or_default()
}

/// The collection id prefixes, among those of `prefix_deletes` not yet owned or seen holding
/// data, that no document of the destination can start with: no collection with that id
/// prefix holds a document. The others go into `not_empty`. A destination that cannot
/// answer owns nothing new.
async fn empty_collections(
    client: &Client,
    prefix_deletes: &[PrefixDelete],
    owned: &BTreeSet<String>,
    not_empty: &mut BTreeSet<String>,
) -> BTreeSet<String> {
    let wanted: BTreeSet<&str> = prefix_deletes
        .iter()
        .map(|it| it.collection_prefix.as_str())
        .filter(|it| !owned.contains(*it) && !not_empty.contains(*it))
        .collect();
    if wanted.is_empty() {
        return BTreeSet::new();
    }
    let Ok(counts) = client.collection_counts().await else {
        return BTreeSet::new();
    };
    let (holding, empty): (Vec<&str>, Vec<&str>) = wanted.into_iter().partition(|prefix| {
        counts.iter().any(|(collection, count)| {
            *count > 0 && collection_id_prefix(collection).eq_ignore_ascii_case(prefix)
        })
    });
    not_empty.extend(holding.into_iter().map(str::to_owned));
    empty.into_iter().map(str::to_owned).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server(status: u16, type_name: Option<&str>) -> ClientError {
        ClientError::Server {
            url: "http://n1/databases/db/bulk_docs".to_owned(),
            status,
            type_name: type_name.map(str::to_owned),
            message: "refused".to_owned(),
        }
    }

    fn class(error: ClientError) -> &'static str {
        classify_client_error(&error).class().name()
    }

    #[test]
    fn an_unavailable_destination_is_retried() {
        assert_eq!(
            class(ClientError::AllNodesFailed {
                failures: Vec::new()
            }),
            "Reconnect"
        );
        assert_eq!(
            class(server(500, Some("System.IO.IOException"))),
            "Reconnect"
        );
        assert_eq!(class(server(500, None)), "Reconnect");
        let invalid = ClientError::InvalidResponse {
            url: "u".to_owned(),
            reason: "truncated".to_owned(),
        };
        assert_eq!(class(invalid), "Reconnect");
    }

    #[test]
    fn a_refused_request_is_about_an_item() {
        assert_eq!(class(server(400, None)), "BadItem");
        assert_eq!(class(server(413, None)), "BadItem");
        assert_eq!(
            class(server(500, Some("System.ArgumentException"))),
            "BadItem"
        );
        let conflict = ClientError::Concurrency {
            message: "cv".to_owned(),
        };
        assert_eq!(class(conflict), "BadItem");
    }

    /// An HTTPS server with a self-signed certificate for 127.0.0.1 that completes handshakes
    /// and then closes; returns its URL and certificate.
    async fn self_signed_server() -> (String, rustls::pki_types::CertificateDer<'static>) {
        let key = rcgen::KeyPair::generate().unwrap();
        let certificate = rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let config = rustls::ServerConfig::builder_with_provider(std::sync::Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![certificate.der().clone()],
            rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
        )
        .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(config));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("https://{}", listener.local_addr().unwrap());
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                let _ = acceptor.accept(socket).await;
            }
        });
        (url, certificate.der().clone())
    }

    #[tokio::test]
    async fn a_destination_certificate_nobody_trusts_is_configuration() {
        let (url, certificate) = self_signed_server().await;
        let options = |tls| corvid_client::ClientOptions {
            disable_topology_updates: true,
            tls,
            ..Default::default()
        };
        let untrusting = Client::new(std::slice::from_ref(&url), "db", options(None)).unwrap();
        let error = untrusting.get("users/1").await.unwrap_err();
        assert!(error.is_tls_failure(), "{error}");
        assert!(error.to_string().contains("UnknownIssuer"), "{error}");
        assert_eq!(class(error), "Configuration");
        // Trusted, the handshake succeeds: what fails then is the server hanging up.
        let tls = corvid_client::ClientTls::new(&[certificate], None).unwrap();
        let trusting = Client::new(std::slice::from_ref(&url), "db", options(Some(tls))).unwrap();
        let error = trusting.get("users/1").await.unwrap_err();
        assert!(!error.is_tls_failure(), "{error}");
        assert_eq!(class(error), "Reconnect");
    }

    #[test]
    fn credentials_and_missing_databases_are_configuration() {
        assert_eq!(class(server(401, None)), "Configuration");
        assert_eq!(class(server(403, None)), "Configuration");
        let missing = ClientError::DatabaseDoesNotExist {
            database: "db".to_owned(),
        };
        assert_eq!(class(missing), "Configuration");
    }
}
