//! `POST /admin/test-connection?url=&database=`: RavenDB's "test connection" of a Raven
//! connection string (the Studio's button), answered in RavenDB 4.1's shape: `{Success: true}`,
//! or `{Success: false, HTTPSuccess: false, Error}`. RavenDB also opens its TCP protocol
//! there; Corvid has none, so the test is the HTTP one, through corvid-client.

use axum::http::StatusCode;
use axum::response::Response;
use serde_json::json;

use crate::error::ApiError;
use crate::extract::Params;
use crate::http::json_value;

pub(crate) async fn test_connection(Params(params): Params) -> Result<Response, ApiError> {
    let url = params.required("url")?;
    let database = params.get("database").filter(|it| !it.is_empty());
    let answer = match corvid_etl::test_raven_connection(url.trim(), database).await {
        Ok(()) => json!({"Success": true}),
        Err(error) => json!({"Success": false, "HTTPSuccess": false, "Error": error}),
    };
    Ok(json_value(StatusCode::OK, &answer))
}
