//! ETL routes, RavenDB's paths and shapes: connection strings, ETL tasks (add, update,
//! reset, toggle, delete), ongoing-task info, and `/etl/stats` and `/etl/progress`.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::Response;
use corvid_etl::{ConnectionString, EtlConfiguration, EtlError, EtlType, ProcessStatus, TaskInfo};
use corvid_store::Database;
use serde_json::{Map, Value, json};

use crate::error::ApiError;
use crate::extract::{BodyBytes, Db, JsonObject, Params};
use crate::http::{QueryParams, json_value};
use crate::routes::server::node_url;
use crate::state::AppState;

impl From<EtlError> for ApiError {
    fn from(error: EtlError) -> Self {
        match &error {
            EtlError::Config(_)
            | EtlError::DuplicateTaskName { .. }
            | EtlError::ConnectionStringInUse { .. } => ApiError::bad_request(error.to_string()),
            // Not 404: the official clients read a 404 as "no result" and carry on silently.
            EtlError::TaskNotFound { .. } | EtlError::ConnectionStringNotFound { .. } => {
                ApiError::bad_request(error.to_string())
            }
            EtlError::DocumentNotFound { .. } => ApiError::not_found(
                "Raven.Client.Exceptions.Documents.DocumentDoesNotExistException",
                error.to_string(),
            ),
            EtlError::DocumentNotInCollections { .. } => ApiError::bad_request(error.to_string()),
            EtlError::Storage(_) => ApiError::internal(error),
        }
    }
}

fn etl_type(name: Option<&str>) -> Result<Option<EtlType>, ApiError> {
    match name {
        None | Some("") => Ok(None),
        Some(it) if it.eq_ignore_ascii_case("Raven") || it.eq_ignore_ascii_case("RavenEtl") => {
            Ok(Some(EtlType::Raven))
        }
        Some(it) if it.eq_ignore_ascii_case("Sql") || it.eq_ignore_ascii_case("SqlEtl") => {
            Ok(Some(EtlType::Sql))
        }
        Some(it) if it.eq_ignore_ascii_case("Queue") || it.eq_ignore_ascii_case("QueueEtl") => {
            Ok(Some(EtlType::Queue))
        }
        Some(it) if it.eq_ignore_ascii_case("Olap") || it.eq_ignore_ascii_case("OlapEtl") => {
            Ok(Some(EtlType::Olap))
        }
        Some(other) => Err(ApiError::bad_request(format!(
            "unknown connection string or task type `{other}`"
        ))),
    }
}

/// `PUT /admin/connection-strings` with a `Type`-tagged connection string.
pub(crate) async fn put_connection_string(
    State(state): State<AppState>,
    Db(database): Db,
    BodyBytes(bytes): BodyBytes,
) -> Result<Response, ApiError> {
    let connection: ConnectionString = serde_json::from_slice(&bytes).map_err(|error| {
        ApiError::bad_request(format!(
            "invalid connection string (expected `Type` Raven, Sql, Queue or Olap with its fields): {error}"
        ))
    })?;
    state
        .etl()
        .put_connection_string(&database, connection)
        .await?;
    Ok(json_value(
        StatusCode::OK,
        &json!({"RaftCommandIndex": state.next_command_index()}),
    ))
}

/// `GET /admin/connection-strings[?connectionStringName=&type=]`.
pub(crate) async fn get_connection_strings(
    State(state): State<AppState>,
    Db(database): Db,
    Params(params): Params,
) -> Result<Response, ApiError> {
    let name = params
        .get("connectionStringName")
        .filter(|it| !it.is_empty())
        .map(str::to_owned);
    let kind = etl_type(params.get("type"))?;
    let ConnectionStringsByKind {
        raven,
        sql,
        queue,
        olap,
    } = crate::http::blocking(move || {
        redacted_connection_strings(&state, &database, |connection| {
            name.as_deref()
                .is_none_or(|it| it.eq_ignore_ascii_case(connection.name()))
                && kind.is_none_or(|it| it == connection.kind())
        })
    })
    .await?;
    Ok(json_value(
        StatusCode::OK,
        &json!({
            "RavenConnectionStrings": raven,
            "SqlConnectionStrings": sql,
            "OlapConnectionStrings": olap,
            "ElasticSearchConnectionStrings": {},
            "QueueConnectionStrings": queue,
        }),
    ))
}

/// Connection strings as RavenDB lists them: each kind by name.
pub(crate) struct ConnectionStringsByKind {
    pub raven: Map<String, Value>,
    pub sql: Map<String, Value>,
    pub queue: Map<String, Value>,
    pub olap: Map<String, Value>,
}

