//! Unquoted SQL identifiers: with `QuoteTables: false` a configured table name reaches SQL
//! as written, so it must be a plain, optionally schema-qualified identifier of its engine,
//! never SQL text. Checked when a task is saved and again where statements are built.

use crate::destinations::sql::connection::SqlProvider;

/// PostgreSQL's `NAMEDATALEN - 1`, in bytes.
const POSTGRES_MAX_BYTES: usize = 63;
/// MySQL/MariaDB identifiers, in characters.
const MYSQL_MAX_CHARS: usize = 64;

/// Checks that `name` is `table` or `schema.table` where each part is an unquoted identifier
/// of `provider`; `Err` says why not (for the user).
///
/// - PostgreSQL: a letter (any alphabetic character) or `_`, then letters, digits, `_` or `$`;
///   at most 63 bytes.
/// - MySQL/MariaDB: ASCII letters, digits, `$`, `_` and characters U+0080–U+FFFF; not digits
///   only; at most 64 characters.
/// - SQLite: a letter (any alphabetic character) or `_`, then letters, digits, `_` or `$`.
pub fn check_unquoted_table(provider: SqlProvider, name: &str) -> Result<(), String> {
    let parts: Vec<&str> = name.split('.').collect();
    if parts.len() > 2 {
        return Err(format!(
            "table name `{name}` has more than two dot-separated parts; with `QuoteTables: false` a table is `table` or `schema.table`"
        ));
    }
    for part in parts {
        check_part(provider, part).map_err(|reason| {
            format!(
                "table name `{name}` is not a plain identifier ({reason}); with `QuoteTables: false` it reaches SQL as written, so it must be `table` or `schema.table` made of letters, digits, `_` and `$`"
            )
        })?;
    }
    Ok(())
}

/// Returns true when `name` may be written unquoted (see [`check_unquoted_table`]).
pub fn is_unquoted_table(provider: SqlProvider, name: &str) -> bool {
    check_unquoted_table(provider, name).is_ok()
}

fn check_part(provider: SqlProvider, part: &str) -> Result<(), String> {
    let Some(first) = part.chars().next() else {
        return Err("an empty part".to_owned());
    };
    let bad = part.chars().find(|ch| match provider {
        SqlProvider::Postgres | SqlProvider::Sqlite => {
            !(ch.is_alphanumeric() || *ch == '_' || *ch == '$')
        }
        SqlProvider::MySql => {
            !(ch.is_ascii_alphanumeric()
                || *ch == '_'
                || *ch == '$'
                || ('\u{80}'..='\u{FFFF}').contains(ch))
        }
    });
    if let Some(bad) = bad {
        return Err(format!("it contains {bad:?}"));
    }
    match provider {
        SqlProvider::Postgres | SqlProvider::Sqlite if !(first.is_alphabetic() || first == '_') => {
            Err(format!("a part starts with {first:?}"))
        }
        SqlProvider::Postgres if part.len() > POSTGRES_MAX_BYTES => {
            Err(format!("a part is longer than {POSTGRES_MAX_BYTES} bytes"))
        }
        SqlProvider::MySql if part.chars().all(|it| it.is_ascii_digit()) => {
            Err("a part is digits only".to_owned())
        }
        SqlProvider::MySql if part.chars().count() > MYSQL_MAX_CHARS => Err(format!(
            "a part is longer than {MYSQL_MAX_CHARS} characters"
        )),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_plain_and_schema_qualified_names() {
        for provider in [
            SqlProvider::Postgres,
            SqlProvider::MySql,
            SqlProvider::Sqlite,
        ] {
            for name in ["Orders", "sales.Orders", "_t1", "t$x", "Données"] {
                assert!(is_unquoted_table(provider, name), "{provider:?} {name}");
            }
        }
        assert!(is_unquoted_table(SqlProvider::MySql, "1abc"));
        assert!(!is_unquoted_table(SqlProvider::Postgres, "1abc"));
    }

    #[test]
    fn refuses_sql_text_and_odd_names() {
        let names = [
            "t LIMIT 1; DROP TABLE victim; --",
            "t;",
            "t--",
            "t /*",
            "\"t\"",
            "`t`",
            "a.b.c",
            "a..b",
            ".t",
            "t.",
            "",
            "t\0",
            "t'",
            "t(x)",
        ];
        for provider in [
            SqlProvider::Postgres,
            SqlProvider::MySql,
            SqlProvider::Sqlite,
        ] {
            for name in names {
                assert!(!is_unquoted_table(provider, name), "{provider:?} {name:?}");
            }
        }
        assert!(!is_unquoted_table(SqlProvider::MySql, "123"));
        assert!(!is_unquoted_table(SqlProvider::Postgres, &"a".repeat(64)));
        assert!(is_unquoted_table(SqlProvider::Postgres, &"a".repeat(63)));
        assert!(!is_unquoted_table(SqlProvider::MySql, &"a".repeat(65)));
        let message =
            check_unquoted_table(SqlProvider::Postgres, "t LIMIT 1; DROP TABLE v; --").unwrap_err();
        assert!(message.contains("QuoteTables"), "{message}");
    }
}
