//! Server-level helpers for tests and benchmarks: create and delete a database on one server.
//!
//! These talk to exactly one URL (no topology, no failover), because database creation is a
//! cluster operation that any single node accepts.

use bytes::Bytes;
use reqwest::Method;
use reqwest::header::CONTENT_TYPE;
use serde_json::json;

use crate::encoding::query_string;
use crate::error::{ClientError, error_from_response};
use crate::executor::RawResponse;
use crate::options::{ClientOptions, build_http_client};
use crate::topology::normalize_url;

/// Creates database `name` with replication factor 1 through the server at `url`.
///
/// Fails with [`ClientError::DatabaseAlreadyExists`] if it exists. The call returns when the
/// server accepted the creation; the database may still be loading.
pub async fn create_database(
    url: &str,
    name: &str,
    options: &ClientOptions,
) -> Result<(), ClientError> {
    let query = query_string(&[("name", name), ("replicationFactor", "1")]);
    let body = json!({ "DatabaseName": name });
    let response = send_admin(url, Method::PUT, &query, &body, options).await?;
    match response.status {
        200..=299 => Ok(()),
        409 => Err(ClientError::DatabaseAlreadyExists {
            database: name.to_owned(),
        }),
        status => Err(error_from_response(
            &response.url,
            status,
            response.header("Database-Missing"),
            &response.body,
            name,
        )),
    }
}

/// Hard-deletes database `name` (data included) through the server at `url`.
///
/// Deleting a database that does not exist succeeds on RavenDB.
pub async fn delete_database(
    url: &str,
    name: &str,
    options: &ClientOptions,
) -> Result<(), ClientError> {
    let body = json!({ "DatabaseNames": [name], "HardDelete": true });
    let response = send_admin(url, Method::DELETE, "", &body, options).await?;
    match response.status {
        200..=299 => Ok(()),
        status => Err(error_from_response(
            &response.url,
            status,
            response.header("Database-Missing"),
            &response.body,
            name,
        )),
    }
}

async fn send_admin(
    url: &str,
    method: Method,
    query: &str,
    body: &serde_json::Value,
    options: &ClientOptions,
) -> Result<RawResponse, ClientError> {
    let base_url = normalize_url(url)?;
    let http = build_http_client(options)?;
    let request_url = format!("{base_url}/admin/databases{query}");
    let body = serde_json::to_vec(body).map_err(|source| ClientError::Serialize { source })?;
    let send_result = async {
        let response = http
            .request(method, &request_url)
            .header(CONTENT_TYPE, "application/json; charset=utf-8")
            .body(Bytes::from(body))
            .send()
            .await?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response.bytes().await?;
        Ok::<_, reqwest::Error>((status, headers, body))
    }
    .await;
    match send_result {
        Ok((status, headers, body)) => Ok(RawResponse {
            url: request_url,
            status,
            headers,
            body,
        }),
        Err(source) => Err(ClientError::Http {
            url: request_url,
            source,
        }),
    }
}
