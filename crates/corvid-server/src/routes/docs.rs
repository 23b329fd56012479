//! `/databases/{db}/docs`: load, check, put and delete single documents.

use std::sync::Arc;

use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use corvid_store::{Database, Document, PutDocument, WriteOp, WriteResult};
use serde_json::{Value, json};

use crate::error::ApiError;
use crate::extract::{BodyBytes, Db, JsonObject, Params};
use crate::http::{
    QueryParams, blocking, etag_of, if_match, json_kind, json_text, json_value, not_modified,
    with_etag, write,
};

/// The default page size of listings, as in RavenDB.
const DEFAULT_PAGE_SIZE: usize = 1024;

/// `GET /docs?id=a&id=b`, `?startsWith=prefix`, or (no id) the latest documents.
pub(crate) async fn get_docs(
    Db(database): Db,
    Params(params): Params,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let ids: Vec<String> = params
        .get_all("id")
        .into_iter()
        .map(str::to_owned)
        .collect();
    let ids = if ids.is_empty() { None } else { Some(ids) };
    load(database, ids, None, &params, &headers).await
}

/// `GET /collections/docs?name=Companies&start=0&pageSize=100`: one collection's documents,
/// newest first, paged by the server from the collection's own index (RavenDB's Studio route).
pub(crate) async fn get_collection_docs(
    Db(database): Db,
    Params(params): Params,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let collection = params.required("name")?.to_owned();
    load(database, None, Some(collection), &params, &headers).await
}

/// `POST /docs` with `{"Ids": [...]}`: the form clients use for long id lists.
pub(crate) async fn post_docs(
    Db(database): Db,
    Params(params): Params,
    headers: HeaderMap,
    JsonObject(body): JsonObject,
) -> Result<Response, ApiError> {
    let ids = match body.get("Ids") {
        Some(Value::Array(items)) => items
            .iter()
            .map(|it| match it {
                Value::String(id) => Ok(id.clone()),
                other => Err(ApiError::bad_request(format!(
                    "`Ids` must hold strings, got {}",
                    json_kind(other)
                ))),
            })
            .collect::<Result<Vec<_>, _>>()?,
        _ => return Err(ApiError::bad_request("`Ids` must be an array of ids")),
    };
    load(database, Some(ids), None, &params, &headers).await
}

async fn load(
    database: Arc<Database>,
    ids: Option<Vec<String>>,
    collection: Option<String>,
    params: &QueryParams,
    headers: &HeaderMap,
) -> Result<Response, ApiError> {
    let metadata_only = params.flag("metadataOnly");
    let start = params.number::<usize>("start")?.unwrap_or(0);
    let page_size = params
        .number::<usize>("pageSize")?
        .unwrap_or(DEFAULT_PAGE_SIZE);
    let starts_with = params.get("startsWith").map(str::to_owned);
    let single_id = ids.as_ref().is_some_and(|it| it.len() == 1);
    let docs: Vec<Option<Document>> = blocking(move || {
        let snapshot = database.snapshot()?;
        if let Some(ids) = ids {
            let mut found = Vec::with_capacity(ids.len());
            for id in &ids {
                found.push(snapshot.get(id)?);
            }
            return Ok(found);
        }

        let docs = match (starts_with, collection) {
            (Some(prefix), _) => snapshot.starting_with(&prefix, start, page_size)?,
            (None, Some(collection)) => {
                snapshot.latest_in_collection(&collection, start, page_size)?
            }
            (None, None) => snapshot.latest_documents(start, page_size)?,
        };
        Ok(docs.into_iter().map(Some).collect())
    })
    .await?;
    if single_id && docs.first().is_some_and(Option::is_none) {
        return Ok(StatusCode::NOT_FOUND.into_response());
    }
    let change_vectors: Vec<&str> = docs
        .iter()
        .map(|it| it.as_ref().map_or("null", |doc| doc.change_vector.as_str()))
        .collect();
    let etag = etag_of(&change_vectors);
    if let Some(response) = not_modified(headers, &etag) {
        return Ok(response);
    }
    let mut body = String::with_capacity(docs.len() * 256 + 32);
    body.push_str("{\"Results\":[");
    for (idx, doc) in docs.iter().enumerate() {
        if idx > 0 {
            body.push(',');
        }
        match doc {
            Some(doc) if metadata_only => {
                let metadata_only_doc = Document {
                    body: "{}".to_owned(),
                    ..doc.clone()
                };
                metadata_only_doc.write_json(&mut body);
            }
            Some(doc) => doc.write_json(&mut body),
            None => body.push_str("null"),
        }
    }
    body.push_str("],\"Includes\":{}}");
    Ok(with_etag(json_text(StatusCode::OK, body), &etag))
}

/// `HEAD /docs?id=`: 200 with the change vector as `ETag`, or 404.
pub(crate) async fn head_doc(
    Db(database): Db,
    Params(params): Params,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let id = params.required("id")?.to_owned();
    let doc = blocking(move || Ok(database.snapshot()?.get(&id)?)).await?;
    let Some(doc) = doc else {
        return Ok(StatusCode::NOT_FOUND.into_response());
    };
    if let Some(response) = not_modified(&headers, &doc.change_vector) {
        return Ok(response);
    }
    Ok(with_etag(
        StatusCode::OK.into_response(),
        &doc.change_vector,
    ))
}

/// `PUT /docs?id=` with the document as body; `If-Match` for optimistic concurrency.
pub(crate) async fn put_doc(
    Db(database): Db,
    Params(params): Params,
    headers: HeaderMap,
    BodyBytes(bytes): BodyBytes,
) -> Result<Response, ApiError> {
    let id = params.required("id")?.to_owned();
    let text = std::str::from_utf8(&bytes)
        .map_err(|_| ApiError::bad_request("malformed JSON: the body is not UTF-8"))?;
    if !text.trim_start().starts_with('{') {
        return Err(ApiError::bad_request(
            "expected a JSON object as the document body",
        ));
    }
    let put = PutDocument::from_json(&id, text, if_match(&headers)?)?;

    let results = write(&database, vec![WriteOp::Put(put)]).await?;
    let Some(WriteResult::Put {
        id, change_vector, ..
    }) = results.into_iter().next()
    else {
        return Err(ApiError::internal("put returned no result"));
    };
    Ok(json_value(
        StatusCode::CREATED,
        &json!({"Id": id, "ChangeVector": change_vector}),
    ))
}

/// `DELETE /docs?id=`; `If-Match` for optimistic concurrency. 204 whether or not it existed.
pub(crate) async fn delete_doc(
    Db(database): Db,
    Params(params): Params,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let id = params.required("id")?.to_owned();
    write(
        &database,
        vec![WriteOp::Delete {
            id,
            expected_change_vector: if_match(&headers)?,
        }],
    )
    .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
