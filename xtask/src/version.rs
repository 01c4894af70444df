//! Validation of release versions, with the `semver` crate.

/// Checks that `version` is a semantic version `MAJOR.MINOR.PATCH` with an optional
/// `-PRERELEASE` (the grammar of semver.org, as cargo reads it), and returns it. Build metadata
/// (`+...`) is refused: registries ignore it, so it cannot tell two releases apart.
pub(crate) fn release_version(version: &str) -> Result<String, String> {
    let bad = |why: &dyn std::fmt::Display| {
        Err(format!("`{version}` is not a valid release version: {why}"))
    };
    if version.starts_with(['v', 'V']) {
        return bad(&"write it without the leading `v` (the tag gets one)");
    }
    match semver::Version::parse(version) {
        Ok(parsed) if !parsed.build.is_empty() => {
            bad(&"build metadata (`+...`) is not supported for releases")
        }
        Ok(_) => Ok(version.to_owned()),
        Err(e) => bad(&e),
    }
}

#[cfg(test)]
mod tests {
    use super::release_version;

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
            assert_eq!(release_version(ok), Ok(ok.to_owned()), "{ok}");
        }
    }

    #[test]
    fn rejects_everything_else() {
        for (bad, why) in [
            ("", "empty"),
            ("1", "unexpected end of input"),
            ("1.2", "unexpected end of input"),
            ("1.2.3.4", "unexpected character '.'"),
            ("v1.2.3", "leading `v`"),
            ("01.2.3", "leading zero"),
            ("1.02.3", "leading zero"),
            ("1.2.x", "unexpected character 'x'"),
            ("1..3", "unexpected character '.'"),
            ("1.2.3-", "empty identifier"),
            ("1.2.3-rc..1", "empty identifier"),
            ("1.2.3-rc.01", "leading zero"),
            ("1.2.3-rc_1", "unexpected character '_'"),
            ("1.2.3+build.5", "build metadata"),
            ("1.2.3 ", "unexpected character ' '"),
            ("18446744073709551616.0.0", "exceeds u64::MAX"),
        ] {
            let err = release_version(bad).unwrap_err();
            assert!(err.contains(why), "{bad:?}: {err}");
            assert!(err.contains(&format!("`{bad}`")), "{bad:?}: {err}");
        }
    }
}
