//! The Kubernetes version rendered for, and the API versions it serves (Helm's "capabilities").

use std::{fmt, str::FromStr};

/// A Kubernetes minor release, `1.MINOR`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct KubeVersion {
    /// The minor version: 34 for Kubernetes 1.34.
    pub minor: u32,
}

impl KubeVersion {
    /// The oldest release spindle renders for: RuntimeClass `node.k8s.io/v1` arrived in 1.20.
    pub const OLDEST: KubeVersion = KubeVersion { minor: 20 };
    /// The newest release spindle knows; the default when there is no cluster to ask.
    pub const NEWEST: KubeVersion = KubeVersion { minor: 37 };

    /// `autoscaling/v2` is served from 1.23; `v2beta2` (same shape for CPU targets) until 1.25.
    pub fn horizontal_pod_autoscaler(self) -> &'static str {
        if self.minor >= 23 {
            "autoscaling/v2"
        } else {
            "autoscaling/v2beta2"
        }
    }

    /// `policy/v1` is served from 1.21; `v1beta1` until 1.24.
    pub fn pod_disruption_budget(self) -> &'static str {
        if self.minor >= 21 {
            "policy/v1"
        } else {
            "policy/v1beta1"
        }
    }

    /// Parses what an apiserver reports (`major: "1"`, `minor: "20+"`).
    pub fn from_server(major: &str, minor: &str) -> Result<Self, String> {
        let digits = |s: &str| s.trim_end_matches('+').parse::<u32>().ok();
        match (digits(major), digits(minor)) {
            (Some(1), Some(minor)) => Self::supported(minor),
            _ => Err(format!(
                "the cluster reports an unknown Kubernetes version {major}.{minor}"
            )),
        }
    }

    fn supported(minor: u32) -> Result<Self, String> {
        let version = KubeVersion { minor };
        if version < Self::OLDEST {
            Err(format!(
                "Kubernetes {version} is not supported: spindle renders for {} to {}",
                Self::OLDEST,
                Self::NEWEST
            ))
        } else {
            // Newer releases serve every API version the newest known one does.
            Ok(version.min(Self::NEWEST))
        }
    }
}

impl FromStr for KubeVersion {
    type Err = String;

    /// Accepts `1.27`, `v1.27` and `v1.27.3`.
    fn from_str(text: &str) -> Result<Self, String> {
        let mut parts = text.trim_start_matches('v').split('.');
        match (parts.next(), parts.next()) {
            (Some("1"), Some(minor)) if minor.parse::<u32>().is_ok() => {
                Self::supported(minor.parse().expect("checked"))
            }
            _ => Err(format!(
                "`{text}` is not a Kubernetes version (expected 1.MINOR, like 1.30)"
            )),
        }
    }
}

impl fmt::Display for KubeVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "1.{}", self.minor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_what_users_and_servers_write() {
        assert_eq!("1.27".parse(), Ok(KubeVersion { minor: 27 }));
        assert_eq!("v1.20.2".parse(), Ok(KubeVersion { minor: 20 }));
        assert_eq!(
            KubeVersion::from_server("1", "22+"),
            Ok(KubeVersion { minor: 22 })
        );
        assert_eq!("1.40".parse(), Ok(KubeVersion::NEWEST));
        assert!(
            "1.19"
                .parse::<KubeVersion>()
                .unwrap_err()
                .contains("1.20 to 1.37")
        );
        assert!("2.0".parse::<KubeVersion>().is_err());
        assert!("latest".parse::<KubeVersion>().is_err());
    }

    #[test]
    fn api_versions_switch_where_kubernetes_switched() {
        let at = |minor| KubeVersion { minor };
        assert_eq!(at(20).pod_disruption_budget(), "policy/v1beta1");
        assert_eq!(at(21).pod_disruption_budget(), "policy/v1");
        assert_eq!(at(22).horizontal_pod_autoscaler(), "autoscaling/v2beta2");
        assert_eq!(at(23).horizontal_pod_autoscaler(), "autoscaling/v2");
    }
}