/// The database's connection strings that `keep` accepts, passwords redacted: a password
/// never leaves the server.
pub(crate) fn redacted_connection_strings(
    state: &AppState,
    database: &Database,
    keep: impl Fn(&ConnectionString) -> bool,
) -> Result<ConnectionStringsByKind, ApiError> {
    let mut by_kind = ConnectionStringsByKind {
        raven: Map::new(),
        sql: Map::new(),
        queue: Map::new(),
        olap: Map::new(),
    };
    for connection in state.etl().connection_strings(database)? {
        if !keep(&connection) {
            continue;
        }
        let connection = connection.redacted();
        let value = serde_json::to_value(&connection).map_err(ApiError::internal)?;
        let kind = match connection.kind() {
            EtlType::Raven => &mut by_kind.raven,
            EtlType::Sql => &mut by_kind.sql,
            EtlType::Queue => &mut by_kind.queue,
            EtlType::Olap => &mut by_kind.olap,
        };
        kind.insert(connection.name().to_owned(), value);
    }
    Ok(by_kind)
}

/// `DELETE /admin/connection-strings?connectionString=name&type=Raven`.
pub(crate) async fn delete_connection_string(
    State(state): State<AppState>,
    Db(database): Db,
    Params(params): Params,
) -> Result<Response, ApiError> {
    let name = params.required("connectionString")?;
    let Some(kind) = etl_type(params.get("type"))? else {
        return Err(ApiError::bad_request(
            "query string parameter `type` is required",
        ));
    };
    // Removing what is not there is done, as in RavenDB.
    match state
        .etl()
        .remove_connection_string(&database, name, kind)
        .await
    {
        Ok(()) | Err(EtlError::ConnectionStringNotFound { .. }) => {}
        Err(error) => return Err(error.into()),
    }
    Ok(json_value(
        StatusCode::OK,
        &json!({"RaftCommandIndex": state.next_command_index()}),
    ))
}

/// `PUT /admin/etl` (add), `PUT /admin/etl?id=` (update) and the `RESET` method.
pub(crate) async fn admin_etl(
    State(state): State<AppState>,
    Db(database): Db,
    Params(params): Params,
    method: Method,
    BodyBytes(bytes): BodyBytes,
) -> Result<Response, ApiError> {
    if method.as_str() == "RESET" {
        let task = params.required("configurationName")?;
        let transform = params.required("transformationName")?;
        state.etl().reset_etl(&database, task, transform).await?;
        return Ok(json_value(
            StatusCode::OK,
            &json!({"RaftCommandIndex": state.next_command_index()}),
        ));
    }
    if method != Method::PUT {
        return Err(ApiError::bad_request(format!(
            "there is no handler for {method} on /admin/etl; use PUT or RESET"
        )));
    }
    let config: EtlConfiguration = serde_json::from_slice(&bytes)
        .map_err(|error| ApiError::bad_request(format!("invalid ETL configuration: {error}")))?;
    let task_id = match params.number::<u64>("id")? {
        Some(id) => {
            let reset: Vec<String> = params
                .get_all("reset")
                .into_iter()
                .map(str::to_owned)
                .collect();
            state
                .etl()
                .update_etl(&database, id, config, &reset)
                .await?
        }
        None => state.etl().add_etl(&database, config).await?,
    };
    Ok(json_value(
        StatusCode::OK,
        &json!({"RaftCommandIndex": state.next_command_index(), "TaskId": task_id}),
    ))
}

/// The task named by `taskName` or numbered by `id_param`, read off the async runtime.
async fn find_task(
    state: &AppState,
    database: &Arc<Database>,
    params: &QueryParams,
    id_param: &str,
) -> Result<EtlConfiguration, ApiError> {
    let name = params
        .get("taskName")
        .filter(|it| !it.is_empty())
        .map(str::to_owned);
    let id = params.number::<u64>(id_param)?;
    if id.is_none() && name.is_none() {
        return Err(ApiError::bad_request(format!(
            "query string parameter `{id_param}` or `taskName` is required"
        )));
    }
    let (etl, database) = (state.etl().clone(), database.clone());
    crate::http::blocking(move || match (id, name) {
        (_, Some(name)) => Ok(etl.task_by_name(&database, &name)?),
        (Some(id), None) => Ok(etl.task_config(&database, id)?),
        (None, None) => Err(ApiError::bad_request("no task named")),
    })
    .await
}

