//! What an app's triggers ask of the cluster: which objects it becomes (a command app is a Job, an
//! app without HTTP triggers has no Service), and whether its runtime's shim runs them, refused
//! in the pull request rather than found in a CrashLoopBackOff after the merge.

use std::collections::BTreeSet;

use spindle_schema::{App, Problem, Runtime, pointer_segment};

/// The annotation listing an app's trigger types on its Deployment or Job, so that a diff shows
/// a change of triggers.
pub const ANNOTATION: &str = "spindle.dev/triggers";

/// The trigger types a shim runs, and since which shim version, by the runtime's containerd
/// runtime type: spindle's shim (`io.containerd.spindle.*`), SpinKube's containerd-shim-spin
/// (`io.containerd.spin.*`, which has no cron trigger and runs SQS). `None`: a shim spindle does
/// not know, whose triggers are not checked.
pub fn supported(
    runtime: &Runtime,
) -> Option<(&'static str, &'static [(&'static str, &'static str)])> {
    const SPINDLE: &[(&str, &str)] = &[
        ("http", "0.0.0"),
        ("redis", "0.1.0"),
        ("mqtt", "0.1.0"),
        ("cron", "0.1.0"),
        ("command", "0.1.0"),
    ];
    const SPIN: &[(&str, &str)] = &[
        ("http", "0.0.0"),
        ("redis", "0.0.0"),
        ("sqs", "0.0.0"),
        ("mqtt", "0.0.0"),
        ("command", "0.0.0"),
    ];
    let kind = runtime.runtime_type.as_str();
    if kind.starts_with("io.containerd.spindle.") {
        Some(("spindle's shim", SPINDLE))
    } else if kind.starts_with("io.containerd.spin.") {
        Some(("containerd-shim-spin", SPIN))
    } else {
        None
    }
}

/// The apps of `platform` whose manifest (in `app_triggers`, by `source`) has a trigger their
/// runtime's shim does not run: what `spindle check` refuses, as rendering does.
pub fn check_platform(
    platform: &spindle_schema::Platform,
    app_triggers: &std::collections::BTreeMap<String, BTreeSet<String>>,
) -> Vec<Problem> {
    platform
        .apps
        .iter()
        .filter_map(|(name, app)| {
            let triggers = app_triggers.get(app.source.as_ref()?)?;
            let (runtime_name, runtime) = platform.runtime_of(app)?;
            check_runtime(name, app, triggers, runtime_name, runtime).err()
        })
        .collect()
}

/// Refuses an app whose manifest has a trigger its runtime's shim does not run, at the app's
/// `source`.
pub(crate) fn check_runtime(
    name: &str,
    app: &App,
    triggers: &BTreeSet<String>,
    runtime_name: &str,
    runtime: &Runtime,
) -> Result<(), Problem> {
    let Some((shim, supported)) = supported(runtime) else {
        return Ok(());
    };
    let version = &runtime.shim.version;
    for trigger in triggers {
        let since = supported.iter().find(|(kind, _)| kind == trigger);
        let refusal = match since {
            None => format!(
                "runtime `{runtime_name}` ({shim}) does not run {trigger} triggers (it runs {})",
                supported
                    .iter()
                    .map(|(kind, _)| *kind)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Some((_, since)) if older(version, since) => format!(
                "runtime `{runtime_name}` has {shim} {version}, which runs {trigger} triggers \
                 from {since} on"
            ),
            Some(_) => continue,
        };
        return Err(Problem {
            pointer: format!("/apps/{}/source", pointer_segment(name)),
            message: format!(
                "app `{name}` has a {trigger} trigger (in {}), but {refusal}",
                app.source.as_deref().unwrap_or("its spin.toml")
            ),
        });
    }
    Ok(())
}

/// Whether dotted shim version `version` comes before `since` (numerically, major, minor and patch; a
/// leading `v` and what follows a `-` or `+` are ignored). A version that is not numbered (a
/// build's own name) is not known to be older.
pub fn older(version: &str, since: &str) -> bool {
    let fields = |v: &str| -> Option<[u64; 3]> {
        let core = v.trim_start_matches('v').split(['-', '+']).next()?;
        let mut fields = [0; 3];
        for (slot, field) in fields.iter_mut().zip(core.split('.')) {
            *slot = field.parse().ok()?;
        }
        Some(fields)
    };
    match (fields(version), fields(since)) {
        (Some(version), Some(since)) => version < since,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::older;

    #[test]
    fn versions_compare_by_number() {
        assert!(older("0.0.9", "0.1.0"));
        assert!(older("v0.9.2", "0.10.0"));
        assert!(!older("0.1.0", "0.1.0"));
        assert!(!older("1.0.0-rc1", "0.1.0"));
        assert!(older("0", "0.1.0"));
        assert!(
            !older("e2e", "0.1.0"),
            "a build's own name is not known to be older"
        );
    }
}
