//! RFC 6902 JSON Patch (`add`, `remove`, `replace`, `move`, `copy`, `test`) over RFC 6901
//! pointers: the `JsonPatch` batch command, which the Python client's session `patch` sends by
//! default (`SessionPatchBehavior.JSON_PATCH`).

use serde_json::{Map, Value};

/// Applies `operations` to `document` in order. On error the document may be half patched;
/// the caller drops it.
pub(crate) fn apply(document: &mut Value, operations: &[Value]) -> Result<(), String> {
    for (idx, operation) in operations.iter().enumerate() {
        apply_one(document, operation).map_err(|error| format!("operation {idx}: {error}"))?;
    }
    Ok(())
}

fn apply_one(document: &mut Value, operation: &Value) -> Result<(), String> {
    let Some(operation) = operation.as_object() else {
        return Err("an operation must be an object {op, path, …}".to_owned());
    };
    let op = string_field(operation, "op")?;
    let path = parse_pointer(string_field(operation, "path")?)?;
    let value = || {
        operation
            .get("value")
            .cloned()
            .ok_or_else(|| format!("`{op}` needs a `value`"))
    };
    match op {
        "add" => add(document, &path, value()?),
        "remove" => remove(document, &path).map(drop),
        "replace" => {
            let target = lookup_mut(document, &path)?;
            *target = value()?;
            Ok(())
        }
        "move" => {
            let from = parse_pointer(string_field(operation, "from")?)?;
            if path.len() > from.len() && path[..from.len()] == from[..] {
                return Err("cannot move a value into itself".to_owned());
            }
            let moved = remove(document, &from)?;
            add(document, &path, moved)
        }
        "copy" => {
            let from = parse_pointer(string_field(operation, "from")?)?;
            let copied = lookup_mut(document, &from)?.clone();
            add(document, &path, copied)
        }
        "test" => {
            let expected = value()?;
            if *lookup_mut(document, &path)? != expected {
                return Err(format!(
                    "test failed: the value at `/{}` differs",
                    path.join("/")
                ));
            }
            Ok(())
        }
        other => Err(format!("unknown op `{other}`")),
    }
}

fn string_field<'a>(operation: &'a Map<String, Value>, name: &str) -> Result<&'a str, String> {
    operation
        .get(name)
        .and_then(Value::as_str)
        .ok_or_else(|| format!("`{name}` must be a string"))
}

/// Splits an RFC 6901 pointer into unescaped segments; `""` is the whole document.
fn parse_pointer(pointer: &str) -> Result<Vec<String>, String> {
    if pointer.is_empty() {
        return Ok(Vec::new());
    }
    let Some(rest) = pointer.strip_prefix('/') else {
        return Err(format!(
            "`{pointer}` is not a JSON pointer (it must start with `/`)"
        ));
    };
    Ok(rest
        .split('/')
        .map(|it| it.replace("~1", "/").replace("~0", "~"))
        .collect())
}

fn lookup_mut<'a>(document: &'a mut Value, path: &[String]) -> Result<&'a mut Value, String> {
    let mut current = document;
    for segment in path {
        current = match current {
            Value::Object(members) => members.get_mut(segment),
            Value::Array(items) => array_index(segment, items.len())
                .ok()
                .and_then(|idx| items.get_mut(idx)),
            _ => None,
        }
        .ok_or_else(|| format!("nothing at `/{}`", path.join("/")))?;
    }
    Ok(current)
}

/// An existing element's index; `len` itself only where `-` or an append is allowed.
fn array_index(segment: &str, len: usize) -> Result<usize, String> {
    if segment == "-" {
        return Ok(len);
    }
    if segment.is_empty()
        || (segment.len() > 1 && segment.starts_with('0'))
        || !segment.bytes().all(|it| it.is_ascii_digit())
    {
        return Err(format!("`{segment}` is not an array index"));
    }
    segment
        .parse::<usize>()
        .map_err(|_| format!("`{segment}` is not an array index"))
}

fn add(document: &mut Value, path: &[String], value: Value) -> Result<(), String> {
    let Some((last, parent_path)) = path.split_last() else {
        *document = value;
        return Ok(());
    };
    match lookup_mut(document, parent_path)? {
        Value::Object(members) => {
            members.insert(last.clone(), value);
            Ok(())
        }
        Value::Array(items) => {
            let idx = array_index(last, items.len())?;
            if idx > items.len() {
                return Err(format!("index {idx} is past the end of the array"));
            }
            items.insert(idx, value);
            Ok(())
        }
        _ => Err(format!("`/{}` is not a container", parent_path.join("/"))),
    }
}

fn remove(document: &mut Value, path: &[String]) -> Result<Value, String> {
    let Some((last, parent_path)) = path.split_last() else {
        return Err("cannot remove the whole document".to_owned());
    };
    let missing = || format!("nothing at `/{}`", path.join("/"));
    match lookup_mut(document, parent_path)? {
        Value::Object(members) => members.shift_remove(last).ok_or_else(missing),
        Value::Array(items) => {
            let idx = array_index(last, items.len())?;
            if idx >= items.len() {
                return Err(missing());
            }
            Ok(items.remove(idx))
        }
        _ => Err(missing()),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn patched(document: Value, operations: Value) -> Result<Value, String> {
        let mut document = document;
        apply(&mut document, operations.as_array().expect("array"))?;
        Ok(document)
    }

    #[test]
    fn applies_every_operation() {
        let result = patched(
            json!({"Name": "Ann", "Tags": ["a", "c"], "Address": {"City": "X"}, "a/b": 1}),
            json!([
                {"op": "add", "path": "/Tags/1", "value": "b"},
                {"op": "add", "path": "/Tags/-", "value": "d"},
                {"op": "replace", "path": "/Name", "value": "Bob"},
                {"op": "remove", "path": "/a~1b"},
                {"op": "copy", "from": "/Address/City", "path": "/City"},
                {"op": "move", "from": "/Address", "path": "/Home"},
                {"op": "test", "path": "/Tags/0", "value": "a"},
            ]),
        )
        .expect("patch applies");
        assert_eq!(
            result,
            json!({"Name": "Bob", "Tags": ["a", "b", "c", "d"], "City": "X", "Home": {"City": "X"}})
        );
    }

    #[test]
    fn refuses_what_rfc_6902_refuses() {
        let doc = json!({"Tags": ["a"], "N": 1});
        for operations in [
            json!([{"op": "replace", "path": "/Missing", "value": 1}]),
            json!([{"op": "remove", "path": "/Tags/1"}]),
            json!([{"op": "add", "path": "/Tags/5", "value": 1}]),
            json!([{"op": "add", "path": "/Tags/01", "value": 1}]),
            json!([{"op": "add", "path": "/N/x", "value": 1}]),
            json!([{"op": "test", "path": "/N", "value": 2}]),
            json!([{"op": "move", "from": "/Tags", "path": "/Tags/0"}]),
            json!([{"op": "add", "path": "N", "value": 1}]),
            json!([{"op": "frobnicate", "path": "/N"}]),
            json!([{"op": "add", "path": "/N"}]),
            json!([5]),
        ] {
            assert!(
                patched(doc.clone(), operations.clone()).is_err(),
                "{operations}"
            );
        }
    }
}
