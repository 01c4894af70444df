//! The pure side of `cargo xtask bench`: medians and spreads over runs, the side-by-side markdown tables, and replacing the generated
//! section of `docs/benchmarks.md`.

use std::fmt::Write as _;

/// The line that opens the generated section.
pub(crate) const BEGIN: &str = "<!-- bench:begin -->";
/// The line that closes the generated section.
pub(crate) const END: &str = "<!-- bench:end -->";

/// The start of a benchmarks document that does not exist yet.
pub(crate) const HEADER: &str = "\
# Benchmarks

Side-by-side runs of `cerebrum bench` against our server and the peers of
`../shared/bench-peers/` (a Node `ws` server and a minimal tokio-tungstenite server), on one
machine in one run. The section between the `bench` markers is written by `cargo xtask bench`
(see `cargo xtask help`): edit outside it.
";

/// The median and the extremes of some measurements.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Spread {
    /// The median (the mean of the middle two for an even count).
    pub(crate) median: f64,
    /// The smallest value.
    pub(crate) min: f64,
    /// The largest value.
    pub(crate) max: f64,
}

/// The spread of the finite values among `values`, if any.
pub(crate) fn spread(values: &[f64]) -> Option<Spread> {
    let mut sorted: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
    sorted.sort_by(f64::total_cmp);
    let (&min, &max) = (sorted.first()?, sorted.last()?);
    let mid = sorted.len() / 2;
    let median = if sorted.len() % 2 == 1 {
        sorted[mid]
    } else {
        (sorted[mid - 1] + sorted[mid]) / 2.0
    };
    Some(Spread { median, min, max })
}

/// A number for a table: whole numbers grouped by thousands (`12 345`), others as
/// [`format_real`].
pub(crate) fn format_number(x: f64) -> String {
    if x.is_finite() && x.fract() == 0.0 {
        group_thousands(x)
    } else {
        format_real(x)
    }
}

/// A measured quantity for a table: grouped whole numbers from 100 up (`12 345`), three
/// significant figures below (`45.6`, `1.00`, `0.430`).
fn format_real(x: f64) -> String {
    if !x.is_finite() {
        return "–".to_owned();
    }
    let abs = x.abs();
    if abs >= 100.0 {
        group_thousands(x.round())
    } else if abs >= 10.0 {
        format!("{x:.1}")
    } else if abs >= 1.0 {
        format!("{x:.2}")
    } else {
        format!("{x:.3}")
    }
}

/// A whole number with a space between groups of three digits.
fn group_thousands(x: f64) -> String {
    let digits = format!("{:.0}", x.abs());
    let mut out = String::new();
    if x < 0.0 {
        out.push('-');
    }
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(' ');
        }
        out.push(c);
    }
    out
}

/// A spread for a table: `median (min–max)`, or one value when they agree; all three whole
/// numbers, or all three measured quantities.
pub(crate) fn format_spread(s: Spread) -> String {
    let whole = [s.median, s.min, s.max].iter().all(|x| x.fract() == 0.0);
    let format = if whole { format_number } else { format_real };
    let (median, min, max) = (format(s.median), format(s.min), format(s.max));
    if min == max {
        median
    } else {
        format!("{median} ({min}–{max})")
    }
}

/// A failure reason made fit for one table cell (no `|`, no newline, bounded length).
pub(crate) fn cell_text(reason: &str) -> String {
    let flat: String = reason
        .chars()
        .map(|c| match c {
            '|' => '/',
            '\n' | '\r' | '\t' => ' ',
            c => c,
        })
        .collect();
    let flat = flat.trim();
    if flat.chars().count() > 140 {
        let cut: String = flat.chars().take(140).collect();
        format!("{cut}…")
    } else {
        flat.to_owned()
    }
}

/// The outcome of one scenario run: its numeric figures, or why it failed.
pub(crate) type RunResult = Result<Vec<(String, f64)>, String>;

/// One server's runs of one scenario.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Column {
    /// The server's name (`ours`, `node-ws`, `rust-raw`).
    pub(crate) server: String,
    /// One entry per run.
    pub(crate) runs: Vec<RunResult>,
}

impl Column {
    /// The values of figure `key` over the successful runs.
    fn values(&self, key: &str) -> Vec<f64> {
        self.runs
            .iter()
            .filter_map(|run| run.as_ref().ok())
            .filter_map(|figures| figures.iter().find(|(k, _)| k == key).map(|(_, v)| *v))
            .collect()
    }

    /// The failure reasons, in run order.
    fn failures(&self) -> Vec<&str> {
        self.runs
            .iter()
            .filter_map(|run| run.as_ref().err().map(String::as_str))
            .collect()
    }

