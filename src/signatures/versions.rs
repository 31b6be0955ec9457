//! Affected version ranges checked against a Go binary's buildinfo: where the binary names
//! the module of a known bug (as main module or dependency), a finding says whether its
//! version is in the affected range, before it, or already has the fix.

use crate::model::{Confidence, GoProcess, Snapshot};

/// The module a known bug lives in and its affected range `[first, fixed)`.
#[derive(Debug, Clone, Copy)]
pub struct AffectedModule {
    /// Module path, e.g. `github.com/moby/buildkit`; a trailing `/` matches any module
    /// under it (podman's major-version paths: `github.com/containers/podman/`).
    pub module: &'static str,
    /// How people call it: `buildkit`, `runc`, `podman`.
    pub name: &'static str,
    pub first: (u64, u64, u64),
    pub fixed: (u64, u64, u64),
}

/// What buildinfo says of the module in a process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Version {
    /// Not a Go binary, no buildinfo, or no such module.
    Absent,
    /// A version that cannot be placed (`(devel)`, distribution builds, a pseudo-version
    /// of no release, a pre-release of the fixed version).
    Unknown(String),
    Affected(String),
    Fixed(String),
    Before(String),
}

fn dotted((a, b, c): (u64, u64, u64)) -> String {
    format!("v{a}.{b}.{c}")
}

impl AffectedModule {
    /// The range in words: `v0.14.0 – before v0.30.0`.
    pub fn range(&self) -> String {
        format!(
            "{} up to {} (not included)",
            dotted(self.first),
            dotted(self.fixed)
        )
    }

    /// What the buildinfo of process `pid` says.
    pub fn of_process(&self, s: &Snapshot, pid: i32) -> Version {
        match s.process(pid).and_then(|p| p.go.as_ref()) {
            Some(go) => self.of(go),
            None => Version::Absent,
        }
    }

    pub fn of(&self, go: &GoProcess) -> Version {
        let found = go
            .main_module
            .iter()
            .chain(go.dependencies.iter())
            .find(|m| {
                m.path == self.module
                    || (self.module.ends_with('/') && m.path.starts_with(self.module))
            });
        let Some(m) = found else {
            return Version::Absent;
        };
        // A replacement's version is what was built.
        let v = m
            .replaced_by
            .as_ref()
            .filter(|r| !r.version.is_empty())
            .map_or(m.version.as_str(), |r| r.version.as_str());
        self.classify(v)
    }

    pub fn classify(&self, v: &str) -> Version {
        let Some((major, minor, patch, pre)) = semver(v) else {
            return Version::Unknown(v.to_string());
        };
        if (major, minor, patch) == (0, 0, 0) {
            return Version::Unknown(v.to_string());
        }
        // vX.Y.Z-pre comes before vX.Y.Z.
        let key = (major, minor, patch, !pre);
        let (f, x) = (self.first, self.fixed);
        if key < (f.0, f.1, f.2, true) {
            Version::Before(v.to_string())
        } else if key < (x.0, x.1, x.2, true) {
            if pre && (major, minor, patch) == x {
                // A pre-release of the fixed version may or may not hold the fix.
                Version::Unknown(v.to_string())
            } else {
                Version::Affected(v.to_string())
            }
        } else {
            Version::Fixed(v.to_string())
        }
    }

    /// One sentence for a finding's explanation.
    pub fn sentence(&self, v: &Version) -> String {
        let (m, n, r, fx) = (self.module, self.name, self.range(), dotted(self.fixed));
        match v {
            Version::Absent => format!(
                "The binary's buildinfo names no {m} module (or has no buildinfo): check the {n} version by hand."
            ),
            Version::Unknown(v) => format!(
                "Its buildinfo names {m} {v}, which cannot be placed in the affected range ({r}); distribution builds record no version: ask `{n} --version`."
            ),
            Version::Affected(v) => {
                format!(
                    "Its buildinfo names {m} {v}: in the affected range ({r}); {fx} has the fix."
                )
            }
            Version::Fixed(v) => format!(
                "Its buildinfo names {m} {v}, which has the fix ({fx} and later): the same shape with another cause?"
            ),
            Version::Before(v) => {
                format!("Its buildinfo names {m} {v}, older than the affected range ({r}).")
            }
        }
    }
}

