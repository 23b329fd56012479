//! Fixture helpers shared by the integration tests: a map-backed host and a text rendering of
//! transform results, so that each test is a (script, input, expected) triple.

#![allow(dead_code, clippy::unwrap_used)]

use std::collections::HashMap;
use std::fmt::Write as _;

use corvid_script::{
    AttachmentMeta, DocumentInput, ScriptHost, ScriptOptions, ScriptRuntime, TransformError,
    TransformOutput,
};

/// A host serving documents from a map and recording which ids were loaded.
#[derive(Debug, Default)]
pub struct TestHost {
    pub docs: HashMap<String, String>,
    pub loaded_ids: Vec<String>,
}

impl TestHost {
    pub fn with(docs: &[(&str, &str)]) -> TestHost {
        TestHost {
            docs: docs
                .iter()
                .map(|(id, json)| ((*id).to_owned(), (*json).to_owned()))
                .collect(),
            loaded_ids: Vec::new(),
        }
    }
}

impl ScriptHost for TestHost {
    fn load(&mut self, id: &str) -> Option<String> {
        self.loaded_ids.push(id.to_owned());
        self.docs.get(id).cloned()
    }
}

pub fn attachment(name: &str, content_type: &str, size: u64) -> AttachmentMeta {
    AttachmentMeta {
        name: name.to_owned(),
        hash: format!("hash-of-{name}"),
        content_type: content_type.to_owned(),
        size,
    }
}

pub fn input<'a>(json: &'a str, attachments: &'a [AttachmentMeta]) -> DocumentInput<'a> {
    DocumentInput {
        id: "users/1",
        collection: "Users",
        json,
        attachments,
    }
}

/// Renders a transform result one fact per line:
/// `People {"Name":"x"}`, `  attachment dest <- source`, `output text`, or `error: …`.
pub fn render(res: &Result<TransformOutput, TransformError>) -> String {
    let output = match res {
        Ok(output) => output,
        Err(error) => return format!("error: {error}"),
    };
    let mut rendered = String::new();
    for loaded in &output.loads {
        match &loaded.extra_arguments {
            Some(extra) => writeln!(rendered, "{} {} +{extra}", loaded.target, loaded.json),
            None => writeln!(rendered, "{} {}", loaded.target, loaded.json),
        }
        .unwrap();
        for added in &loaded.attachments {
            writeln!(
                rendered,
                "  attachment {} <- {}",
                added.name, added.source_name
            )
            .unwrap();
        }
    }
    for line in &output.debug_output {
        writeln!(rendered, "output {line}").unwrap();
    }
    rendered.trim_end().to_owned()
}

/// Runs `script` on `doc` with `host` and compares the rendering with `expected`.
pub fn check_with(
    script: &str,
    doc: &str,
    attachments: &[AttachmentMeta],
    host: &mut TestHost,
    expected: &str,
) {
    let mut runtime = ScriptRuntime::new(script, ScriptOptions::default()).unwrap();
    let res = runtime.transform(&input(doc, attachments), host);
    assert_eq!(render(&res), expected.trim(), "script: {script}");
}

/// [`check_with`] with no attachments and an empty host.
pub fn check(script: &str, doc: &str, expected: &str) {
    check_with(script, doc, &[], &mut TestHost::default(), expected);
}

/// A user document with metadata.
pub const USER: &str = r#"{"First":"Ada","Last":"Lovelace","Age":36,"Tags":["math","code"],"@metadata":{"@id":"users/1","@collection":"Users","Custom":"x"}}"#;
