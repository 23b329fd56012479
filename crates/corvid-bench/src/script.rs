//! `corvid-bench script`: the cost of the script runtime alone, per document, for the scripts
//! and documents of the `etl` and `sql-etl` benchmarks (no store, no network, one thread).
//! The end-to-end benchmarks are bound by this figure on a 2-core machine; this one is quick
//! and repeatable enough to compare two builds.

use std::time::{Duration, Instant};

use corvid_script::{DocumentInput, NoDocuments, ScriptOptions, ScriptRuntime};

#[derive(clap::Args, Debug)]
pub(crate) struct ScriptArgs {
    /// Documents per run.
    #[arg(long, default_value_t = 20_000)]
    docs: usize,
    /// Runs of each workload; the best and the median are shown.
    #[arg(long, default_value_t = 5)]
    runs: usize,
    /// Only the workloads whose name starts with this (`etl`, `sql-etl`), to profile one.
    #[arg(long)]
    only: Option<String>,
    /// Only this engine (`direct`, `quickjs`), to profile one.
    #[arg(long)]
    engine: Option<String>,
}

struct Workload {
    name: &'static str,
    script: String,
    options: ScriptOptions,
    /// (id, JSON with `@metadata`) of each document.
    documents: Vec<(String, String)>,
    /// Objects each document loads.
    loads_per_document: usize,
}

fn with_id(mut document: serde_json::Value, id: &str) -> String {
    document["@metadata"]["@id"] = serde_json::Value::from(id);
    document["@metadata"]["@change-vector"] = serde_json::Value::from("A:1-bench");
    document.to_string()
}

fn workloads(n_docs: usize) -> Vec<Workload> {
    let users = (0..n_docs)
        .map(|idx| {
            let id = format!("users/{idx}");
            let json = with_id(crate::document(idx), &id);
            (id, json)
        })
        .collect();
    let orders = (0..n_docs)
        .map(|idx| {
            let id = format!("orders/{idx}-A");
            let json = with_id(crate::sql_etl::Order::new(idx, 3).document(), &id);
            (id, json)
        })
        .collect();
    vec![
        Workload {
            name: "etl (Raven: loadToPeople, 1 object)",
            script: crate::PEOPLE_SCRIPT.to_owned(),
            options: ScriptOptions::default(),
            documents: users,
            loads_per_document: 1,
        },
        Workload {
            name: "sql-etl (4 rows, values)",
            script: crate::sql_etl::script("bench"),
            options: ScriptOptions {
                load_as_values: true,
                ..ScriptOptions::default()
            },
            documents: orders,
            loads_per_document: 4,
        },
    ]
}

pub(crate) fn script(args: ScriptArgs) -> anyhow::Result<()> {
    println!(
        "script runtime alone: {} documents per run, {} runs, one thread",
        args.docs, args.runs
    );
    println!(
        "{:<40} {:<8} {:>12} {:>12} {:>10}",
        "workload", "engine", "best µs/doc", "median", "direct"
    );
    let selected = workloads(args.docs).into_iter().filter(|it| {
        args.only
            .as_deref()
            .is_none_or(|prefix| it.name.starts_with(prefix))
    });
    for workload in selected {
        for (engine, direct_interpreter) in [("direct", true), ("quickjs", false)] {
            if args.engine.as_deref().is_some_and(|it| it != engine) {
                continue;
            }
            let options = ScriptOptions {
                direct_interpreter,
                ..workload.options.clone()
            };
            let (times, direct_documents) = run_workload(&workload, options, args.runs)?;
            let per_doc = |it: Duration| it.as_secs_f64() * 1e6 / workload.documents.len() as f64;
            println!(
                "{:<40} {engine:<8} {:>12.2} {:>12.2} {:>10}",
                workload.name,
                per_doc(times[0]),
                per_doc(times[times.len() / 2]),
                direct_documents.map_or_else(|| "-".to_owned(), |it| it.to_string())
            );
        }
    }
    Ok(())
}

/// Runs `workload` `runs` times in one runtime; returns the sorted times and how many
/// documents the direct interpreter transformed (`None`: the script never runs there).
fn run_workload(
    workload: &Workload,
    options: ScriptOptions,
    runs: usize,
) -> anyhow::Result<(Vec<Duration>, Option<u64>)> {
    let mut runtime = ScriptRuntime::new(&workload.script, options)?;
    let mut times: Vec<Duration> = Vec::with_capacity(runs);
    for _ in 0..runs.max(1) {
        let started = Instant::now();
        for (id, json) in &workload.documents {
            let input = DocumentInput {
                id,
                collection: "Bench",
                json,
                attachments: &[],
            };
            let output = runtime.transform(&input, &mut NoDocuments)?;
            anyhow::ensure!(
                output.loads.len() == workload.loads_per_document,
                "{}: {id} loaded {} objects",
                workload.name,
                output.loads.len()
            );
        }
        times.push(started.elapsed());
    }
    times.sort();
    Ok((times, runtime.direct_documents()))
}
