//! Validation of release versions.

/// Checks that `version` is a semantic version `MAJOR.MINOR.PATCH` with an
/// optional `-PRERELEASE` (dot-separated identifiers of `[0-9A-Za-z-]`, numeric
/// identifiers without leading zeros). Build metadata (`+...`) is refused:
/// registries ignore it, so it cannot tell two releases apart.
pub(crate) fn validate(version: &str) -> Result<(), String> {
    let bad = |why: &str| Err(format!("`{version}` is not a valid release version: {why}"));
    if version.is_empty() {
        return bad("it is empty");
    }
    if version.starts_with(['v', 'V']) {
        return bad("write it without the leading `v` (the tag gets one)");
    }
    if version.contains('+') {
        return bad("build metadata (`+...`) is not supported for releases");
    }
    let (core, pre) = match version.split_once('-') {
        Some((core, pre)) => (core, Some(pre)),
        None => (version, None),
    };
    let numbers: Vec<&str> = core.split('.').collect();
    if numbers.len() != 3 {
        return bad("expected MAJOR.MINOR.PATCH, e.g. 0.2.0");
    }
    for number in numbers {
        if number.is_empty() || !number.bytes().all(|b| b.is_ascii_digit()) {
            return bad("MAJOR, MINOR and PATCH must be non-empty decimal numbers");
        }
        if number.len() > 1 && number.starts_with('0') {
            return bad("numbers must not have leading zeros");
        }
        if number.parse::<u64>().is_err() {
            return bad("number too large");
        }
    }
    if let Some(pre) = pre {
        for ident in pre.split('.') {
            if ident.is_empty() {
                return bad("empty pre-release identifier");
            }
            if !ident
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
            {
                return bad("pre-release identifiers may only contain [0-9A-Za-z-]");
            }
            if ident.len() > 1
                && ident.starts_with('0')
                && ident.bytes().all(|b| b.is_ascii_digit())
            {
                return bad("numeric pre-release identifiers must not have leading zeros");
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::validate;

    #[test]
    fn accepts_release_and_pre_release_versions() {
        for ok in [
            "0.1.0",
            "1.0.0",
            "10.20.30",
            "0.2.0-rc.1",
            "1.0.0-alpha",
            "1.0.0-alpha-2.0",
            "1.0.0-0.3.7",
            "1.0.0-x.7.z.92",
            "18446744073709551615.0.0",
        ] {
            assert_eq!(validate(ok), Ok(()), "{ok}");
        }
    }

    #[test]
    fn rejects_everything_else() {
        for (bad, why) in [
            ("", "empty"),
            ("1", "MAJOR.MINOR.PATCH"),
            ("1.2", "MAJOR.MINOR.PATCH"),
            ("1.2.3.4", "MAJOR.MINOR.PATCH"),
            ("v1.2.3", "leading `v`"),
            ("01.2.3", "leading zeros"),
            ("1.02.3", "leading zeros"),
            ("1.2.x", "decimal"),
            ("1..3", "non-empty"),
            ("1.2.3-", "empty pre-release"),
            ("1.2.3-rc..1", "empty pre-release"),
            ("1.2.3-rc.01", "leading zeros"),
            ("1.2.3-rc_1", "[0-9A-Za-z-]"),
            ("1.2.3+build.5", "build metadata"),
            ("1.2.3 ", "decimal"),
            ("18446744073709551616.0.0", "too large"),
        ] {
            let err = validate(bad).unwrap_err();
            assert!(err.contains(why), "{bad:?}: {err}");
            assert!(err.contains(&format!("`{bad}`")), "{bad:?}: {err}");
        }
    }
}