    /// The table cell of figure `key`.
    fn cell(&self, key: &str) -> String {
        let failures = self.failures();
        let Some(s) = spread(&self.values(key)) else {
            return match failures.first() {
                Some(reason) => format!("failed: {}", cell_text(reason)),
                None => "–".to_owned(),
            };
        };
        let text = format_spread(s);
        if failures.is_empty() {
            text
        } else {
            let ok = self.runs.len() - failures.len();
            format!("{text} [{ok}/{} runs]", self.runs.len())
        }
    }
}

/// A target on the ratio ours/peer.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Goal {
    /// The ratio must not exceed this.
    AtMost(f64),
    /// The ratio must reach this.
    AtLeast(f64),
}

impl Goal {
    /// Whether `ratio` meets the goal.
    pub(crate) fn met(self, ratio: f64) -> bool {
        match self {
            Self::AtMost(limit) => ratio <= limit,
            Self::AtLeast(floor) => ratio >= floor,
        }
    }

    fn render(self) -> String {
        match self {
            Self::AtMost(limit) => format!("≤ {limit}"),
            Self::AtLeast(floor) => format!("≥ {floor}"),
        }
    }
}

/// One row of a scenario table: a figure of the JSON line.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Row {
    /// The JSON field.
    pub(crate) key: &'static str,
    /// The label in the table.
    pub(crate) label: &'static str,
    /// The targets of issue 7 on ours/peer, by peer name.
    pub(crate) goals: &'static [(&'static str, Goal)],
}

/// The server whose ratios to the others are shown.
pub(crate) const OURS: &str = "ours";

/// The ratio cell of ours/`peer` for `row`: blank without a target.
fn ratio_cell(ours: &Column, peer: &Column, row: &Row) -> String {
    let Some(goal) = row
        .goals
        .iter()
        .find(|(name, _)| *name == peer.server)
        .map(|(_, goal)| *goal)
    else {
        return String::new();
    };
    let medians = (spread(&ours.values(row.key)), spread(&peer.values(row.key)));
    match medians {
        (Some(o), Some(p)) if p.median != 0.0 => {
            // Judged as shown (two decimals), so that `1.20 (≤ 1.2 …)` is always met.
            let ratio = (o.median / p.median * 100.0).round() / 100.0;
            let mark = if goal.met(ratio) { "✓" } else { "✗" };
            format!("{ratio:.2} ({} {mark})", goal.render())
        }
        _ => format!("– ({})", goal.render()),
    }
}

/// A markdown table: one row per figure, one column per server (median and min–max over
/// runs), then ours/peer ratios of medians with the target, for each peer.
pub(crate) fn scenario_table(columns: &[Column], rows: &[Row]) -> String {
    let ours = columns.iter().find(|c| c.server == OURS);
    let peers: Vec<&Column> = match ours {
        Some(_) => columns.iter().filter(|c| c.server != OURS).collect(),
        None => Vec::new(),
    };
    let mut header = vec!["figure".to_owned()];
    header.extend(columns.iter().map(|c| c.server.clone()));
    header.extend(peers.iter().map(|p| format!("{OURS}/{}", p.server)));
    let mut out = String::new();
    let _ = writeln!(out, "| {} |", header.join(" | "));
    let _ = writeln!(out, "|{}", "---|".repeat(header.len()));
    for row in rows {
        let mut cells = vec![row.label.to_owned()];
        cells.extend(columns.iter().map(|c| c.cell(row.key)));
        if let Some(ours) = ours {
            cells.extend(peers.iter().map(|p| ratio_cell(ours, p, row)));
        }
        let _ = writeln!(out, "| {} |", cells.join(" | "));
    }
    out
}

/// The CPU model of `/proc/cpuinfo`.
pub(crate) fn cpu_model(cpuinfo: &str) -> Option<String> {
    cpuinfo.lines().find_map(|line| {
        let (key, value) = line.split_once(':')?;
        (key.trim() == "model name").then(|| value.trim().to_owned())
    })
}

/// The total memory of `/proc/meminfo`, in GiB.
pub(crate) fn memory_total(meminfo: &str) -> Option<String> {
    let line = meminfo.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: f64 = line
        .trim_start_matches("MemTotal:")
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(format!("{:.1} GiB", kib / 1024.0 / 1024.0))
}

