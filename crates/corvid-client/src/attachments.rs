//! Attachment operations: get, put and delete one attachment of a document.

use bytes::Bytes;
use reqwest::Method;
use reqwest::header::{CONTENT_TYPE, ETAG};
use serde::Deserialize;

use crate::client::{Client, expect_found};
use crate::encoding::query_string;
use crate::error::ClientError;
use crate::executor::{DatabaseRequest, RawResponse};

/// An attachment's content and the metadata the server sends in headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    /// The raw content.
    pub bytes: Bytes,
    /// The stored content type (`Content-Type`); empty when the server sent none.
    pub content_type: String,
    /// Base64 SHA-256 of the content (`Attachment-Hash`).
    pub hash: String,
    /// The attachment's change vector (`ETag`, quotes removed).
    pub change_vector: String,
}

/// The server's description of a stored attachment, as returned by a put.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct AttachmentDetails {
    #[serde(rename = "Name")]
    pub name: String,
    #[serde(rename = "DocumentId")]
    pub document_id: String,
    #[serde(rename = "ContentType")]
    pub content_type: String,
    /// Base64 SHA-256 of the content.
    #[serde(rename = "Hash")]
    pub hash: String,
    #[serde(rename = "Size")]
    pub size: u64,
    #[serde(rename = "ChangeVector")]
    pub change_vector: String,
}

const ATTACHMENT_HASH: &str = "Attachment-Hash";

impl Client {
    /// Loads attachment `name` of document `id`, or `None` if the document or attachment does
    /// not exist.
    pub async fn get_attachment(
        &self,
        id: &str,
        name: &str,
    ) -> Result<Option<Attachment>, ClientError> {
        let path = format!(
            "/attachments{}",
            query_string(&[("id", id), ("name", name)])
        );
        let response = self
            .executor
            .execute(&DatabaseRequest::new(Method::GET, path))
            .await?;
        if response.status == 404 {
            return Ok(None);
        }
        expect_found(&response)?;
        attachment_from_response(response).map(Some)
    }

    /// Stores `bytes` as attachment `name` of the existing document `id`.
    pub async fn put_attachment(
        &self,
        id: &str,
        name: &str,
        content_type: &str,
        bytes: Bytes,
    ) -> Result<AttachmentDetails, ClientError> {
        let path = format!(
            "/attachments{}",
            query_string(&[("id", id), ("name", name), ("contentType", content_type)])
        );
        let request = DatabaseRequest {
            body: Some(bytes),
            ..DatabaseRequest::new(Method::PUT, path)
        };
        let response = self.executor.execute(&request).await?;
        expect_found(&response)?;
        response.json()
    }

    /// Deletes attachment `name` of document `id`. Deleting a missing attachment succeeds.
    pub async fn delete_attachment(&self, id: &str, name: &str) -> Result<(), ClientError> {
        let path = format!(
            "/attachments{}",
            query_string(&[("id", id), ("name", name)])
        );
        self.executor
            .execute(&DatabaseRequest::new(Method::DELETE, path))
            .await?;
        Ok(())
    }
}

fn attachment_from_response(response: RawResponse) -> Result<Attachment, ClientError> {
    let missing_header = |name: &str| ClientError::InvalidResponse {
        url: response.url.clone(),
        reason: format!("attachment response has no `{name}` header"),
    };
    let change_vector = response
        .header(ETAG.as_str())
        .map(|it| it.trim_matches('"').to_owned())
        .ok_or_else(|| missing_header("ETag"))?;
    let hash = response
        .header(ATTACHMENT_HASH)
        .map(str::to_owned)
        .ok_or_else(|| missing_header(ATTACHMENT_HASH))?;
    let content_type = response
        .header(CONTENT_TYPE.as_str())
        .unwrap_or_default()
        .to_owned();
    Ok(Attachment {
        bytes: response.body,
        content_type,
        hash,
        change_vector,
    })
}
