//! Finding a version's section in `CHANGELOG.md`. (Hand-written: one heading match; a
//! changelog parser such as `parse-changelog` would bring a Markdown reader for it.)

/// Whether `changelog` has a level-2 heading for `version`: a line that
/// starts with `## [VERSION]` or `## VERSION` (optionally with a `v` before
/// the version), followed by the end of the line, a space, or (after the
/// brackets) anything such as `(link)` or ` - 2026-11-28`.
pub(crate) fn has_section(changelog: &str, version: &str) -> bool {
    changelog
        .lines()
        .any(|line| heading_version(line) == Some(version))
}

/// The version named by a `## ...` heading line, if it is one.
fn heading_version(line: &str) -> Option<&str> {
    let rest = line.strip_prefix("##")?;
    if rest.starts_with('#') || !rest.starts_with([' ', '\t']) {
        return None;
    }
    let rest = rest.trim_start();
    let name = match rest.strip_prefix('[') {
        Some(inner) => &inner[..inner.find(']')?],
        None => rest.split_whitespace().next()?,
    };
    Some(name.strip_prefix('v').unwrap_or(name))
}

#[cfg(test)]
mod tests {
    use super::has_section;

    /// A changelog in Keep a Changelog style.
    const CHANGELOG: &str = "# Changelog\n\n## [Unreleased]\n\n### Added\n- things\n\n## [0.2.0-rc.1] - 2026-12-01\n\n## 0.1.5 - 2026-11-30\r\n\n## v0.1.4\n\n### 0.1.3\n\n## [0.1.0](https://example.com/v0.1.0) - 2026-11-28\n- mentions 0.0.9 in text\n";

    #[test]
    fn finds_bracketed_and_plain_headings() {
        assert!(has_section(CHANGELOG, "0.2.0-rc.1"));
        assert!(has_section(CHANGELOG, "0.1.5"));
        assert!(has_section(CHANGELOG, "0.1.4"));
        assert!(has_section(CHANGELOG, "0.1.0"));
        assert!(has_section(CHANGELOG, "Unreleased"));
    }

    #[test]
    fn ignores_prefixes_other_levels_and_body_text() {
        // A prefix of a listed version is not that version.
        assert!(!has_section(CHANGELOG, "0.2.0"));
        assert!(!has_section(CHANGELOG, "0.1"));
        // Level-3 headings and mentions in the text do not count.
        assert!(!has_section(CHANGELOG, "0.1.3"));
        assert!(!has_section(CHANGELOG, "0.0.9"));
        assert!(!has_section("##0.1.0\n", "0.1.0"));
        assert!(!has_section("", "0.1.0"));
        assert!(!has_section("## [0.1.0\n", "0.1.0"));
    }
}
