//! Prometheus' text exposition format (version 0.0.4), written by hand: a page is a few
//! hundred lines of `name{label="value"} number`, which needs no registry crate. Families are
//! written whole, one after the other, each after its `# HELP` and `# TYPE` lines.

use std::fmt::Write as _;

use corvid_etl::Histogram;

/// The `Content-Type` of a page.
pub(crate) const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The type of a metric family.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Kind {
    Counter,
    Gauge,
    Histogram,
}

/// A page being written.
#[derive(Default)]
pub(crate) struct Exposition {
    out: String,
}

/// A sample's labels, by name.
pub(crate) type Labels<'a> = [(&'a str, &'a str)];

impl Exposition {
    /// Starts a family: its samples must follow before the next family starts.
    pub fn family(&mut self, name: &str, kind: Kind, help: &str) {
        let kind = match kind {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
        };
        let help = help.replace('\\', "\\\\").replace('\n', "\\n");
        let _ = writeln!(self.out, "# HELP {name} {help}\n# TYPE {name} {kind}");
    }

    pub fn sample(&mut self, name: &str, labels: &Labels<'_>, value: f64) {
        self.out.push_str(name);
        write_labels(&mut self.out, labels, None);
        self.out.push(' ');
        write_number(&mut self.out, value);
        self.out.push('\n');
    }

    /// A whole number, written exactly (counters past 2^53 stay exact).
    pub fn sample_int(&mut self, name: &str, labels: &Labels<'_>, value: u64) {
        self.out.push_str(name);
        write_labels(&mut self.out, labels, None);
        let _ = writeln!(self.out, " {value}");
    }

    /// The samples of a histogram: its cumulative `_bucket`s, `+Inf` included, `_sum` and
    /// `_count`.
    pub fn histogram(&mut self, name: &str, labels: &Labels<'_>, histogram: &Histogram) {
        let mut bound = String::new();
        for (le, count) in histogram.cumulative() {
            bound.clear();
            write_number(&mut bound, le);
            let _ = write!(self.out, "{name}_bucket");
            write_labels(&mut self.out, labels, Some(&bound));
            let _ = writeln!(self.out, " {count}");
        }
        let _ = write!(self.out, "{name}_bucket");
        write_labels(&mut self.out, labels, Some("+Inf"));
        let _ = writeln!(self.out, " {}", histogram.count);
        let _ = write!(self.out, "{name}_sum");
        write_labels(&mut self.out, labels, None);
        self.out.push(' ');
        write_number(&mut self.out, histogram.sum_seconds);
        self.out.push('\n');
        let _ = write!(self.out, "{name}_count");
        write_labels(&mut self.out, labels, None);
        let _ = writeln!(self.out, " {}", histogram.count);
    }

    pub fn finish(self) -> String {
        self.out
    }
}

fn write_labels(out: &mut String, labels: &Labels<'_>, le: Option<&str>) {
    if labels.is_empty() && le.is_none() {
        return;
    }
    out.push('{');
    let mut first = true;
    for (name, value) in labels.iter().copied().chain(le.map(|it| ("le", it))) {
        if !first {
            out.push(',');
        }
        first = false;
        out.push_str(name);
        out.push_str("=\"");
        for c in value.chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                '"' => out.push_str("\\\""),
                '\n' => out.push_str("\\n"),
                c => out.push(c),
            }
        }
        out.push('"');
    }
    out.push('}');
}

fn write_number(out: &mut String, value: f64) {
    if value.is_nan() {
        out.push_str("NaN");
    } else if value.is_infinite() {
        out.push_str(if value > 0.0 { "+Inf" } else { "-Inf" });
    } else {
        // Rust's shortest round-trip form: `3`, `0.0025`, `1e-7`, all valid Go floats.
        let _ = write!(out, "{value}");
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn a_page_escapes_label_values_and_writes_histograms_cumulatively() {
        let mut page = Exposition::default();
        page.family("corvid_x_total", Kind::Counter, "A \\ help\nline.");
        page.sample_int("corvid_x_total", &[("task", "a\"b\\c\nd")], u64::MAX);
        page.family("corvid_y", Kind::Gauge, "Y.");
        page.sample("corvid_y", &[], f64::INFINITY);
        page.sample("corvid_y", &[("a", "1")], 0.25);
        let mut histogram = Histogram::default();
        histogram.observe(Duration::from_millis(2));
        histogram.observe(Duration::from_millis(20));
        page.family("corvid_z_seconds", Kind::Histogram, "Z.");
        page.histogram("corvid_z_seconds", &[("phase", "load")], &histogram);
        let page = page.finish();
        assert!(page.starts_with(
            "# HELP corvid_x_total A \\\\ help\\nline.\n# TYPE corvid_x_total counter\n\
             corvid_x_total{task=\"a\\\"b\\\\c\\nd\"} 18446744073709551615\n"
        ));
        assert!(page.contains("corvid_y +Inf\ncorvid_y{a=\"1\"} 0.25\n"));
        assert!(page.contains("corvid_z_seconds_bucket{phase=\"load\",le=\"0.001\"} 0\n"));
        assert!(page.contains("corvid_z_seconds_bucket{phase=\"load\",le=\"0.0025\"} 1\n"));
        assert!(page.contains("corvid_z_seconds_bucket{phase=\"load\",le=\"60\"} 2\n"));
        assert!(page.contains("corvid_z_seconds_bucket{phase=\"load\",le=\"+Inf\"} 2\n"));
        assert!(page.contains("corvid_z_seconds_count{phase=\"load\"} 2\n"));
    }
}