/// The database's tasks with their processes, and its connection strings, read off the
/// async runtime.
async fn tasks_and_connection_strings(
    state: &AppState,
    database: &Arc<Database>,
) -> Result<(Vec<TaskInfo>, Vec<ConnectionString>), ApiError> {
    let (etl, database) = (state.etl().clone(), database.clone());
    crate::http::blocking(move || Ok((etl.tasks(&database)?, etl.connection_strings(&database)?)))
        .await
}

/// `POST /admin/tasks/state?key=&type=&disable=[&taskName=]`.
pub(crate) async fn set_task_state(
    State(state): State<AppState>,
    Db(database): Db,
    Params(params): Params,
) -> Result<Response, ApiError> {
    let config = find_task(&state, &database, &params, "key").await?;
    let disable = params.flag("disable");
    let task_id = state
        .etl()
        .set_disabled(&database, config.task_id, disable)
        .await?;
    Ok(json_value(
        StatusCode::OK,
        &json!({"TaskId": task_id, "RaftCommandIndex": state.next_command_index(), "ResponsibleNode": state.node_tag()}),
    ))
}

/// `DELETE /admin/tasks?id=&type=`.
pub(crate) async fn delete_task(
    State(state): State<AppState>,
    Db(database): Db,
    Params(params): Params,
) -> Result<Response, ApiError> {
    // Deleting a task that is not there is done, as in RavenDB.
    let task_id = match find_task(&state, &database, &params, "id").await {
        Ok(config) => {
            state.etl().delete_task(&database, config.task_id).await?;
            config.task_id
        }
        Err(_) => params.number::<u64>("id")?.unwrap_or(0),
    };
    Ok(json_value(
        StatusCode::OK,
        &json!({"TaskId": task_id, "RaftCommandIndex": state.next_command_index()}),
    ))
}

/// `GET /task?key=&type=` or `?taskName=&type=`: one ongoing task, or 404.
pub(crate) async fn get_task(
    State(state): State<AppState>,
    Db(database): Db,
    Params(params): Params,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    // A missing task is a 404, which the official clients turn into `None`.
    let config = match find_task(&state, &database, &params, "key").await {
        Ok(it) => it,
        Err(error) => {
            return Err(ApiError::not_found(
                "Raven.Client.Exceptions.RavenException",
                error.message,
            ));
        }
    };
    let (tasks, connection_strings) = tasks_and_connection_strings(&state, &database).await?;
    let Some(task) = tasks.iter().find(|it| it.config.task_id == config.task_id) else {
        return Err(EtlError::TaskNotFound {
            task: config.task_id.to_string(),
        }
        .into());
    };
    Ok(json_value(
        StatusCode::OK,
        &task_json(
            task,
            &connection_strings,
            (&state.node_tag(), &node_url(&state, &headers)),
        ),
    ))
}

/// `GET /tasks`: every ongoing task of the database.
pub(crate) async fn get_tasks(
    State(state): State<AppState>,
    Db(database): Db,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let (tasks, connection_strings) = tasks_and_connection_strings(&state, &database).await?;
    let url = node_url(&state, &headers);
    let tag = state.node_tag();
    let tasks: Vec<Value> = tasks
        .iter()
        .map(|it| task_json(it, &connection_strings, (&tag, &url)))
        .collect();
    Ok(json_value(
        StatusCode::OK,
        &json!({"OngoingTasksList": tasks, "SubscriptionsCount": 0, "PullReplications": []}),
    ))
}