/// `document` with its generated section replaced by `section` (which carries the markers);
/// without a document, a new one with a short header; without markers, `section` appended.
pub(crate) fn replace_section(document: Option<&str>, section: &str) -> Result<String, String> {
    let section = section.trim_end();
    let Some(document) = document else {
        return Ok(format!("{HEADER}\n{section}\n"));
    };
    match (document.find(BEGIN), document.find(END)) {
        (Some(begin), Some(end)) if begin < end => {
            let after = &document[end + END.len()..];
            let mut out = String::with_capacity(document.len() + section.len());
            out.push_str(&document[..begin]);
            out.push_str(section);
            if after.is_empty() {
                out.push('\n');
            } else {
                out.push_str(after);
            }
            Ok(out)
        }
        (None, None) => {
            let body = document.trim_end();
            Ok(if body.is_empty() {
                format!("{section}\n")
            } else {
                format!("{body}\n\n{section}\n")
            })
        }
        _ => Err(format!(
            "the document's `{BEGIN}` and `{END}` markers are not a pair in that order: \
             fix them by hand"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_and_spread() {
        assert_eq!(spread(&[]), None);
        assert_eq!(spread(&[f64::NAN]), None);
        assert_eq!(
            spread(&[3.0, 1.0, 2.0]),
            Some(Spread {
                median: 2.0,
                min: 1.0,
                max: 3.0
            })
        );
        assert_eq!(
            spread(&[4.0, 1.0, 2.0, 10.0]),
            Some(Spread {
                median: 3.0,
                min: 1.0,
                max: 10.0
            })
        );
        assert_eq!(
            spread(&[5.0, f64::INFINITY]),
            Some(Spread {
                median: 5.0,
                min: 5.0,
                max: 5.0
            })
        );
    }

    #[test]
    fn numbers_and_spreads_for_tables() {
        assert_eq!(format_number(999_812.4), "999 812");
        assert_eq!(format_number(1_000.0), "1 000");
        assert_eq!(format_number(123.0), "123");
        assert_eq!(format_number(-12_345.6), "-12 346");
        assert_eq!(format_number(0.0), "0");
        assert_eq!(format_number(7.0), "7");
        assert_eq!(format_number(44.04), "44.0");
        assert_eq!(format_number(1.064), "1.06");
        assert_eq!(format_number(0.43), "0.430");
        assert_eq!(format_number(f64::NAN), "–");
        let s = spread(&[1.0, 1.2, 0.9]).unwrap();
        assert_eq!(format_spread(s), "1.00 (0.900–1.20)");
        assert_eq!(format_spread(spread(&[0.0, 0.0]).unwrap()), "0");
        assert_eq!(
            format_spread(spread(&[6_890.0, 7_001.0]).unwrap()),
            "6 946 (6 890–7 001)"
        );
        assert_eq!(
            format_spread(spread(&[6_890.0, 7_000.0]).unwrap()),
            "6 945 (6 890–7 000)"
        );
    }

    fn run(figures: &[(&str, f64)]) -> RunResult {
        Ok(figures.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect())
    }

    #[test]
    fn side_by_side_table_with_ratios_and_failures() {
        const ROWS: [Row; 3] = [
            Row {
                key: "server_cpu_ms_per_1000",
                label: "CPU ms / 1 000",
                goals: &[
                    ("rust-raw", Goal::AtMost(1.1)),
                    ("node-ws", Goal::AtMost(0.1)),
                ],
            },
            Row {
                key: "deliveries_per_sec",
                label: "deliveries/s",
                goals: &[("rust-raw", Goal::AtLeast(0.9))],
            },
            Row {
                key: "lost",
                label: "lost",
                goals: &[],
            },
        ];
        let columns = vec![
            Column {
                server: "ours".into(),
                runs: vec![
                    run(&[
                        ("server_cpu_ms_per_1000", 1.0),
                        ("deliveries_per_sec", 900.0),
                    ]),
                    run(&[
                        ("server_cpu_ms_per_1000", 1.2),
                        ("deliveries_per_sec", 1000.0),
                    ]),
                    Err("timed | out\nafter 60 s".into()),
                ],
            },
            Column {
                server: "node-ws".into(),
                runs: vec![Err("server did not start".into()); 3],
            },
            Column {
                server: "rust-raw".into(),
                runs: vec![
                    run(&[
                        ("server_cpu_ms_per_1000", 1.0),
                        ("deliveries_per_sec", 1000.0),
                        ("lost", 0.0),
                    ]);
                    3
                ],
            },
        ];
        let table = scenario_table(&columns, &ROWS);
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(
            lines,
            vec![
                "| figure | ours | node-ws | rust-raw | ours/node-ws | ours/rust-raw |",
                "|---|---|---|---|---|---|",
                "| CPU ms / 1 000 | 1.10 (1.00–1.20) [2/3 runs] | failed: server did not start \
                 | 1 | – (≤ 0.1) | 1.10 (≤ 1.1 ✓) |",
                "| deliveries/s | 950 (900–1 000) [2/3 runs] | failed: server did not start \
                 | 1 000 |  | 0.95 (≥ 0.9 ✓) |",
                "| lost | failed: timed / out after 60 s | failed: server did not start | 0 |  |  |",
            ]
        );
        // Without ours (or alone), no ratio columns.
        let alone = scenario_table(&columns[..1], &ROWS[2..]);
        assert_eq!(alone.lines().next(), Some("| figure | ours |"), "{alone}");
        assert!(Goal::AtMost(1.1).met(1.1) && !Goal::AtMost(1.1).met(1.2));
        // 60.000001 / 50 shows as 1.20 and meets ≤ 1.2.
        let ours = Column {
            server: "ours".into(),
            runs: vec![run(&[("server_cpu_ms_per_1000", 60.000_001)])],
        };
        let peer = Column {
            server: "rust-raw".into(),
            runs: vec![run(&[("server_cpu_ms_per_1000", 50.0)])],
        };
        let row = Row {
            key: "server_cpu_ms_per_1000",
            label: "cpu",
            goals: &[("rust-raw", Goal::AtMost(1.2))],
        };
        assert_eq!(ratio_cell(&ours, &peer, &row), "1.20 (≤ 1.2 ✓)");
        assert!(Goal::AtLeast(0.9).met(0.95) && !Goal::AtLeast(0.9).met(0.5));
    }

    #[test]
    fn failure_reasons_fit_one_cell() {
        assert_eq!(cell_text(" a|b\nc "), "a/b c");
        let long = "x".repeat(200);
        assert_eq!(cell_text(&long).chars().count(), 141);
    }

    #[test]
    fn machine_facts() {
        let cpuinfo = "processor\t: 0\nvendor_id\t: GenuineIntel\nmodel name\t: Intel(R) Xeon(R) Processor\nflags\t: fpu\n";
        assert_eq!(
            cpu_model(cpuinfo).as_deref(),
            Some("Intel(R) Xeon(R) Processor")
        );
        assert_eq!(cpu_model("processor : 0\n"), None);
        let meminfo = "MemTotal:       24684084 kB\nMemFree:         6394000 kB\n";
        assert_eq!(memory_total(meminfo).as_deref(), Some("23.5 GiB"));
        assert_eq!(memory_total("MemFree: 1 kB\n"), None);
    }

    #[test]
    fn replaces_only_the_generated_section() {
        let section = format!("{BEGIN}\nnew table\n{END}\n");
        let doc =
            format!("# Benchmarks\n\nintro\n\n{BEGIN}\nold\ntable\n{END}\n\n## Notes\nkept\n");
        assert_eq!(
            replace_section(Some(&doc), &section).unwrap(),
            format!("# Benchmarks\n\nintro\n\n{BEGIN}\nnew table\n{END}\n\n## Notes\nkept\n")
        );
        // At the very end of the file, without a final newline.
        let doc = format!("intro\n{BEGIN}\nold\n{END}");
        assert_eq!(
            replace_section(Some(&doc), &section).unwrap(),
            format!("intro\n{BEGIN}\nnew table\n{END}\n")
        );
        // Replacing twice is stable.
        let once = replace_section(Some(&doc), &section).unwrap();
        assert_eq!(replace_section(Some(&once), &section).unwrap(), once);
    }

    #[test]
    fn creates_or_appends_the_section() {
        let section = format!("{BEGIN}\nt\n{END}");
        let created = replace_section(None, &section).unwrap();
        assert!(created.starts_with("# Benchmarks\n"), "{created}");
        assert!(
            created.ends_with(&format!("\n\n{BEGIN}\nt\n{END}\n")),
            "{created}"
        );
        assert_eq!(
            replace_section(Some("# Mine\n\ntext\n\n\n"), &section).unwrap(),
            format!("# Mine\n\ntext\n\n{BEGIN}\nt\n{END}\n")
        );
        assert_eq!(
            replace_section(Some(""), &section).unwrap(),
            format!("{BEGIN}\nt\n{END}\n")
        );
    }

    #[test]
    fn unpaired_markers_are_refused() {
        let section = format!("{BEGIN}\nt\n{END}");
        for doc in [
            format!("a\n{BEGIN}\nb\n"),
            format!("a\n{END}\nb\n"),
            format!("{END}\nb\n{BEGIN}\n"),
        ] {
            let err = replace_section(Some(&doc), &section).unwrap_err();
            assert!(err.contains("not a pair"), "{err}");
        }
    }
}
