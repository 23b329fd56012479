//! The Studio: the browser interface, compiled into the binary and served under `/studio/`.
//!
//! The files under `crates/corvid-server/studio/` are plain HTML, CSS and JavaScript modules
//! (no build step, no vendored library); `include_bytes!` puts them in the binary, so a fresh
//! `cargo build` serves a working Studio with no npm and no network. They are prepared once:
//! gzip-compressed, and given an ETag and a version (a hash of every file). `index.html` is
//! revalidated on every load (`no-cache`, answered 304 when unchanged); everything else is
//! served under `/studio/assets/{version}/…` and cached for good (`immutable`), so a reload
//! costs one conditional request and a new build is picked up at once. The Studio talks to the
//! server only through the public HTTP API.

use std::collections::HashMap;
use std::io::Write as _;
use std::sync::OnceLock;

use axum::extract::Path;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse as _, Response};
use sha2::{Digest as _, Sha256};

use crate::error::ApiError;

struct Asset {
    path: &'static str,
    content_type: &'static str,
    bytes: &'static [u8],
}

macro_rules! assets {
    ($($path:literal => $content_type:expr),* $(,)?) => {
        &[$(Asset {
            path: $path,
            content_type: $content_type,
            bytes: include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/studio/", $path)),
        }),*]
    };
}

const JS: &str = "text/javascript; charset=utf-8";

/// Every file of the Studio (a test checks this list against the folder).
const ASSETS: &[Asset] = assets! {
    "index.html" => "text/html; charset=utf-8",
    "studio.css" => "text/css; charset=utf-8",
    "favicon.svg" => "image/svg+xml",
    "js/app.js" => JS,
    "js/api.js" => JS,
    "js/ui.js" => JS,
    "js/editor.js" => JS,
    "js/chart.js" => JS,
    "js/pages/databases.js" => JS,
    "js/pages/documents.js" => JS,
    "js/pages/document.js" => JS,
    "js/pages/connections.js" => JS,
    "js/pages/tasks.js" => JS,
    "js/pages/task_edit.js" => JS,
    "js/pages/task_edit_queue.js" => JS,
    "js/pages/task_edit_olap.js" => JS,
    "js/pages/task_details.js" => JS,
};

/// Where `index.html` says the other files are.
const ASSETS_PLACEHOLDER: &str = "__ASSETS__";

struct Prepared {
    content_type: &'static str,
    // `Bytes`: a response shares the prepared file instead of copying it.
    plain: bytes::Bytes,
    gzip: bytes::Bytes,
    etag: HeaderValue,
}

struct Studio {
    version: String,
    files: HashMap<&'static str, Prepared>,
}

fn studio() -> &'static Studio {
    static STUDIO: OnceLock<Studio> = OnceLock::new();
    STUDIO.get_or_init(|| {
        let mut hasher = Sha256::new();
        for asset in ASSETS {
            hasher.update(asset.path.as_bytes());
            hasher.update(asset.bytes);
        }
        let digest = hasher.finalize();
        let version: String = digest[..6].iter().map(|it| format!("{it:02x}")).collect();
        let files = ASSETS
            .iter()
            .map(|asset| {
                let plain = if asset.path == "index.html" {
                    String::from_utf8_lossy(asset.bytes)
                        .replace(ASSETS_PLACEHOLDER, &format!("/studio/assets/{version}"))
                        .into_bytes()
                } else {
                    asset.bytes.to_vec()
                };
                (asset.path, prepare(asset.content_type, plain))
            })
            .collect();
        Studio { version, files }
    })
}

fn prepare(content_type: &'static str, plain: Vec<u8>) -> Prepared {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    // Writing to a Vec cannot fail.
    let gzip = encoder
        .write_all(&plain)
        .and_then(|()| encoder.finish())
        .unwrap_or_default();
    let hash = Sha256::digest(&plain);
    let tag: String = hash[..8].iter().map(|it| format!("{it:02x}")).collect();
    let etag =
        HeaderValue::from_str(&format!("\"{tag}\"")).unwrap_or(HeaderValue::from_static("\"\""));
    Prepared {
        content_type,
        plain: plain.into(),
        gzip: gzip.into(),
        etag,
    }
}

