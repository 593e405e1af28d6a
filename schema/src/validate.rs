//! Checks that the types alone cannot make: name rules, references between objects, collisions.

use std::collections::{BTreeMap, BTreeSet};

use crate::{
    Platform, is_dns_label, is_image_reference, is_spin_variable_name,
    model::{App, Runtime},
};

/// One violated rule, at a JSON pointer (RFC 6901) into the evaluated [`Platform`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Where, as a JSON pointer into the environment's value.
    pub pointer: String,
    /// What is wrong, for people.
    pub message: String,
}

/// Namespaces that belong to the cluster: no app may be placed in them.
pub const CLUSTER_NAMESPACES: [&str; 3] = ["kube-system", "kube-public", "kube-node-lease"];

/// Checks a platform. `file_exists` answers for paths relative to the repository root.
pub fn validate(platform: &Platform, file_exists: &dyn Fn(&str) -> bool) -> Vec<Problem> {
    let mut problems = Problems::default();
    for (name, app) in &platform.apps {
        check_app(&mut problems, platform, name, app, file_exists);
    }
    for (name, runtime) in &platform.runtimes {
        check_runtime(&mut problems, name, runtime);
    }
    check_route_collisions(&mut problems, platform);
    check_runtime_collisions(&mut problems, platform);
    problems.0
}

#[derive(Default)]
struct Problems(Vec<Problem>);

impl Problems {
    fn push(&mut self, pointer: impl Into<String>, message: impl Into<String>) {
        self.0.push(Problem {
            pointer: pointer.into(),
            message: message.into(),
        });
    }
}

/// Escapes one segment of a JSON pointer (RFC 6901).
pub fn pointer_segment(segment: &str) -> String {
    segment.replace('~', "~0").replace('/', "~1")
}

