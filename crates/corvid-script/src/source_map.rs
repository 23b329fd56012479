//! Wrapping the script source for QuickJS, and mapping QuickJS positions back to the source.
//!
//! The script body is compiled as `(function () {<source>\n})`, with the source starting on the
//! first line right after the prefix, so only columns on line 1 need shifting. The behaviour
//! functions are compiled the same way from a copy of the source in which everything but the
//! top-level function declarations is blanked out (newlines kept), so their positions match too.

use crate::analysis::SourceRange;

/// The file name QuickJS reports for positions in the wrapped script.
pub(crate) const SCRIPT_FILE_NAME: &str = "etl-script";

const WRAPPER_PREFIX: &str = "(function () {";

/// Returns the source of a function expression whose body is the script.
pub(crate) fn wrap_body(source: &str) -> String {
    let mut wrapped = String::with_capacity(WRAPPER_PREFIX.len() + source.len() + 3);
    wrapped.push_str(WRAPPER_PREFIX);
    wrapped.push_str(source);
    wrapped.push_str("\n})");
    wrapped
}

/// Returns the source of a function expression that keeps only the `declarations` of the
/// script (its directives and top-level functions) and returns the functions named in
/// `exported`, in that order, as an array.
pub(crate) fn wrap_functions(
    source: &str,
    declarations: &[SourceRange],
    exported: &[&str],
) -> String {
    let mut wrapped = String::with_capacity(WRAPPER_PREFIX.len() + source.len() + 64);
    wrapped.push_str(WRAPPER_PREFIX);
    let mut position = 0;
    for declaration in declarations {
        blank_out(&mut wrapped, &source[position..declaration.start]);
        wrapped.push_str(&source[declaration.start..declaration.end]);
        position = declaration.end;
    }
    blank_out(&mut wrapped, &source[position..]);
    wrapped.push_str("\nreturn [");
    wrapped.push_str(&exported.join(", "));
    wrapped.push_str("];\n})");
    wrapped
}

/// Appends `text` with every character but a line feed replaced by as many spaces as it has
/// UTF-8 bytes, so that QuickJS's byte-based positions stay the same.
fn blank_out(out: &mut String, text: &str) {
    for it in text.chars() {
        if it == '\n' {
            out.push('\n');
        } else {
            for _ in 0..it.len_utf8() {
                out.push(' ');
            }
        }
    }
}

/// Returns the 1-based line and 1-based column (in characters) of byte `offset` in `source`.
pub(crate) fn line_column_of_byte(source: &str, offset: usize) -> (u32, u32) {
    let mut offset = offset.min(source.len());
    while !source.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &source[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |it| it + 1);
    let column = source[line_start..offset].chars().count() + 1;
    (saturating_u32(line), saturating_u32(column))
}

/// The script as compiled (with RavenDB's null propagation rewritten into optional chaining)
/// and what maps its positions back to the script as the user wrote it.
#[derive(Debug, Clone)]
pub(crate) struct ScriptSource {
    /// What the user wrote.
    pub original: String,
    /// What QuickJS compiles.
    pub compiled: String,
    /// `(byte offset in compiled, bytes inserted there)`, ascending.
    pub insertions: Vec<(usize, usize)>,
}

impl ScriptSource {
    /// A script compiled as written.
    pub(crate) fn unchanged(source: &str) -> ScriptSource {
        ScriptSource {
            original: source.to_owned(),
            compiled: source.to_owned(),
            insertions: Vec::new(),
        }
    }

    /// `source` with `text` inserted at each of `insertions` (byte offsets, ascending).
    pub(crate) fn with_insertions(source: &str, insertions: &[(usize, &str)]) -> ScriptSource {
        let mut compiled = String::with_capacity(source.len() + insertions.len() * 2);
        let mut mapped = Vec::with_capacity(insertions.len());
        let mut position = 0;
        for (offset, text) in insertions {
            compiled.push_str(&source[position..*offset]);
            mapped.push((compiled.len(), text.len()));
            compiled.push_str(text);
            position = *offset;
        }
        compiled.push_str(&source[position..]);
        ScriptSource {
            original: source.to_owned(),
            compiled,
            insertions: mapped,
        }
    }

    /// Maps a QuickJS position in the wrapped compiled script (1-based line, 1-based byte
    /// column) to the 1-based line and character column in the original script.
    pub(crate) fn position(&self, line: u32, byte_column: u32) -> (u32, u32) {
        let offset = wrapped_byte_offset(&self.compiled, line, byte_column);
        let inserted_before: usize = self
            .insertions
            .iter()
            .take_while(|(at, _)| *at < offset)
            .map(|(at, len)| (*len).min(offset - at))
            .sum();
        line_column_of_byte(&self.original, offset - inserted_before)
    }
}

