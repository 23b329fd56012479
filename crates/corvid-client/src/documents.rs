//! Document operations: get, get many, put, delete and `bulk_docs`.

use std::collections::HashMap;

use bytes::Bytes;
use reqwest::Method;
use serde::Deserialize;
use serde_json::Value;

use crate::client::{Client, expect_found};
use crate::commands::{Command, encode_batch};
use crate::encoding::query_string;
use crate::error::ClientError;
use crate::executor::{DatabaseRequest, RawResponse};

/// The server's answer to a document put.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct PutResult {
    /// The stored id, with the server's casing.
    #[serde(rename = "Id")]
    pub id: String,
    /// The document's new change vector.
    #[serde(rename = "ChangeVector")]
    pub change_vector: String,
}

/// `GET /docs` query strings longer than this switch to `POST /docs` with `{"Ids":[...]}`,
/// as the official clients do.
const MAX_GET_QUERY_LEN: usize = 1024;

const JSON_CONTENT_TYPE: &str = "application/json; charset=utf-8";

impl Client {
    /// Loads one document with its `@metadata`, or `None` if it does not exist.
    pub async fn get(&self, id: &str) -> Result<Option<Value>, ClientError> {
        let path = format!("/docs{}", query_string(&[("id", id)]));
        let response = self
            .executor
            .execute(&DatabaseRequest::new(Method::GET, path))
            .await?;
        if response.status == 404 {
            return Ok(None);
        }
        let results = parse_results(&response)?;
        Ok(results.into_iter().next().filter(|it| !it.is_null()))
    }

    /// Loads several documents; the result has one entry per requested id, in request order.
    ///
    /// Documents are matched to ids by `@metadata.@id`, case-insensitively like the server.
    pub async fn get_many(&self, ids: &[&str]) -> Result<Vec<Option<Value>>, ClientError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let pairs: Vec<(&str, &str)> = ids.iter().map(|id| ("id", *id)).collect();
        let query = query_string(&pairs);
        let request = if query.len() <= MAX_GET_QUERY_LEN {
            DatabaseRequest::new(Method::GET, format!("/docs{query}"))
        } else {
            let body = serde_json::to_vec(&serde_json::json!({ "Ids": ids }))
                .map_err(|source| ClientError::Serialize { source })?;
            DatabaseRequest {
                body: Some(Bytes::from(body)),
                content_type: Some(JSON_CONTENT_TYPE),
                ..DatabaseRequest::new(Method::POST, "/docs".to_owned())
            }
        };
        let response = self.executor.execute(&request).await?;
        if response.status == 404 {
            return Ok(vec![None; ids.len()]);
        }
        let results = parse_results(&response)?;
        match_results_to_ids(ids, results).map_err(|reason| ClientError::InvalidResponse {
            url: response.url.clone(),
            reason,
        })
    }

    /// Stores a document (with its `@metadata`, e.g. `@collection`).
    ///
    /// With `change_vector`, the put only succeeds if the stored document has that change vector
    /// (`""` means "must not exist"); otherwise it fails with [`ClientError::Concurrency`].
    pub async fn put(
        &self,
        id: &str,
        document: &Value,
        change_vector: Option<&str>,
    ) -> Result<PutResult, ClientError> {
        let body =
            serde_json::to_vec(document).map_err(|source| ClientError::Serialize { source })?;
        let request = DatabaseRequest {
            body: Some(Bytes::from(body)),
            content_type: Some(JSON_CONTENT_TYPE),
            if_match: change_vector,
            ..DatabaseRequest::new(Method::PUT, format!("/docs{}", query_string(&[("id", id)])))
        };
        let response = self.executor.execute(&request).await?;
        expect_found(&response)?;
        response.json()
    }

    /// Deletes a document. Deleting a missing document succeeds.
    ///
    /// With `change_vector`, the delete only succeeds if the stored document has that change
    /// vector; otherwise it fails with [`ClientError::Concurrency`].
    pub async fn delete(&self, id: &str, change_vector: Option<&str>) -> Result<(), ClientError> {
        let request = DatabaseRequest {
            if_match: change_vector,
            ..DatabaseRequest::new(
                Method::DELETE,
                format!("/docs{}", query_string(&[("id", id)])),
            )
        };
        self.executor.execute(&request).await?;
        Ok(())
    }

    /// Runs a batch of commands in one transaction (`POST /bulk_docs`) and returns the
    /// server's per-command results, in command order.
    ///
    /// A batch with [`Command::AttachmentPut`] is sent as `multipart/form-data`.
    pub async fn bulk_docs(&self, commands: &[Command]) -> Result<Vec<Value>, ClientError> {
        let batch = encode_batch(commands)?;
        self.send_bulk_docs(batch.body, &batch.content_type).await
    }

    /// Sends a batch and checks it was applied, without parsing the per-command results (the
    /// ETL sends thousands of commands and needs only the acknowledgement).
    pub async fn bulk_docs_applied(&self, commands: &[Command]) -> Result<(), ClientError> {
        let batch = encode_batch(commands)?;
        let request = DatabaseRequest {
            body: Some(batch.body),
            content_type: Some(&batch.content_type),
            ..DatabaseRequest::new(Method::POST, "/bulk_docs".to_owned())
        };
        let response = self.executor.execute(&request).await?;
        expect_found(&response)
    }

    /// The number of documents in each collection (`GET /collections/stats`), keyed by the
    /// collection name as the server spells it.
    pub async fn collection_counts(&self) -> Result<HashMap<String, u64>, ClientError> {
        #[derive(Deserialize)]
        struct WireStats {
            #[serde(rename = "Collections")]
            collections: HashMap<String, u64>,
        }
        let response = self
            .executor
            .execute(&DatabaseRequest::new(
                Method::GET,
                "/collections/stats".to_owned(),
            ))
            .await?;
        expect_found(&response)?;
        let stats: WireStats = response.json()?;
        Ok(stats.collections)
    }

    /// Sends an already serialized `{"Commands":[...]}` JSON body to `POST /bulk_docs`, for
    /// callers (benchmarks) that build the body once and send it many times.
    pub async fn bulk_docs_raw(&self, body: Bytes) -> Result<Vec<Value>, ClientError> {
        self.send_bulk_docs(body, JSON_CONTENT_TYPE).await
    }

    async fn send_bulk_docs(
        &self,
        body: Bytes,
        content_type: &str,
    ) -> Result<Vec<Value>, ClientError> {
        let request = DatabaseRequest {
            body: Some(body),
            content_type: Some(content_type),
            ..DatabaseRequest::new(Method::POST, "/bulk_docs".to_owned())
        };
        let response = self.executor.execute(&request).await?;
        expect_found(&response)?;
        parse_results(&response)
    }
}