fn check_app(
    problems: &mut Problems,
    platform: &Platform,
    name: &str,
    app: &App,
    file_exists: &dyn Fn(&str) -> bool,
) {
    let at = format!("/apps/{}", pointer_segment(name));
    if !is_dns_label(name) {
        problems.push(&at, format!(
            "app name `{name}` is not a DNS-1123 label (lower-case letters, digits and '-', at most 63)"
        ));
    }
    if !is_dns_label(&app.namespace) {
        problems.push(
            format!("{at}/namespace"),
            format!("namespace `{}` is not a DNS-1123 label", app.namespace),
        );
    } else if CLUSTER_NAMESPACES.contains(&app.namespace.as_str()) {
        problems.push(
            format!("{at}/namespace"),
            format!(
                "app `{name}` may not run in `{}`: that namespace belongs to the cluster itself; \
                 choose a namespace of your own",
                app.namespace
            ),
        );
    }
    match (&app.image, &app.source) {
        (None, None) => problems.push(&at, format!(
            "app `{name}` has neither `image` (what a cluster runs) nor `source` (what `spindle up` runs)"
        )),
        (Some(image), _) if !is_image_reference(image) => problems.push(
            format!("{at}/image"),
            format!("`{image}` is not a valid OCI image reference (expected [host[:port]/]path[:tag][@sha256:digest])"),
        ),
        _ => {}
    }
    if let Some(source) = &app.source
        && !file_exists(source)
    {
        problems.push(format!("{at}/source"), format!(
            "`{source}` does not exist in the repository (paths are relative to the repository root)"
        ));
    }
    if let Some(scaling) = &app.autoscaling {
        if scaling.min_replicas == 0 || scaling.min_replicas > scaling.max_replicas {
            problems.push(
                format!("{at}/autoscaling"),
                format!(
                    "autoscaling needs 1 <= minReplicas <= maxReplicas, got {}..{}",
                    scaling.min_replicas, scaling.max_replicas
                ),
            );
        }
        let requests_cpu = app
            .resources
            .as_ref()
            .is_some_and(|resources| resources.requests.contains_key("cpu"));
        if !requests_cpu {
            problems.push(
                format!("{at}/autoscaling"),
                "autoscaling on CPU needs `resources.requests.cpu`: utilisation is measured against the request",
            );
        }
        if !(1..=100).contains(&scaling.target_cpu_utilization) {
            problems.push(
                format!("{at}/autoscaling/targetCpuUtilization"),
                "targetCpuUtilization is a percentage between 1 and 100",
            );
        }
    }
    for (variable, value) in &app.variables {
        let vat = format!("{at}/variables/{}", pointer_segment(variable));
        if !is_spin_variable_name(variable) {
            problems.push(&vat, format!(
                "`{variable}` is not a Spin variable name (lower-case letters, digits and single '_', starting with a letter)"
            ));
        }
        if let Some((kind, key)) = value.key_ref()
            && (!is_dns_subdomain(&key.name) || key.key.is_empty())
        {
            problems.push(
                &vat,
                format!("{kind} reference needs a valid `name` and a non-empty `key`"),
            );
        }
    }
    if let Some(components) = &app.components {
        if components.is_empty() {
            problems.push(
                format!("{at}/components"),
                "an empty component list would run nothing; leave `components` out to run them all",
            );
        }
        let mut seen = BTreeSet::new();
        for component in components {
            if !seen.insert(component) {
                problems.push(
                    format!("{at}/components"),
                    format!("component `{component}` is listed twice"),
                );
            }
        }
    }
    match &app.runtime {
        Some(runtime) if !platform.runtimes.contains_key(runtime) => {
            let known: Vec<&str> = platform.runtimes.keys().map(String::as_str).collect();
            problems.push(
                format!("{at}/runtime"),
                format!(
                    "runtime `{runtime}` is not defined (defined: {})",
                    if known.is_empty() {
                        "none".to_owned()
                    } else {
                        known.join(", ")
                    }
                ),
            );
        }
        None if platform.runtimes.len() > 1 => problems.push(
            &at,
            format!(
                "app `{name}` must name its `runtime`: the environment defines {}",
                platform
                    .runtimes
                    .keys()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ),
        _ => {}
    }
    if app.instance_memory_limit == Some(0) {
        problems.push(
            format!("{at}/instanceMemoryLimit"),
            "instanceMemoryLimit must be more than 0 bytes",
        );
    }
    if app.port == 0 {
        problems.push(format!("{at}/port"), "port 0 cannot be served");
    }
    if let Some(ingress) = &app.ingress {
        let host = ingress.host.strip_prefix("*.").unwrap_or(&ingress.host);
        if !is_dns_subdomain(host) {
            problems.push(
                format!("{at}/ingress/host"),
                format!("`{}` is not a valid host name", ingress.host),
            );
        }
        if !ingress.path.starts_with('/') {
            problems.push(
                format!("{at}/ingress/path"),
                "an ingress path starts with '/'",
            );
        }
    }
    if let Some(account) = &app.service_account
        && !is_dns_subdomain(account)
    {
        problems.push(
            format!("{at}/serviceAccount"),
            format!("`{account}` is not a valid ServiceAccount name"),
        );
    }
}

fn check_runtime(problems: &mut Problems, name: &str, runtime: &Runtime) {
    let at = format!("/runtimes/{}", pointer_segment(name));
    if !is_dns_label(name) {
        problems.push(
            &at,
            format!("runtime name `{name}` is not a DNS-1123 label"),
        );
    }
    let shim = &runtime.shim;
    match (&shim.image, &shim.url) {
        (None, None) | (Some(_), Some(_)) => problems.push(
            format!("{at}/shim"),
            "the shim needs exactly one source: `image` or `url`",
        ),
        (Some(image), None) if !is_image_reference(image) => problems.push(
            format!("{at}/shim/image"),
            format!("`{image}` is not a valid OCI image reference"),
        ),
        (None, Some(url))
            if !(url.starts_with("https://")
                || url.starts_with("http://")
                || url.starts_with("file://")) =>
        {
            problems.push(
                format!("{at}/shim/url"),
                format!("`{url}` is not an http(s):// or file:// URL"),
            )
        }
        _ => {}
    }
    if shim.sha256.len() != 64
        || !shim
            .sha256
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
    {
        problems.push(
            format!("{at}/shim/sha256"),
            "sha256 must be 64 lower-case hex digits",
        );
    }
    if shim.version.is_empty() {
        problems.push(
            format!("{at}/shim/version"),
            "the shim version must not be empty",
        );
    }
    if let Some(containerd) = &runtime.containerd {
        let paths = [
            ("config", &containerd.config),
            ("socket", &containerd.socket),
            ("shimDir", &containerd.shim_dir),
        ];
        for (field, path) in paths {
            if let Some(path) = path
                && !path.starts_with('/')
            {
                problems.push(
                    format!("{at}/containerd/{field}"),
                    format!("`{path}` must be an absolute path on the node"),
                );
            }
        }
    }
    if !is_dns_label(&runtime.handler) {
        problems.push(
            format!("{at}/handler"),
            format!("handler `{}` is not a DNS-1123 label", runtime.handler),
        );
    }
    if !runtime.runtime_type.starts_with("io.containerd.") {
        problems.push(
            format!("{at}/runtimeType"),
            format!(
                "runtime type `{}` should look like io.containerd.NAME.vN",
                runtime.runtime_type
            ),
        );
    }
    if runtime.rollout.max_unavailable == 0 {
        problems.push(
            format!("{at}/rollout/maxUnavailable"),
            "maxUnavailable 0 would never install a node",
        );
    }
}

fn check_route_collisions(problems: &mut Problems, platform: &Platform) {
    let mut routes: BTreeMap<(&str, &str), &str> = BTreeMap::new();
    for (name, app) in &platform.apps {
        let Some(ingress) = &app.ingress else {
            continue;
        };
        let path = ingress.path.trim_end_matches('/');
        if let Some(other) = routes.insert((ingress.host.as_str(), path), name) {
            problems.push(
                format!("/apps/{}/ingress", pointer_segment(name)),
                format!(
                    "route {}{} is already taken by app `{other}`",
                    ingress.host, ingress.path
                ),
            );
        }
    }
}

fn check_runtime_collisions(problems: &mut Problems, platform: &Platform) {
    let mut classes: BTreeMap<&str, &str> = BTreeMap::new();
    for (name, runtime) in &platform.runtimes {
        let class = runtime.class_name(name);
        if let Some(other) = classes.insert(class, name) {
            problems.push(
                format!("/runtimes/{}", pointer_segment(name)),
                format!("RuntimeClass `{class}` is also provided by runtime `{other}`"),
            );
        }
    }
}

/// A DNS-1123 subdomain: dot-separated labels, at most 253 characters.
fn is_dns_subdomain(name: &str) -> bool {
    name.len() <= 253 && name.split('.').all(is_dns_label)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn platform(json: serde_json::Value) -> Platform {
        serde_json::from_value(json).expect("test platform deserialises")
    }

    fn problems(json: serde_json::Value) -> Vec<Problem> {
        validate(&platform(json), &|path| path == "apps/web/spin.toml")
    }

    const SHA: &str = "0000000000000000000000000000000000000000000000000000000000000000";

    #[test]
    fn a_good_platform_has_no_problems() {
        let found = problems(serde_json::json!({
            "apps": {"web": {"image": "ghcr.io/a/web:1", "source": "apps/web/spin.toml",
                             "variables": {"greeting": "hi"}}},
            "runtimes": {"spin": {"shim": {"version": "1", "url": "https://x/shim", "sha256": SHA}}}
        }));
        assert_eq!(found, vec![]);
    }

    #[test]
    fn reports_each_broken_rule_at_its_pointer() {
        let found = problems(serde_json::json!({
            "apps": {
                "Web": {"image": "NOT AN IMAGE"},
                "api": {"source": "missing/spin.toml", "runtime": "nope",
                        "variables": {"Bad-Name": "x"},
                        "ingress": {"host": "a.example.com"}},
                "api2": {"image": "a/b", "ingress": {"host": "a.example.com", "path": "/"}},
            },
            "runtimes": {"spin": {"shim": {"version": "1", "sha256": "abc"}}}
        }));
        let pointers: Vec<&str> = found.iter().map(|p| p.pointer.as_str()).collect();
        assert_eq!(
            pointers,
            vec![
                "/apps/Web",
                "/apps/Web/image",
                "/apps/api/source",
                "/apps/api/variables/Bad-Name",
                "/apps/api/runtime",
                "/runtimes/spin/shim",
                "/runtimes/spin/shim/sha256",
                "/apps/api2/ingress",
            ]
        );
        assert!(
            found[4]
                .message
                .contains("runtime `nope` is not defined (defined: spin)")
        );
        assert!(found[7].message.contains("already taken by app `api`"));
    }

    #[test]
    fn an_app_must_name_its_runtime_when_there_are_several() {
        let runtime = serde_json::json!({"shim": {"version": "1", "url": "https://x", "sha256": SHA},
                                         "runtimeClass": {"name": "same"}});
        let found = problems(serde_json::json!({
            "apps": {"web": {"image": "a/b"}},
            "runtimes": {"one": runtime.clone(), "two": runtime}
        }));
        assert_eq!(found.len(), 2, "{found:?}");
        assert!(found[0].message.contains("must name its `runtime`"));
        assert!(
            found[1]
                .message
                .contains("RuntimeClass `same` is also provided by runtime `one`")
        );
    }
}
