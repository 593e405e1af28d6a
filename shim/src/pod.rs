//! The container's environment, read in SpinKube's conventions so that Deployments made for
//! SpinKube's shim run unchanged: `SPIN_HTTP_LISTEN_ADDR`, `SPIN_VARIABLE_<NAME>`,
//! `SPIN_COMPONENTS_TO_RETAIN`, `SPIN_MAX_INSTANCE_MEMORY` (bytes), a runtime config mounted
//! at `/runtime-config.toml`, and the `OTEL_*` variables (read by [`var`] when the app starts).

use std::{net::SocketAddr, path::PathBuf};

use anyhow::{Context as _, Result};
use spindle_runtime::{Options, stores::StateDir};

/// Where SpinKube mounts the app's runtime config.
pub const RUNTIME_CONFIG: &str = "/runtime-config.toml";
const DEFAULT_LISTEN: &str = "0.0.0.0:80";

/// How to serve the app of one container.
#[derive(Debug)]
pub struct Pod {
    pub listen: SocketAddr,
    pub options: Options,
}

/// The value of `name` among the container's `KEY=VALUE` entries (the last one wins).
pub fn var(envs: &[String], name: &str) -> Option<String> {
    envs.iter()
        .rev()
        .filter_map(|entry| entry.split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value.to_owned())
}

/// Reads `KEY=VALUE` entries of the container's process; `runtime_config` is the mounted runtime
/// config file, when there is one.
pub fn from_env(envs: &[String], runtime_config: Option<PathBuf>) -> Result<Pod> {
    let mut listen = DEFAULT_LISTEN.to_owned();
    let mut options = Options {
        // SpinKube's shim keeps `default` stores under `/.spin` in the container.
        state: StateDir::Folder("/.spin".into()),
        runtime_config,
        variables_from_env: false,
        ..Options::default()
    };
    for entry in envs {
        let Some((key, value)) = entry.split_once('=') else {
            continue;
        };
        if let Some(name) = key.strip_prefix("SPIN_VARIABLE_") {
            options
                .variables
                .insert(name.to_ascii_lowercase(), value.to_owned());
            continue;
        }
        match key {
            "SPIN_HTTP_LISTEN_ADDR" => listen = value.to_owned(),
            "SPIN_COMPONENTS_TO_RETAIN" => {
                options.retain = Some(
                    value
                        .split(',')
                        .map(str::trim)
                        .filter(|id| !id.is_empty())
                        .map(str::to_owned)
                        .collect(),
                );
            }
            "SPIN_MAX_INSTANCE_MEMORY" => {
                options.instance_memory = value.parse().with_context(|| {
                    format!("SPIN_MAX_INSTANCE_MEMORY=`{value}` is not a number of bytes")
                })?;
            }
            _ => {}
        }
    }
    let listen = listen
        .parse()
        .with_context(|| format!("SPIN_HTTP_LISTEN_ADDR=`{listen}` is not an address:port"))?;
    Ok(Pod { listen, options })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(entries: &[&str]) -> Vec<String> {
        entries.iter().map(|e| e.to_string()).collect()
    }

    #[test]
    fn spinkube_environment() {
        let pod = from_env(
            &env(&[
                "PATH=/usr/bin",
                "SPIN_HTTP_LISTEN_ADDR=127.0.0.1:8080",
                "SPIN_VARIABLE_API_TOKEN=t=1",
                "SPIN_COMPONENTS_TO_RETAIN=api, web",
                "SPIN_MAX_INSTANCE_MEMORY=33554432",
            ]),
            Some(RUNTIME_CONFIG.into()),
        )
        .unwrap();
        assert_eq!(pod.listen, "127.0.0.1:8080".parse().unwrap());
        assert_eq!(pod.options.variables["api_token"], "t=1");
        assert_eq!(pod.options.retain, Some(vec!["api".into(), "web".into()]));
        assert_eq!(pod.options.instance_memory, 32 << 20);
        assert_eq!(
            pod.options.runtime_config,
            Some(PathBuf::from(RUNTIME_CONFIG))
        );
        assert!(!pod.options.variables_from_env);
    }

    #[test]
    fn defaults_listen_on_port_80() {
        let pod = from_env(&[], None).unwrap();
        assert_eq!(pod.listen, "0.0.0.0:80".parse().unwrap());
        assert_eq!(pod.options.retain, None);
    }

    #[test]
    fn bad_values_are_named() {
        let err = from_env(&env(&["SPIN_MAX_INSTANCE_MEMORY=1Gi"]), None).unwrap_err();
        assert!(
            err.to_string().contains("SPIN_MAX_INSTANCE_MEMORY=`1Gi`"),
            "{err}"
        );
        let err = from_env(&env(&["SPIN_HTTP_LISTEN_ADDR=:80"]), None).unwrap_err();
        assert!(err.to_string().contains("SPIN_HTTP_LISTEN_ADDR"), "{err}");
    }
}