fn task_json(
    task: &TaskInfo,
    connection_strings: &[ConnectionString],
    (tag, url): (&str, &str),
) -> Value {
    let config = &task.config;
    let n_disabled = config.transforms.iter().filter(|it| it.disabled).count();
    let state = if config.disabled || n_disabled == config.transforms.len() {
        "Disabled"
    } else if n_disabled > 0 {
        "PartiallyEnabled"
    } else {
        "Enabled"
    };
    let errors: Vec<&str> = task
        .processes
        .iter()
        .filter_map(|it| match &it.stats.status {
            ProcessStatus::Error(message) => Some(message.as_str()),
            _ => None,
        })
        .collect();
    let connection_status = if state == "Disabled" || !errors.is_empty() {
        "NotActive"
    } else if task
        .processes
        .iter()
        .any(|it| it.stats.status == ProcessStatus::Reconnect)
    {
        "Reconnect"
    } else {
        "Active"
    };
    // Corvid's addition: why loading fails, classified (Reconnect, BadItem, Configuration).
    let load_error = task
        .processes
        .iter()
        .filter(|it| it.stats.status == ProcessStatus::Reconnect)
        .find_map(|it| it.stats.last_load_error.as_ref().map(|(_, error)| error));
    let connection = connection_strings.iter().find(|it| {
        it.kind() == config.etl_type()
            && it
                .name()
                .eq_ignore_ascii_case(&config.connection_string_name)
    });
    let mut task = json!({
        "TaskId": config.task_id,
        "TaskName": config.name,
        "TaskType": config.etl_type().task_type(),
        "TaskState": state,
        "TaskConnectionStatus": connection_status,
        "ResponsibleNode": {"NodeTag": tag, "NodeUrl": url, "ResponsibleNode": null},
        "MentorNode": config.mentor_node,
        "PinToMentorNode": config.pin_to_mentor_node,
        "Error": if errors.is_empty() { Value::Null } else { Value::String(errors.join("; ")) },
        "LoadErrorClass": load_error.map(|it| it.class().name()),
        "LoadError": load_error.map(|it| it.to_string()),
        "Configuration": configuration_json(config),
        "ConnectionStringName": config.connection_string_name,
    });
    // The destination fields of OngoingTaskRavenEtl and OngoingTaskSqlEtl.
    let destination = match connection {
        Some(ConnectionString::Raven(raven)) => json!({
            "DestinationDatabase": raven.database,
            "DestinationUrl": raven.topology_discovery_urls.first(),
            "TopologyDiscoveryUrls": raven.topology_discovery_urls,
        }),
        Some(ConnectionString::Sql(sql)) => {
            let target = corvid_etl::destinations::sql::connection::parse(
                &sql.factory_name,
                &sql.connection_string,
            )
            .ok();
            json!({
                "ConnectionStringDefined": true,
                // Corvid's addition, for the Studio: which engine the server is.
                "DestinationEngine": target.as_ref().map(|it| match it.provider {
                    corvid_etl::destinations::sql::SqlProvider::Postgres => "PostgreSQL",
                    corvid_etl::destinations::sql::SqlProvider::MySql => "MySQL",
                    corvid_etl::destinations::sql::SqlProvider::Sqlite => "SQLite",
                }),
                "DestinationServer": target.as_ref().map(|it| match it.provider {
                    corvid_etl::destinations::sql::SqlProvider::Sqlite => "sqlite".to_owned(),
                    _ => format!("{}:{}", it.host, it.port),
                }),
                "DestinationDatabase": target.map(|it| it.database),
            })
        }
        Some(ConnectionString::Queue(queue)) => json!({
            // OngoingTaskQueueEtl's fields: the broker and where it is (no credentials).
            "BrokerType": queue.broker_type.name(),
            "Url": queue.address(),
            "ConnectionStringDefined": true,
        }),
        Some(ConnectionString::Olap(olap)) => json!({
            // OngoingTaskOlapEtl's: where files go (no credentials).
            "Destination": olap_destination(olap),
            "ConnectionStringDefined": true,
        }),
        None if config.etl_type() == EtlType::Olap => json!({
            "Destination": null,
            "ConnectionStringDefined": false,
        }),
        None if config.etl_type() == EtlType::Queue => json!({
            "BrokerType": null,
            "Url": null,
            "ConnectionStringDefined": false,
        }),
        None if config.etl_type() == EtlType::Sql => json!({
            "ConnectionStringDefined": false,
            "DestinationServer": null,
            "DestinationDatabase": null,
        }),
        None => json!({
            "DestinationDatabase": null,
            "DestinationUrl": null,
            "TopologyDiscoveryUrls": null,
        }),
    };
    if let (Some(task), Value::Object(fields)) = (task.as_object_mut(), destination) {
        task.extend(fields);
    }
    task
}

/// Where an OLAP connection string's files go, as the task list shows it.
fn olap_destination(olap: &corvid_etl::OlapConnectionString) -> String {
    match (&olap.local_settings, &olap.s3_settings) {
        (Some(local), _) => format!("Local: {}", local.folder_path),
        (None, Some(s3)) => format!("S3: {}/{}", s3.bucket_name, s3.remote_folder_name)
            .trim_end_matches('/')
            .to_owned(),
        (None, None) => String::new(),
    }
}

/// A task's configuration as RavenDB's ongoing-task answers give it: without `EtlType`, which
/// the task's `TaskType` already says (the Node.js client revives `Configuration` as a
/// `RavenEtlConfiguration`, whose `etlType` has no setter, and fails on the field).
fn configuration_json(config: &EtlConfiguration) -> Value {
    let mut value = serde_json::to_value(config).unwrap_or(Value::Null);
    if let Some(fields) = value.as_object_mut() {
        fields.remove("EtlType");
    }
    value
}

