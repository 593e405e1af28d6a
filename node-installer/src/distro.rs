//! Where a node's containerd reads its configuration, and how it is restarted, by distribution.
//! Detected from files under the host root, in this order (a node has one of them).

use std::path::{Path, PathBuf};

/// A Kubernetes distribution: it decides where containerd's config is and how containerd restarts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Distro {
    /// k3s: containerd's config is generated from `config.toml.tmpl` at each start.
    K3s,
    /// RKE2: like k3s, under `/var/lib/rancher/rke2`.
    Rke2,
    /// MicroK8s: `containerd-template.toml` in the snap's args.
    Microk8s,
    /// k0s: a drop-in under `/etc/k0s/containerd.d/`, imported by k0s's containerd config.
    K0s,
    /// containerd's own `/etc/containerd/config.toml` (kind, minikube, kubeadm, AKS, EKS, GKE).
    Containerd,
}

/// What the installer edits and restarts on a node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    /// The distribution this layout is for.
    pub distro: Distro,
    /// The file the installer edits, under the host root.
    pub config: PathBuf,
    /// Where to start from when `config` does not exist yet: the config the distribution
    /// generated (k3s, RKE2), or nothing (a drop-in starts empty).
    pub seed: Option<PathBuf>,
    /// Candidate systemd units, the first one active is restarted (none for k0s, which watches
    /// its drop-ins).
    pub units: &'static [&'static str],
    /// containerd's socket, as the host sees it.
    pub socket: &'static str,
}

const K3S: &str = "var/lib/rancher/k3s/agent/etc/containerd";
const RKE2: &str = "var/lib/rancher/rke2/agent/etc/containerd";
const MICROK8S: &str = "var/snap/microk8s/current/args";
const K0S: &str = "etc/k0s";
const CONTAINERD: &str = "etc/containerd/config.toml";

/// Detects the distribution from the host's files.
pub fn detect(host_root: &Path) -> Distro {
    if host_root.join(K3S).is_dir() {
        Distro::K3s
    } else if host_root.join(RKE2).is_dir() {
        Distro::Rke2
    } else if host_root
        .join(MICROK8S)
        .join("containerd-template.toml")
        .is_file()
    {
        Distro::Microk8s
    } else if host_root.join(K0S).is_dir() {
        Distro::K0s
    } else {
        Distro::Containerd
    }
}

impl Distro {
    /// The files and units of this distribution on a host mounted at `host_root`.
    pub fn layout(self, host_root: &Path) -> Layout {
        let at = |relative: &str| host_root.join(relative);
        match self {
            Distro::K3s | Distro::Rke2 => {
                let dir = if self == Distro::K3s { K3S } else { RKE2 };
                // containerd 2 based releases read `config-v3.toml.tmpl`.
                let v3 = at(dir).join("config-v3.toml.tmpl");
                let config = if v3.is_file() {
                    v3
                } else {
                    at(dir).join("config.toml.tmpl")
                };
                Layout {
                    distro: self,
                    config,
                    seed: Some(at(dir).join("config.toml")),
                    units: if self == Distro::K3s {
                        &["k3s.service", "k3s-agent.service"]
                    } else {
                        &["rke2-server.service", "rke2-agent.service"]
                    },
                    socket: "/run/k3s/containerd/containerd.sock",
                }
            }
            Distro::Microk8s => Layout {
                distro: self,
                config: at(MICROK8S).join("containerd-template.toml"),
                seed: None,
                units: &["snap.microk8s.daemon-containerd.service"],
                socket: "/var/snap/microk8s/common/run/containerd.sock",
            },
            Distro::K0s => Layout {
                distro: self,
                config: at(K0S).join("containerd.d/spindle.toml"),
                seed: None,
                units: &[],
                socket: "/run/k0s/containerd.sock",
            },
            Distro::Containerd => Layout {
                distro: self,
                config: at(CONTAINERD),
                seed: None,
                units: &["containerd.service"],
                socket: "/run/containerd/containerd.sock",
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(files: &[&str]) -> tempfile::TempDir {
        let root = tempfile::tempdir().unwrap();
        for file in files {
            let path = root.path().join(file);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, "").unwrap();
        }
        root
    }

    #[test]
    fn each_distribution_is_told_by_its_files() {
        let k3s = host(&["var/lib/rancher/k3s/agent/etc/containerd/config.toml"]);
        assert_eq!(detect(k3s.path()), Distro::K3s);
        let layout = Distro::K3s.layout(k3s.path());
        assert!(layout.config.ends_with("containerd/config.toml.tmpl"));
        assert!(layout.seed.unwrap().ends_with("containerd/config.toml"));

        let k3s_v3 = host(&[
            "var/lib/rancher/k3s/agent/etc/containerd/config.toml",
            "var/lib/rancher/k3s/agent/etc/containerd/config-v3.toml.tmpl",
        ]);
        assert!(
            Distro::K3s
                .layout(k3s_v3.path())
                .config
                .ends_with("config-v3.toml.tmpl")
        );

        let rke2 = host(&["var/lib/rancher/rke2/agent/etc/containerd/config.toml"]);
        assert_eq!(detect(rke2.path()), Distro::Rke2);
        let microk8s = host(&["var/snap/microk8s/current/args/containerd-template.toml"]);
        assert_eq!(detect(microk8s.path()), Distro::Microk8s);
        let k0s = host(&["etc/k0s/k0s.yaml"]);
        assert_eq!(detect(k0s.path()), Distro::K0s);
        assert!(
            Distro::K0s
                .layout(k0s.path())
                .config
                .ends_with("etc/k0s/containerd.d/spindle.toml")
        );
        let plain = host(&["etc/containerd/config.toml"]);
        assert_eq!(detect(plain.path()), Distro::Containerd);
        assert_eq!(detect(host(&[]).path()), Distro::Containerd);
    }
}
