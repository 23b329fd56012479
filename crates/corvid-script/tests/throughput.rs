//! Many documents through one runtime: the outputs stay correct (timing is measured by
//! `examples/throughput.rs`, not asserted here).

#![allow(clippy::unwrap_used)]

use corvid_script::{DocumentInput, NoDocuments, ScriptOptions, ScriptRuntime};

#[test]
fn thousands_of_documents_through_one_runtime_stay_correct() {
    let mut runtime = ScriptRuntime::new(
        "if (this.Age % 3 === 0) return;\nloadToPeople({Name: this.First + ' ' + this.Last, Age: this.Age});",
        ScriptOptions::default(),
    )
    .unwrap();
    let mut n_loads = 0;
    for doc_idx in 0..5_000 {
        let id = format!("employees/{doc_idx}");
        let json = format!(
            r#"{{"First":"F{doc_idx}","Last":"L{doc_idx}","Age":{doc_idx},"@metadata":{{"@id":"{id}"}}}}"#
        );
        let input = DocumentInput {
            id: &id,
            collection: "Employees",
            json: &json,
            attachments: &[],
        };
        let output = runtime.transform(&input, &mut NoDocuments).unwrap();
        if doc_idx % 3 == 0 {
            assert!(output.loads.is_empty(), "doc {doc_idx}");
            continue;
        }
        assert_eq!(output.loads.len(), 1, "doc {doc_idx}");
        assert_eq!(
            output.loads[0].json,
            format!(r#"{{"Name":"F{doc_idx} L{doc_idx}","Age":{doc_idx}}}"#)
        );
        n_loads += 1;
    }
    assert_eq!(n_loads, 3_333);
}