/// `POST /admin/etl/raven/test` with `{DocumentId, IsDelete, Configuration}`: the commands
/// the transformation would send for that document, nothing sent.
pub(crate) async fn test_raven_etl(
    Db(database): Db,
    JsonObject(request): JsonObject,
) -> Result<Response, ApiError> {
    let Some(document_id) = request.get("DocumentId").and_then(Value::as_str) else {
        return Err(ApiError::bad_request("`DocumentId` is required"));
    };
    let document_id = document_id.to_owned();
    let is_delete = request
        .get("IsDelete")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let config: EtlConfiguration = match request.get("Configuration") {
        Some(it) => serde_json::from_value(it.clone())
            .map_err(|error| ApiError::bad_request(format!("invalid `Configuration`: {error}")))?,
        None => return Err(ApiError::bad_request("`Configuration` is required")),
    };
    let result = crate::http::blocking(move || {
        Ok(corvid_etl::test_raven_script(
            &database,
            &config,
            &document_id,
            is_delete,
            corvid_etl::ScriptOptions::default(),
        )?)
    })
    .await?;
    let now = corvid_store::Timestamp::now().to_iso();
    let errors = transformation_errors_json(&result.transformation_errors, &now);
    // The commands as the process sends them, text for text: parsing them into `Value`s would
    // turn a 30-digit integer into a double the process never sends.
    let commands: Vec<String> = result.commands.iter().map(|it| it.to_json_text()).collect();
    let rest = json!({"TransformationErrors": errors, "DebugOutput": result.debug_output});
    let rest = rest.to_string();
    let body = format!(
        "{{\"Commands\":[{}],{}",
        commands.join(","),
        rest.strip_prefix('{').unwrap_or(&rest)
    );
    Ok(crate::http::json_text(StatusCode::OK, body))
}

/// `POST /admin/etl/sql/test` with `{DocumentId, IsDelete, PerformRolledBackTransaction,
/// Connection?, Configuration}`: RavenDB's `Summary` of statements per table (the bulk
/// statements Corvid really runs, parameters listed in order), with `LoadErrors` from the
/// rolled-back transaction when one was asked for.
pub(crate) async fn test_sql_etl(
    State(state): State<AppState>,
    Db(database): Db,
    JsonObject(request): JsonObject,
) -> Result<Response, ApiError> {
    let Some(document_id) = request.get("DocumentId").and_then(Value::as_str) else {
        return Err(ApiError::bad_request("`DocumentId` is required"));
    };
    let flag = |name: &str| request.get(name).and_then(Value::as_bool).unwrap_or(false);
    let configuration: EtlConfiguration = match request.get("Configuration") {
        Some(it) => serde_json::from_value(it.clone())
            .map_err(|error| ApiError::bad_request(format!("invalid `Configuration`: {error}")))?,
        None => return Err(ApiError::bad_request("`Configuration` is required")),
    };
    let connection = inline_connection(&request, "Sql")?;
    let request = corvid_etl::SqlTestRequest {
        document_id: document_id.to_owned(),
        is_delete: flag("IsDelete"),
        perform_rolled_back_transaction: flag("PerformRolledBackTransaction"),
        connection,
        configuration,
    };
    let stored = {
        let (etl, database) = (state.etl().clone(), database.clone());
        crate::http::blocking(move || Ok(etl.connection_strings(&database)?)).await?
    };
    let result = corvid_etl::test_sql_script(
        database,
        stored,
        request,
        corvid_etl::ScriptOptions::default(),
        state.etl().sqlite_paths(),
    )
    .await?;
    let now = corvid_store::Timestamp::now().to_iso();
    let errors = transformation_errors_json(&result.transformation_errors, &now);
    let summary: Vec<Value> = group_in_order(result.statements.iter().map(|statement| {
        let command = json!({
            "CommandText": statement.text,
            "Params": statement.params.iter().map(|(key, value)| json!({"Key": key, "Value": value})).collect::<Vec<_>>(),
        });
        (statement.table.as_str(), command)
    }))
        .into_iter()
        .map(|(table, commands)| json!({"TableName": table, "Commands": commands}))
        .collect();
    let load_errors: Vec<Value> = result
        .load_errors
        .iter()
        .map(|it| json!({"Date": now, "Error": it}))
        .collect();
    Ok(json_value(
        StatusCode::OK,
        &json!({
            "Summary": summary,
            "LoadErrors": load_errors,
            "SlowSqlWarnings": [],
            "TransformationErrors": errors,
            "DebugOutput": result.debug_output,
        }),
    ))
}