/// The Studio's size: (files, bytes, gzip-compressed bytes).
pub fn asset_sizes() -> (usize, usize, usize) {
    let studio = studio();
    let plain = studio.files.values().map(|it| it.plain.len()).sum();
    let gzip = studio.files.values().map(|it| it.gzip.len()).sum();
    (studio.files.len(), plain, gzip)
}

/// `GET /` and `GET /studio`: to the Studio, as RavenDB does.
pub(crate) async fn redirect() -> Response {
    (
        StatusCode::FOUND,
        [(header::LOCATION, "/studio/index.html")],
    )
        .into_response()
}

/// `GET /studio/index.html`: revalidated on every load.
pub(crate) async fn index(headers: HeaderMap) -> Result<Response, ApiError> {
    serve("index.html", &headers, "no-cache")
}

/// `GET /studio/assets/{version}/{*path}`: cached for good when the version is this build's.
pub(crate) async fn asset(
    Path((version, path)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let cache = if version == studio().version {
        "public, max-age=31536000, immutable"
    } else {
        // A page from an older build: serve what there is now, but never keep it.
        "no-cache"
    };
    serve(&path, &headers, cache)
}

fn serve(path: &str, headers: &HeaderMap, cache: &'static str) -> Result<Response, ApiError> {
    let Some(file) = studio().files.get(path) else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "Raven.Client.Exceptions.RouteNotFoundException",
            format!("the Studio has no file {path}"),
        ));
    };
    let matches = headers
        .get(header::IF_NONE_MATCH)
        .is_some_and(|it| it.as_bytes() == file.etag.as_bytes());
    let common = [
        (header::ETAG, file.etag.clone()),
        (header::CACHE_CONTROL, HeaderValue::from_static(cache)),
        (header::VARY, HeaderValue::from_static("Accept-Encoding")),
    ];
    if matches {
        return Ok((StatusCode::NOT_MODIFIED, common).into_response());
    }
    let gzip_ok = headers
        .get(header::ACCEPT_ENCODING)
        .and_then(|it| it.to_str().ok())
        .is_some_and(|it| it.split(',').any(|part| part.trim().starts_with("gzip")));
    let content_type = [(
        header::CONTENT_TYPE,
        HeaderValue::from_static(file.content_type),
    )];
    if gzip_ok && !file.gzip.is_empty() {
        Ok((
            StatusCode::OK,
            common,
            content_type,
            [(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"))],
            file.gzip.clone(),
        )
            .into_response())
    } else {
        Ok((StatusCode::OK, common, content_type, file.plain.clone()).into_response())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_file_of_the_folder_is_served_and_every_served_file_exists() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("studio");
        let mut on_disk = Vec::new();
        let mut folders = vec![root.clone()];
        while let Some(folder) = folders.pop() {
            for entry in std::fs::read_dir(&folder).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    folders.push(path);
                } else {
                    let relative = path.strip_prefix(&root).unwrap();
                    on_disk.push(relative.to_string_lossy().replace('\\', "/"));
                }
            }
        }
        on_disk.sort();
        let mut listed: Vec<String> = ASSETS.iter().map(|it| it.path.to_owned()).collect();
        listed.sort();
        assert_eq!(on_disk, listed);
    }

    #[test]
    fn index_points_at_this_builds_assets() {
        let studio = studio();
        let index = String::from_utf8(studio.files["index.html"].plain.to_vec()).unwrap();
        assert!(!index.contains(ASSETS_PLACEHOLDER));
        assert!(index.contains(&format!("/studio/assets/{}/js/app.js", studio.version)));
    }
}
