//! The names OLAP ETL writes under its folder or bucket: `{Table}/{k1=v1}/{k2=v2}/{file}`.
//! Every segment is escaped as Hive escapes partition paths (`%XX` for `/`, `\`, `=`, `%`,
//! `:`, `#`, `?`, `*`, quotes, brackets, control characters and DEL), so a value is always one
//! segment, never `..` or an absolute path, and DuckDB, Spark or Trino read the value back
//! (they unescape it). An empty value is Hive's `__HIVE_DEFAULT_PARTITION__` (read as null).

/// Hive's name for a null or empty partition value.
pub(crate) const NULL_PARTITION: &str = "__HIVE_DEFAULT_PARTITION__";

/// One path segment made of `text`, escaped.
pub(crate) fn escape_segment(text: &str) -> String {
    let mut res = String::with_capacity(text.len());
    for c in text.chars() {
        let escape = c.is_control()
            || matches!(
                c,
                '"' | '#'
                    | '%'
                    | '\''
                    | '*'
                    | '/'
                    | ':'
                    | '='
                    | '?'
                    | '\\'
                    | '['
                    | ']'
                    | '^'
                    | '{'
                    | '}'
                    | '\u{7f}'
            );
        if escape {
            let mut buf = [0u8; 4];
            for byte in c.encode_utf8(&mut buf).bytes() {
                res.push_str(&format!("%{byte:02X}"));
            }
        } else {
            res.push(c);
        }
    }
    // `.` and `..` alone would name the folder itself or its parent.
    match res.as_str() {
        "." => "%2E".to_owned(),
        ".." => "%2E%2E".to_owned(),
        _ => res,
    }
}

/// `k1=v1/k2=v2`, escaped; empty for no partition.
pub(crate) fn partition_path(parts: &[(&str, &str)]) -> String {
    let mut res = String::new();
    for (name, value) in parts {
        if !res.is_empty() {
            res.push('/');
        }
        res.push_str(&escape_segment(name));
        res.push('=');
        if value.is_empty() {
            res.push_str(NULL_PARTITION);
        } else {
            res.push_str(&escape_segment(value));
        }
    }
    res
}

/// The partition names of a path written by [`partition_path`] (`year=2024/month=3` →
/// `year`, `month`), escaped as they are.
pub(crate) fn partition_names(path: &str) -> Vec<String> {
    path.split('/')
        .filter_map(|it| it.split_once('=').map(|(name, _)| name.to_owned()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_value_is_always_one_harmless_segment() {
        for (value, expected) in [
            ("2024", "2024"),
            ("a/b", "a%2Fb"),
            ("..", "%2E%2E"),
            (".", "%2E"),
            ("../../etc", "..%2F..%2Fetc"),
            ("C:\\x", "C%3A%5Cx"),
            ("k=v", "k%3Dv"),
            ("100%", "100%25"),
            ("new\nline", "new%0Aline"),
            ("Zürich", "Zürich"),
            ("a b", "a b"),
        ] {
            assert_eq!(escape_segment(value), expected, "{value}");
        }
        assert_eq!(
            partition_path(&[("year", "2024"), ("city", "")]),
            "year=2024/city=__HIVE_DEFAULT_PARTITION__"
        );
        assert_eq!(partition_path(&[]), "");
        assert_eq!(partition_names("year=2024/month=3"), vec!["year", "month"]);
    }
}