/// `POST /admin/etl/queue/test` with `{DocumentId, IsDelete, Connection?, Configuration}`
/// (`Connection`: a connection string not saved yet, used instead of the stored one of that
/// name, as the SQL test takes it): RavenDB's
/// `Summary` of messages per queue, each with its CloudEvents attributes and body (and, for
/// RabbitMQ, its routing key), the transformation errors and `output()` lines. Nothing is
/// published.
pub(crate) async fn test_queue_etl(
    State(state): State<AppState>,
    Db(database): Db,
    headers: HeaderMap,
    JsonObject(request): JsonObject,
) -> Result<Response, ApiError> {
    let (document_id, is_delete) = document_under_test(&request)?;
    let mut configuration: EtlConfiguration = match request.get("Configuration") {
        Some(it) => serde_json::from_value(it.clone())
            .map_err(|error| ApiError::bad_request(format!("invalid `Configuration`: {error}")))?,
        None => return Err(ApiError::bad_request("`Configuration` is required")),
    };
    if configuration.etl_type() != EtlType::Queue {
        configuration.destination =
            corvid_etl::EtlDestinationConfig::Queue(corvid_etl::QueueEtlConfig::default());
    }
    let inline = inline_connection(&request, "Queue")?;
    let server_url = node_url(&state, &headers);
    let etl = state.etl().clone();
    let result = crate::http::blocking(move || {
        let stored = connection_strings_with(&etl, &database, inline)?;
        Ok(corvid_etl::test_queue_script(
            &database,
            &stored,
            configuration,
            (&document_id, is_delete),
            corvid_etl::ScriptOptions::default(),
            Some(&server_url),
        )?)
    })
    .await?;
    let now = corvid_store::Timestamp::now().to_iso();
    let errors = transformation_errors_json(&result.transformation_errors, &now);
    let summary: Vec<Value> = group_in_order(result.messages.iter().map(|message| {
        let mut attributes = Map::new();
        for (name, value) in message.event.attributes() {
            attributes.insert(name.to_owned(), json!(value));
        }
        if let Some(content_type) = message.event.data_content_type {
            attributes.insert("datacontenttype".to_owned(), json!(content_type));
        }
        let body = serde_json::from_str::<Value>(&message.body).unwrap_or(Value::Null);
        let entry = json!({
            "RoutingKey": message.routing_key,
            "Attributes": attributes,
            "Body": body,
            "DeduplicationId": message.deduplication_id,
            "DeleteProcessedDocument": message.delete_processed,
        });
        (message.queue.as_str(), entry)
    }))
    .into_iter()
    .map(|(queue, messages)| json!({"QueueName": queue, "Messages": messages}))
    .collect();
    Ok(json_value(
        StatusCode::OK,
        &json!({
            "Summary": summary,
            "TransformationErrors": errors,
            "DebugOutput": result.debug_output,
        }),
    ))
}

/// A test request's `DocumentId` (required) and `IsDelete`.
pub(crate) fn document_under_test(
    request: &Map<String, Value>,
) -> Result<(String, bool), ApiError> {
    let Some(document_id) = request.get("DocumentId").and_then(Value::as_str) else {
        return Err(ApiError::bad_request("`DocumentId` is required"));
    };
    let is_delete = request
        .get("IsDelete")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    Ok((document_id.to_owned(), is_delete))
}

/// The database's connection strings, with a test request's `inline` one in place of the
/// stored one of its name.
pub(crate) fn connection_strings_with(
    etl: &corvid_etl::EtlManager,
    database: &Database,
    inline: Option<ConnectionString>,
) -> Result<Vec<ConnectionString>, EtlError> {
    let mut stored = etl.connection_strings(database)?;
    if let Some(inline) = inline {
        stored.retain(|it| it.name() != inline.name());
        stored.push(inline);
    }
    Ok(stored)
}

/// A test request's `Connection`: a connection string not saved yet (`Type` defaults to
/// `default_type`).
pub(crate) fn inline_connection(
    request: &Map<String, Value>,
    default_type: &str,
) -> Result<Option<ConnectionString>, ApiError> {
    match request.get("Connection") {
        None | Some(Value::Null) => Ok(None),
        Some(it) => {
            let mut it = it.clone();
            if let Some(object) = it.as_object_mut() {
                object.entry("Type").or_insert_with(|| json!(default_type));
            }
            serde_json::from_value(it)
                .map(Some)
                .map_err(|error| ApiError::bad_request(format!("invalid `Connection`: {error}")))
        }
    }
}

