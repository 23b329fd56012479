//! Recorded conformance fixtures (`tests/fixtures/<kind>/<name>.json`, recorded from RavenDB
//! 4.1 by `tests/conformance/record_*.py`): reading them and storing their source documents.

use base64::Engine as _;
use corvid_client::Client;
use serde_json::Value;

/// The folder of the fixtures of `kind` (`raven_etl`, `sql_etl`).
pub fn fixtures_dir(kind: &str) -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(kind)
}

/// Reads fixture `name` of `kind`.
pub fn load_fixture(kind: &str, name: &str) -> Value {
    let path = fixtures_dir(kind).join(format!("{name}.json"));
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|error| panic!("cannot read {}: {error}", path.display()));
    serde_json::from_str(&text).unwrap()
}

/// Stores the fixture's source documents and their attachments through `client`.
pub async fn store_documents(client: &Client, fixture: &Value) {
    for doc in fixture["documents"].as_array().unwrap() {
        let id = doc["id"].as_str().unwrap();
        client.put(id, &doc["document"], None).await.unwrap();
        for attachment in doc["attachments"].as_array().unwrap() {
            let content = base64::engine::general_purpose::STANDARD
                .decode(attachment["base64"].as_str().unwrap())
                .unwrap();
            client
                .put_attachment(
                    id,
                    attachment["name"].as_str().unwrap(),
                    attachment["content_type"].as_str().unwrap(),
                    bytes::Bytes::from(content),
                )
                .await
                .unwrap();
        }
    }
}
