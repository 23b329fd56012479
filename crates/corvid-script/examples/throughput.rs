//! Prints how many documents per second one `ScriptRuntime` transforms on this thread.
//!
//! `cargo run --release -p corvid-script --example throughput [n_docs]` (default 100,000 documents
//! of about 300 bytes).

use std::error::Error;
use std::time::Instant;

use corvid_script::{DocumentInput, NoDocuments, ScriptOptions, ScriptRuntime};

const SCRIPT: &str = "loadToPeople({Name: this.First + ' ' + this.Last, Age: this.Age})";

fn main() -> Result<(), Box<dyn Error>> {
    let n_docs: usize = match std::env::args().nth(1) {
        Some(arg) => arg.parse()?,
        None => 100_000,
    };
    let docs: Vec<(String, String)> = (0..n_docs).map(make_doc).collect();
    let average_bytes = docs.iter().map(|(_, json)| json.len()).sum::<usize>() / n_docs.max(1);

    let mut runtime = ScriptRuntime::new(SCRIPT, ScriptOptions::default())?;
    let started = Instant::now();
    let mut n_loads = 0;
    for (id, json) in &docs {
        let input = DocumentInput {
            id,
            collection: "Employees",
            json,
            attachments: &[],
        };
        n_loads += runtime.transform(&input, &mut NoDocuments)?.loads.len();
    }
    let elapsed = started.elapsed();
    let docs_per_sec = n_docs as f64 / elapsed.as_secs_f64();
    eprintln!(
        "{n_docs} docs of ~{average_bytes} bytes, {n_loads} loads in {:.3} s: {docs_per_sec:.0} docs/s",
        elapsed.as_secs_f64()
    );
    Ok(())
}

fn make_doc(doc_idx: usize) -> (String, String) {
    let id = format!("employees/{doc_idx}-A");
    let json = format!(
        r#"{{"First":"First{doc_idx}","Last":"Last{doc_idx}","Age":{age},"Email":"user{doc_idx}@example.com","Address":{{"Line1":"{doc_idx} Main Street","City":"Seattle","PostalCode":"98{zip:03}","Country":"USA"}},"@metadata":{{"@collection":"Employees","@id":"{id}","@change-vector":"A:{doc_idx}-abc","@last-modified":"2024-01-01T00:00:00.0000000Z"}}}}"#,
        age = doc_idx % 80,
        zip = doc_idx % 1000,
    );
    (id, json)
}