/// The test endpoints' `TransformationErrors`.
pub(crate) fn transformation_errors_json(
    errors: &[corvid_etl::TransformFailure],
    now: &str,
) -> Vec<Value> {
    errors
        .iter()
        .map(|it| json!({"Date": now, "DocumentId": it.document_id, "Error": it.message}))
        .collect()
}

/// Groups entries by key (a table, a queue) in the order the keys first appear.
fn group_in_order<'a>(
    entries: impl Iterator<Item = (&'a str, Value)>,
) -> Vec<(String, Vec<Value>)> {
    let mut groups: Vec<(String, Vec<Value>)> = Vec::new();
    for (key, entry) in entries {
        match groups.iter_mut().find(|(it, _)| it == key) {
            Some((_, entries)) => entries.push(entry),
            None => groups.push((key.to_owned(), vec![entry])),
        }
    }
    groups
}

/// `POST /admin/etl/sql/test-connection?factoryName=Npgsql` with the connection string as
/// the body: `{Success: true}` or `{Success: false, Error}`, as RavenDB answers.
pub(crate) async fn test_sql_connection(
    State(state): State<AppState>,
    // The database must exist, as in RavenDB, though the test does not touch it.
    Db(_database): Db,
    Params(params): Params,
    BodyBytes(bytes): BodyBytes,
) -> Result<Response, ApiError> {
    let Some(factory_name) = params.get("factoryName") else {
        return Err(ApiError::bad_request(
            "query parameter `factoryName` is required",
        ));
    };
    let Ok(connection_string) = String::from_utf8(bytes.to_vec()) else {
        return Err(ApiError::bad_request(
            "the connection string must be UTF-8 text",
        ));
    };
    let connection = corvid_etl::SqlConnectionString {
        name: "test".to_owned(),
        connection_string,
        factory_name: factory_name.to_owned(),
    };
    let answer =
        match corvid_etl::test_sql_connection(&connection, state.etl().sqlite_paths()).await {
            Ok(()) => json!({"Success": true}),
            Err(error) => json!({"Success": false, "Error": error}),
        };
    Ok(json_value(StatusCode::OK, &answer))
}

/// The database's tasks; only those listed by `?name=` (any number of them, compared
/// case-insensitively) when there is one, as RavenDB's ETL stats, progress and performance do.
async fn named_tasks(
    state: &AppState,
    database: &Arc<Database>,
    params: &QueryParams,
) -> Result<Vec<TaskInfo>, ApiError> {
    let names = params.get_all("name");
    let (etl, database) = (state.etl().clone(), database.clone());
    let mut tasks = crate::http::blocking(move || Ok(etl.tasks(&database)?)).await?;
    if !names.is_empty() {
        tasks.retain(|task| {
            names
                .iter()
                .any(|it| it.eq_ignore_ascii_case(&task.config.name))
        });
    }
    Ok(tasks)
}

/// `GET /etl/stats[?name=task]`.
pub(crate) async fn etl_stats(
    State(state): State<AppState>,
    Db(database): Db,
    Params(params): Params,
) -> Result<Response, ApiError> {
    let mut results = Vec::new();
    for task in named_tasks(&state, &database, &params).await? {
        let stats: Vec<Value> = task
            .processes
            .iter()
            .map(|process| {
                let it = &process.stats;
                let errors: Vec<Value> = it
                    .last_transformation_errors
                    .iter()
                    .map(|(at, failure)| {
                        json!({"Date": at.to_iso(), "DocumentId": failure.document_id, "Error": failure.message})
                    })
                    .collect();
                let skipped: Vec<Value> = it
                    .last_skipped_items
                    .iter()
                    .map(|(at, item)| {
                        json!({"Date": at.to_iso(), "DocumentId": item.document_id, "Error": item.message})
                    })
                    .collect();
                json!({
                    "TransformationName": process.transform_name,
                    "Statistics": {
                        "Status": status_name(&it.status),
                        "Error": match &it.status { ProcessStatus::Error(message) => Some(message.clone()), _ => None },
                        "LastProcessedEtag": it.last_processed_etag,
                        "Extracted": it.n_extracted,
                        "Transformation": {"Successes": it.n_loaded, "Errors": it.n_transformation_errors},
                        "Load": {"Batches": it.n_batches, "Errors": it.n_load_errors, "SkippedItems": it.n_skipped_items},
                        "Filtered": it.n_filtered,
                        "LastTransformationErrors": errors,
                        "LastLoadErrorTime": it.last_load_error.as_ref().map(|(at, _)| at.to_iso()),
                        "LastLoadError": it.last_load_error.as_ref().map(|(_, error)| error.to_string()),
                        "LastLoadErrorClass": it.last_load_error.as_ref().map(|(_, error)| error.class().name()),
                        // Documents the destination refused, left out so that later ones arrive.
                        "LastSkippedItems": skipped,
                    },
                })
            })
            .collect();
        results.push(json!({
            "TaskName": task.config.name,
            "EtlType": task.config.etl_type(),
            "Stats": stats,
        }));
    }
    Ok(json_value(StatusCode::OK, &json!({"Results": results})))
}