/// Extracts the `Results` array of a `/docs` or `/bulk_docs` response.
fn parse_results(response: &RawResponse) -> Result<Vec<Value>, ClientError> {
    #[derive(Deserialize)]
    struct WireResults {
        #[serde(rename = "Results")]
        results: Vec<Value>,
    }
    let wire_results: WireResults = response.json()?;
    Ok(wire_results.results)
}

/// Pairs each requested id with its document from `results` (which may be in any order and
/// contain `null`s), by case-insensitive `@metadata.@id`.
fn match_results_to_ids(ids: &[&str], results: Vec<Value>) -> Result<Vec<Option<Value>>, String> {
    let mut docs_by_id: HashMap<String, Value> = HashMap::with_capacity(results.len());
    for doc in results {
        if doc.is_null() {
            continue;
        }
        let Some(doc_id) = doc
            .get("@metadata")
            .and_then(|metadata| metadata.get("@id"))
            .and_then(Value::as_str)
        else {
            return Err("a returned document has no `@metadata.@id`".to_owned());
        };
        docs_by_id.insert(doc_id.to_lowercase(), doc);
    }
    let mut res: Vec<Option<Value>> = Vec::with_capacity(ids.len());
    let mut first_idx_by_id: HashMap<String, usize> = HashMap::new();
    for (id_idx, id) in ids.iter().enumerate() {
        let key = id.to_lowercase();
        // The same id may be requested twice; later occurrences copy the first one's result.
        let doc = match first_idx_by_id.get(&key) {
            Some(first_idx) => res.get(*first_idx).cloned().flatten(),
            None => docs_by_id.remove(&key),
        };
        first_idx_by_id.entry(key).or_insert(id_idx);
        res.push(doc);
    }
    Ok(res)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn doc(id: &str) -> Value {
        json!({"n": id, "@metadata": {"@id": id, "@change-vector": "A:1-x"}})
    }

    #[test]
    fn matches_results_by_id_regardless_of_order_and_case() {
        let results = vec![doc("users/2"), Value::Null, doc("Users/1")];
        let matched = match_results_to_ids(&["users/1", "users/3", "USERS/2"], results).unwrap();
        assert_eq!(
            matched,
            vec![Some(doc("Users/1")), None, Some(doc("users/2"))]
        );
    }

    #[test]
    fn repeated_ids_each_get_the_document() {
        let matched = match_results_to_ids(&["a", "A", "b"], vec![doc("a"), doc("a")]).unwrap();
        assert_eq!(matched, vec![Some(doc("a")), Some(doc("a")), None]);
    }

    #[test]
    fn document_without_id_is_invalid() {
        assert!(match_results_to_ids(&["a"], vec![json!({"x": 1})]).is_err());
    }
}
