//! `POST /admin/etl/olap/test`: what an OLAP ETL transformation would write for one document.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use corvid_etl::{EtlConfiguration, EtlType};
use serde_json::{Value, json};

use crate::error::ApiError;
use crate::extract::{Db, JsonObject};
use crate::http::json_value;
use crate::routes::etl::{
    connection_strings_with, document_under_test, inline_connection, transformation_errors_json,
};
use crate::state::AppState;

/// `POST /admin/etl/olap/test` with `{DocumentId, IsDelete, Connection?, Configuration}`:
/// RavenDB's `ItemsByPartition` — per table and partition, the file the rows go to (`{run}`
/// stands for the run's part of the name) and each column's Parquet type and values — with
/// the transformation errors and `output()` lines. Nothing is written.
pub(crate) async fn test_olap_etl(
    State(state): State<AppState>,
    Db(database): Db,
    JsonObject(request): JsonObject,
) -> Result<Response, ApiError> {
    let (document_id, is_delete) = document_under_test(&request)?;
    let configuration: EtlConfiguration = match request.get("Configuration") {
        Some(it) => {
            let mut it = it.clone();
            if let Some(object) = it.as_object_mut() {
                object.entry("EtlType").or_insert_with(|| json!("Olap"));
            }
            serde_json::from_value(it).map_err(|error| {
                ApiError::bad_request(format!("invalid `Configuration`: {error}"))
            })?
        }
        None => return Err(ApiError::bad_request("`Configuration` is required")),
    };
    if configuration.etl_type() != EtlType::Olap {
        return Err(ApiError::bad_request(
            "`Configuration` is not an OLAP ETL one (`EtlType` must be `Olap`)",
        ));
    }
    let inline = inline_connection(&request, "Olap")?;
    let etl = state.etl().clone();
    let result = crate::http::blocking(move || {
        let stored = connection_strings_with(&etl, &database, inline)?;
        Ok(corvid_etl::test_olap_script(
            &database,
            &stored,
            configuration,
            (&document_id, is_delete),
            corvid_etl::ScriptOptions::default(),
        )?)
    })
    .await?;
    let now = corvid_store::Timestamp::now().to_iso();
    let items: Vec<Value> = result
        .partitions
        .iter()
        .map(|it| {
            let columns: Vec<Value> = it
                .columns
                .iter()
                .map(|(name, kind, values)| json!({"Name": name, "Type": kind, "Values": values}))
                .collect();
            let key = if it.partition.is_empty() {
                it.table.clone()
            } else {
                format!("{}/{}", it.table, it.partition)
            };
            json!({
                "Key": key,
                "TableName": it.table,
                "PartitionKey": it.partition,
                "FilePath": it.file,
                "Columns": columns,
            })
        })
        .collect();
    Ok(json_value(
        StatusCode::OK,
        &json!({
            "ItemsByPartition": items,
            "TransformationErrors": transformation_errors_json(&result.transformation_errors, &now),
            "DebugOutput": result.debug_output,
        }),
    ))
}
