//! `/databases/{db}/attachments`: get, check, put and delete one attachment.

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use corvid_store::{WriteOp, WriteResult};
use serde_json::json;

use crate::error::ApiError;
use crate::extract::{BodyBytes, Db, Params};
use crate::http::{blocking, if_match, json_value, with_etag, write};

const ATTACHMENT_MISSING: &str =
    "Raven.Client.Exceptions.Documents.Attachments.AttachmentDoesNotExistException";

pub(crate) async fn get_attachment(
    Db(database): Db,
    Params(params): Params,
) -> Result<Response, ApiError> {
    let id = params.required("id")?.to_owned();
    let name = params.required("name")?.to_owned();
    let (lookup_id, lookup_name) = (id.clone(), name.clone());
    let found =
        blocking(move || Ok(database.snapshot()?.attachment(&lookup_id, &lookup_name)?)).await?;
    let Some((info, content)) = found else {
        return Err(ApiError::not_found(
            ATTACHMENT_MISSING,
            format!("attachment `{name}` of document `{id}` does not exist"),
        ));
    };
    let mut response = with_etag(content.into_response(), &info.change_vector);
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&info.content_type) {
        headers.insert(header::CONTENT_TYPE, value);
    }
    if let Ok(value) = HeaderValue::from_str(&info.hash) {
        headers.insert("Attachment-Hash", value);
    }
    headers.insert("Attachment-Size", HeaderValue::from(info.size));
    Ok(response)
}

pub(crate) async fn head_attachment(
    Db(database): Db,
    Params(params): Params,
) -> Result<Response, ApiError> {
    let id = params.required("id")?.to_owned();
    let name = params.required("name")?.to_owned();
    let found = blocking(move || Ok(database.snapshot()?.attachment(&id, &name)?)).await?;
    match found {
        Some((info, _)) => Ok(with_etag(
            StatusCode::OK.into_response(),
            &info.change_vector,
        )),
        None => Ok(StatusCode::NOT_FOUND.into_response()),
    }
}

/// `PUT /attachments?id=&name=&contentType=` with the raw content as body. A one-part
/// multipart body (what the Python client sends for `bytes`) is unwrapped.
pub(crate) async fn put_attachment(
    Db(database): Db,
    Params(params): Params,
    headers: HeaderMap,
    BodyBytes(bytes): BodyBytes,
) -> Result<Response, ApiError> {
    let id = params.required("id")?.to_owned();
    let name = params.required("name")?.to_owned();
    let request_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|it| it.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let mut content_type = params.get("contentType").unwrap_or_default().to_owned();
    let content = if request_type
        .to_ascii_lowercase()
        .starts_with("multipart/form-data")
    {
        let (part_type, content) = single_part(&request_type, bytes).await?;
        if let Some(part_type) = part_type {
            content_type = part_type;
        }
        content
    } else {
        bytes
    };
    let results = write(
        &database,
        vec![WriteOp::AttachmentPut {
            document_id: id,
            name,
            content_type,
            content: content.to_vec(),
            expected_change_vector: if_match(&headers)?,
        }],
    )
    .await?;
    let Some(WriteResult::AttachmentPut {
        document_id,
        name,
        hash,
        content_type,
        size,
        change_vector,
        ..
    }) = results.into_iter().next()
    else {
        return Err(ApiError::internal("attachment put returned no result"));
    };
    Ok(json_value(
        StatusCode::CREATED,
        &json!({
            "Name": name,
            "Hash": hash,
            "ContentType": content_type,
            "Size": size,
            "ChangeVector": change_vector,
            "DocumentId": document_id,
        }),
    ))
}

async fn single_part(
    content_type: &str,
    bytes: Bytes,
) -> Result<(Option<String>, Bytes), ApiError> {
    let invalid =
        |error: multer::Error| ApiError::bad_request(format!("invalid multipart body: {error}"));
    let boundary = multer::parse_boundary(content_type).map_err(invalid)?;
    let stream = futures_util::stream::once(async move { Ok::<Bytes, std::io::Error>(bytes) });
    let mut multipart = multer::Multipart::new(stream, boundary);
    let Some(field) = multipart.next_field().await.map_err(invalid)? else {
        return Err(ApiError::bad_request("multipart body has no part"));
    };
    let part_type = field.content_type().map(ToString::to_string);
    let content = field.bytes().await.map_err(invalid)?;
    Ok((part_type, content))
}

pub(crate) async fn delete_attachment(
    Db(database): Db,
    Params(params): Params,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let id = params.required("id")?.to_owned();
    let name = params.required("name")?.to_owned();
    write(
        &database,
        vec![WriteOp::AttachmentDelete {
            document_id: id,
            name,
            expected_change_vector: if_match(&headers)?,
        }],
    )
    .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
