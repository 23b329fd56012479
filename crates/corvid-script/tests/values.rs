//! `load_as_values` (SQL ETL): a loaded object's members handed over as values, meaning what
//! `JSON.stringify` of the object would mean.
#![allow(clippy::unwrap_used)]

use corvid_script::{
    DocumentInput, LoadedValue, NoDocuments, ScriptOptions, ScriptRuntime, TransformError,
};

fn load(script: &str) -> Result<Vec<(String, LoadedValue)>, TransformError> {
    let options = ScriptOptions {
        load_as_values: true,
        ..ScriptOptions::default()
    };
    let mut runtime = ScriptRuntime::new(script, options).unwrap();
    let input = DocumentInput {
        id: "orders/1",
        collection: "Orders",
        json: r#"{"Price":19.99,"@metadata":{"@id":"orders/1"}}"#,
        attachments: &[],
    };
    let mut output = runtime.transform(&input, &mut NoDocuments)?;
    let load = output.loads.remove(0);
    assert!(load.json.is_empty());
    Ok(load
        .values
        .unwrap()
        .into_iter()
        .map(|(name, value)| (name.to_string(), value))
        .collect())
}

#[test]
fn members_become_values() {
    let values = load(
        "loadToX({Null: null, Undef: undefined, Missing: this.Nope, T: true, I: 42, Whole: 2.5 * 2, \
         F: this.Price, Tiny: 0.1 + 0.2, Big: 2e21, Nan: NaN, S: 'é', O: {A: [1, 'x']}, Arr: [1, undefined], \
         When: new Date(Date.UTC(2024, 0, 2)), Fn: function () {}})",
    )
    .unwrap();
    let expected = [
        ("Null", LoadedValue::Null),
        ("Undef", LoadedValue::Null),
        ("Missing", LoadedValue::Null),
        ("T", LoadedValue::Bool(true)),
        ("I", LoadedValue::Int(42)),
        ("Whole", LoadedValue::Int(5)),
        ("F", LoadedValue::Number("19.99".into())),
        ("Tiny", LoadedValue::Number("0.30000000000000004".into())),
        ("Big", LoadedValue::Number("2000000000000000000000".into())),
        ("Nan", LoadedValue::Null),
        ("S", LoadedValue::String("é".into())),
        ("O", LoadedValue::Json(r#"{"A":[1,"x"]}"#.into())),
        ("Arr", LoadedValue::Json("[1,null]".into())),
        (
            "When",
            LoadedValue::Json(r#""2024-01-02T00:00:00.000Z""#.into()),
        ),
    ];
    let expected: Vec<(String, LoadedValue)> = expected
        .into_iter()
        .map(|(name, value)| (name.to_owned(), value))
        .collect();
    assert_eq!(values, expected);
}

#[test]
fn what_json_cannot_hold_is_still_an_invalid_output() {
    let error = load("loadToX({Big: 1n})").unwrap_err();
    assert!(
        matches!(error, TransformError::InvalidOutput { .. }),
        "{error}"
    );
    let error = load("loadToX([1, 2])").unwrap_err();
    assert!(
        matches!(error, TransformError::InvalidOutput { .. }),
        "{error}"
    );
}