fn status_name(status: &ProcessStatus) -> &'static str {
    match status {
        ProcessStatus::Active => "Active",
        ProcessStatus::Reconnect => "Reconnect",
        ProcessStatus::Error(_) => "Error",
    }
}

/// `GET /etl/progress[?name=task]`: documents and tombstones left per transformation.
pub(crate) async fn etl_progress(
    State(state): State<AppState>,
    Db(database): Db,
    Params(params): Params,
) -> Result<Response, ApiError> {
    let tasks = named_tasks(&state, &database, &params).await?;
    let etl = state.etl().clone();
    let results = crate::http::blocking(move || {
        let mut results = Vec::new();
        for task in tasks {
            let mut processes = Vec::new();
            for transform in &task.config.transforms {
                let collections =
                    (!transform.apply_to_all_documents).then_some(transform.collections.as_slice());
                let (docs_left, docs_total, tombstones_left, tombstones_total) =
                    etl.remaining(&database, &task.config.name, collections, &transform.name)?;
                let stats = task
                    .processes
                    .iter()
                    .find(|it| it.transform_name.eq_ignore_ascii_case(&transform.name))
                    .map(|it| it.stats.clone())
                    .unwrap_or_default();
                processes.push(json!({
                    "TransformationName": transform.name,
                    "TransactionalId": format!("{}/{}", task.config.name, transform.name),
                    "Completed": docs_left == 0 && tombstones_left == 0,
                    "Disabled": task.config.disabled || transform.disabled,
                    "Estimated": false,
                    "AverageProcessedPerSecond": stats.processed_per_second,
                    "NumberOfDocumentsToProcess": docs_left,
                    "TotalNumberOfDocuments": docs_total,
                    "NumberOfDocumentTombstonesToProcess": tombstones_left,
                    "TotalNumberOfDocumentTombstones": tombstones_total,
                    "NumberOfCounterGroupsToProcess": 0,
                    "TotalNumberOfCounterGroups": 0,
                }));
            }
            results.push(json!({
                "TaskName": task.config.name,
                "EtlType": task.config.etl_type(),
                "ProcessesProgress": processes,
            }));
        }
        Ok(results)
    })
    .await?;
    Ok(json_value(StatusCode::OK, &json!({"Results": results})))
}

/// `GET /etl/performance[?name=task]`: the last 25 batches of each process.
pub(crate) async fn etl_performance(
    State(state): State<AppState>,
    Db(database): Db,
    Params(params): Params,
) -> Result<Response, ApiError> {
    let mut results = Vec::new();
    for task in named_tasks(&state, &database, &params).await? {
        let stats: Vec<Value> = task
            .processes
            .iter()
            .map(|process| {
                let batches: Vec<Value> = process
                    .stats
                    .last_batches
                    .iter()
                    .map(|it| {
                        let extract_ms = it.extract_and_transform.as_secs_f64() * 1000.0;
                        let load_ms = it.load.as_secs_f64() * 1000.0;
                        json!({
                            "Started": it.started.to_iso(),
                            "DurationInMs": extract_ms + load_ms,
                            "NumberOfExtractedItems": it.n_items,
                            "NumberOfCommands": it.n_commands,
                            "Successfully": it.succeeded,
                            "Details": {
                                "Operations": [
                                    {"Name": "Extract and transform", "DurationInMs": extract_ms},
                                    {"Name": "Load", "DurationInMs": load_ms},
                                ],
                            },
                        })
                    })
                    .collect();
                json!({"TransformationName": process.transform_name, "Performance": batches})
            })
            .collect();
        results.push(json!({
            "TaskName": task.config.name,
            "EtlType": task.config.etl_type(),
            "Stats": stats,
        }));
    }
    Ok(json_value(StatusCode::OK, &json!({"Results": results})))
}