/// A version with the fix makes the known bug less likely the cause: one step down.
pub fn weaken_if_fixed(c: Confidence, v: &Version) -> Confidence {
    match (v, c) {
        (Version::Fixed(_), Confidence::Certain) => Confidence::Likely,
        (Version::Fixed(_), _) => Confidence::Possible,
        _ => c,
    }
}

/// `vMAJOR.MINOR.PATCH[-pre][+build]` → numbers and whether it is a pre-release.
fn semver(v: &str) -> Option<(u64, u64, u64, bool)> {
    let v = v.strip_prefix('v')?;
    let v = v.split('+').next()?;
    let (core, pre) = match v.split_once('-') {
        Some((c, _)) => (c, true),
        None => (v, false),
    };
    let mut it = core.split('.').map(|n| n.parse::<u64>().ok());
    let (a, b, c) = (it.next()??, it.next()??, it.next()??);
    if it.next().is_some() {
        return None;
    }
    Some((a, b, c, pre))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::GoModule;

    const BUILDKIT: AffectedModule = AffectedModule {
        module: "github.com/moby/buildkit",
        name: "buildkitd",
        first: (0, 14, 0),
        fixed: (0, 30, 0),
    };

    fn kind(v: &Version) -> &'static str {
        match v {
            Version::Absent => "absent",
            Version::Unknown(_) => "unknown",
            Version::Affected(_) => "affected",
            Version::Fixed(_) => "fixed",
            Version::Before(_) => "before",
        }
    }

    #[test]
    fn versions_are_placed_in_the_affected_range() {
        for (v, want) in [
            ("v0.13.2", "before"),
            ("v0.14.0", "affected"),
            ("v0.20.0", "affected"),
            ("v0.29.9", "affected"),
            ("v0.29.1-0.20250101000000-abcdef123456", "affected"),
            ("v0.30.0-rc1", "unknown"),
            ("v0.30.0", "fixed"),
            ("v0.31.2+incompatible", "fixed"),
            ("v1.0.0", "fixed"),
            ("(devel)", "unknown"),
            ("v0.0.0-20240101000000-abcdef123456", "unknown"),
            ("v0.x.1", "unknown"),
        ] {
            assert_eq!(kind(&BUILDKIT.classify(v)), want, "{v}");
        }
    }

    #[test]
    fn modules_are_found_as_dependency_replacement_or_under_a_prefix() {
        let dep = |path: &str, version: &str| GoModule {
            path: path.into(),
            version: version.into(),
            ..Default::default()
        };
        let mut go = GoProcess {
            main_module: Some(dep("example.com/tool", "(devel)")),
            dependencies: vec![dep("github.com/moby/buildkit", "v0.20.1")],
            ..Default::default()
        };
        assert_eq!(BUILDKIT.of(&go), Version::Affected("v0.20.1".into()));
        go.dependencies[0].replaced_by = Some(Box::new(dep("../buildkit", "v0.30.1")));
        assert_eq!(
            kind(&BUILDKIT.of(&go)),
            "fixed",
            "the replacement was built"
        );
        let podman = AffectedModule {
            module: "github.com/containers/podman/",
            name: "podman",
            first: (1, 4, 0),
            fixed: (5, 4, 0),
        };
        go.main_module = Some(dep("github.com/containers/podman/v5", "v5.3.2"));
        assert_eq!(kind(&podman.of(&go)), "affected");
        go.main_module = Some(dep("github.com/containers/podman/cmd/podman", ""));
        assert_eq!(
            kind(&podman.of(&go)),
            "unknown",
            "Debian's build records no version"
        );
        assert!(
            podman
                .sentence(&podman.of(&go))
                .contains("podman --version")
        );
    }
}