/// Maps a QuickJS position in a wrapped script (1-based line, 1-based byte column) to the
/// 1-based line and character column in `source`.
#[cfg(test)]
pub(crate) fn map_wrapped_position(source: &str, line: u32, byte_column: u32) -> (u32, u32) {
    line_column_of_byte(source, wrapped_byte_offset(source, line, byte_column))
}

/// The byte offset in `source` of a QuickJS position in the wrapped `source`.
fn wrapped_byte_offset(source: &str, line: u32, byte_column: u32) -> usize {
    let line_count = source.matches('\n').count() + 1;
    let line_idx = (line.max(1) as usize - 1).min(line_count - 1);
    let line_start = if line_idx == 0 {
        0
    } else {
        source
            .match_indices('\n')
            .nth(line_idx - 1)
            .map_or(0, |(it, _)| it + 1)
    };
    let mut byte_column = byte_column.max(1) as usize - 1;
    if line_idx == 0 {
        byte_column = byte_column.saturating_sub(WRAPPER_PREFIX.len());
    }
    (line_start + byte_column).min(source.len())
}

/// Finds the first `etl-script:<line>:<column>` in a QuickJS stack trace.
pub(crate) fn first_script_position(stack: &str) -> Option<(u32, u32)> {
    let needle = format!("{SCRIPT_FILE_NAME}:");
    for (found, _) in stack.match_indices(&needle) {
        let rest = &stack[found + needle.len()..];
        let mut numbers = rest
            .split(|it: char| !it.is_ascii_digit())
            .take(2)
            .map(str::parse::<u32>);
        if let (Some(Ok(line)), Some(Ok(column))) = (numbers.next(), numbers.next()) {
            return Some((line, column));
        }
    }
    None
}

/// Appends ` (line L, column C)` to `message` when the position is known.
pub(crate) fn with_position(message: String, position: Option<(u32, u32)>) -> String {
    match position {
        Some((line, column)) => format!("{message} (line {line}, column {column})"),
        None => message,
    }
}

fn saturating_u32(value: usize) -> u32 {
    u32::try_from(value).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_on_the_first_line_lose_the_wrapper_prefix() {
        let source = "throw 1;";
        let column_in_wrapped = u32::try_from(WRAPPER_PREFIX.len()).unwrap() + 1;
        assert_eq!(map_wrapped_position(source, 1, column_in_wrapped), (1, 1));
        assert_eq!(
            map_wrapped_position(source, 1, column_in_wrapped + 6),
            (1, 7)
        );
    }

    #[test]
    fn byte_columns_become_character_columns() {
        let source = "var a;\nvar é = 'ü'; throw 1;";
        // `throw` starts at byte 17 of line 2 (é and ü take two bytes each), character 15.
        assert_eq!(map_wrapped_position(source, 2, 17), (2, 15));
    }

    #[test]
    fn positions_past_the_end_are_clamped_to_the_last_line() {
        assert_eq!(map_wrapped_position("a;\nb;", 9, 1), (2, 1));
    }

    #[test]
    fn blanked_functions_keep_their_positions() {
        let source = "var x = 'é';\nfunction f() {}\nloadToX({});";
        let functions = [SourceRange { start: 14, end: 29 }];
        let wrapped = wrap_functions(source, &functions, &["f"]);
        let body = wrap_body(source);
        assert_eq!(wrapped.find("function f"), body.find("function f"));
    }

    #[test]
    fn positions_after_insertions_map_to_what_the_user_wrote() {
        let source = "var a = this.x.y;\nthrow b.c;";
        let rewritten = ScriptSource::with_insertions(source, &[(12, "?"), (14, "?"), (25, "?")]);
        assert_eq!(rewritten.compiled, "var a = this?.x?.y;\nthrow b?.c;");
        let prefix = u32::try_from(WRAPPER_PREFIX.len()).unwrap();
        // `y` is at compiled byte 17 on line 1, original column 16.
        assert_eq!(rewritten.position(1, prefix + 18), (1, 16));
        // `throw` starts line 2 in both.
        assert_eq!(rewritten.position(2, 1), (2, 1));
        // `c` is at compiled column 10 of line 2, original column 9.
        assert_eq!(rewritten.position(2, 10), (2, 9));
    }

    #[test]
    fn stack_positions_are_found_after_the_file_name() {
        let stack = "    at f (corvid-prelude:3:1)\n    at <anonymous> (etl-script:12:34)\n";
        assert_eq!(first_script_position(stack), Some((12, 34)));
        assert_eq!(first_script_position("    at <eval> (other:1:2)"), None);
    }
}
