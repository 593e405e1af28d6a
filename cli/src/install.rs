//! `spindle install --print`: the manifests that run `spindle reconcile` in a cluster, with
//! least-privilege RBAC (only the kinds spindle renders, its own ConfigMaps and Events).

use anyhow::{Context as _, Result, bail};
use clap::Args;
use serde_json::{Value, json};

use super::exit;
use spindle_render::KINDS;

#[derive(Debug, Args)]
pub struct InstallArgs {
    /// Print the manifests (apply them with `kubectl apply -f -`). Required: spindle does not
    /// install itself.
    #[arg(long)]
    print: bool,
    /// The repository the in-cluster reconciler follows.
    #[arg(
        long,
        default_value = "https://git.example.com/platform/gitops.git",
        value_name = "URL"
    )]
    repo: String,
    /// What it follows: `branch:NAME`, `tag:PATTERN` or `commit:SHA`.
    #[arg(long, default_value = "main", value_name = "REF")]
    follow: String,
    /// The environment it applies.
    #[arg(long, short = 'e', default_value = "production")]
    env: String,
    /// Namespace of the reconciler, its inventory and status.
    #[arg(long, default_value = "spindle-system", value_name = "NAMESPACE")]
    namespace: String,
    /// The image with the `spindle` binary.
    #[arg(long, value_name = "IMAGE")]
    image: Option<String>,
    /// A node policy to ship in a ConfigMap and give the reconciler. Without one, it installs no
    /// node runtime (see docs/node-installer.md).
    #[arg(long = "node-policy", value_name = "FILE")]
    node_policy: Option<std::path::PathBuf>,
    /// Have the reconciler apply as this ServiceAccount (NAMESPACE/NAME; `spindle reconcile
    /// --service-account`), and grant it `impersonate` on that account and the groups its token
    /// carries, and nothing else. Without it the reconciler impersonates no one.
    #[arg(long, value_name = "NAMESPACE/NAME")]
    service_account: Option<String>,
}

/// A ServiceAccount given as `NAMESPACE/NAME`.
struct Account<'a> {
    namespace: &'a str,
    name: &'a str,
}

impl<'a> Account<'a> {
    fn parse(text: &'a str) -> Result<Self> {
        match text.split_once('/') {
            Some((namespace, name))
                if is_dns_label(namespace)
                    && name.split('.').all(is_dns_label)
                    && name.len() <= 253 =>
            {
                Ok(Account { namespace, name })
            }
            _ => bail!("--service-account `{text}`: give the ServiceAccount as NAMESPACE/NAME"),
        }
    }

    /// The groups Kubernetes gives this account's token, which the reconciler impersonates
    /// beside it (`spindle_reconciler::cluster::client_as`).
    fn groups(&self) -> [String; 3] {
        [
            "system:serviceaccounts".to_owned(),
            format!("system:serviceaccounts:{}", self.namespace),
            "system:authenticated".to_owned(),
        ]
    }
}

fn is_dns_label(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= 63
        && text
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !text.starts_with('-')
        && !text.ends_with('-')
}

/// The Secret the Deployment reads git credentials and the webhook secret from (its keys are the
/// file names `--credentials-dir` knows).
const CREDENTIALS: &str = "spindle-git";
/// The ConfigMap that holds the node policy, under [`POLICY_KEY`].
const NODE_POLICY: &str = "spindle-node-policy";
const POLICY_KEY: &str = "node-policy.yaml";
/// The roles that let the reconciler impersonate `--service-account`, and only it, are named
/// `spindle-impersonate-NAMESPACE-NAME`.
const IMPERSONATE: &str = "spindle-impersonate";

pub fn install(args: &InstallArgs) -> Result<i32> {
    if !args.print {
        bail!(
            "spindle does not install itself: run `spindle install --print | kubectl apply -f -`"
        );
    }
    let policy = match &args.node_policy {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read the node policy {}", path.display()))?;
            spindle_render::NodePolicy::parse(&text, path)?;
            Some(text)
        }
        None => None,
    };
    let account = args
        .service_account
        .as_deref()
        .map(Account::parse)
        .transpose()?;
    let mut out = String::new();
    for object in manifests(args, policy.as_deref(), account.as_ref()) {
        out.push_str("---\n");
        out.push_str(&spindle_render::yaml::to_string(&object));
    }
    std::io::Write::write_all(&mut std::io::stdout().lock(), out.as_bytes())?;
    Ok(exit::OK)
}

fn manifests(args: &InstallArgs, policy: Option<&str>, account: Option<&Account>) -> Vec<Value> {
    let namespace = &args.namespace;
    let labels =
        json!({"app.kubernetes.io/name": "spindle", "app.kubernetes.io/component": "reconciler"});
    let image = args
        .image
        .clone()
        .unwrap_or_else(|| format!("ghcr.io/spindle-dev/spindle:{}", env!("CARGO_PKG_VERSION")));
    // What the reconciler calls, and no more (docs/reconciler.md has the table): server-side
    // apply is `patch` (and `create` for a new object), drift and health read with `get` and
    // `list` (per namespace), prune `delete`s. No `watch`, no `update`.
    let verbs = json!(["get", "list", "create", "patch", "delete"]);
    let mut rules: Vec<Value> = Vec::new();
    let mut by_group: std::collections::BTreeMap<&str, std::collections::BTreeSet<String>> =
        Default::default();
    // Jobs too: installer Jobs in spindle's own namespace, command apps' Jobs in theirs.
    for (api_version, kind) in KINDS.iter() {
        let group = api_version.rsplit_once('/').map_or("", |(group, _)| group);
        by_group.entry(group).or_default().insert(plural(kind));
    }
    for (group, resources) in by_group {
        rules.push(json!({"apiGroups": [group], "resources": resources, "verbs": verbs}));
    }
    // Installer Jobs are planned for the nodes a runtime selects; a node that completed one is
    // labelled provisioned (and one that left the selector unlabelled).
    rules.push(
        json!({"apiGroups": [""], "resources": ["nodes"], "verbs": ["get", "list", "patch"]}),
    );
    // `--service-account`: act as that ServiceAccount and the groups its token carries, so that
    // its RBAC bounds the applies; no other user, account or group (a leaked token must not
    // become system:masters). Kept out of spindle-reconciler, in roles of their own.
    let impersonation = account.into_iter().flat_map(|account| {
        // Named for the account: two installs with different accounts keep their own grants.
        let name = format!("{IMPERSONATE}-{}-{}", account.namespace, account.name);
        let binding = |kind: &str, binding_namespace: Option<&str>| {
            let mut metadata = json!({"name": name, "labels": labels});
            if let Some(binding_namespace) = binding_namespace {
                metadata["namespace"] = json!(binding_namespace);
            }
            json!({
                "apiVersion": "rbac.authorization.k8s.io/v1", "kind": format!("{kind}Binding"),
                "metadata": metadata,
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": kind, "name": name},
                "subjects": [{"kind": "ServiceAccount", "name": "spindle", "namespace": namespace}],
            })
        };
        [
            json!({
                "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
                "metadata": {"name": name, "labels": labels},
                "rules": [{
                    "apiGroups": [""], "resources": ["groups"], "verbs": ["impersonate"],
                    "resourceNames": account.groups(),
                }],
            }),
            binding("ClusterRole", None),
            // A ServiceAccount's impersonation is checked in its namespace: a Role there names it.
            json!({
                "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
                "metadata": {"name": name, "namespace": account.namespace, "labels": labels},
                "rules": [{
                    "apiGroups": [""], "resources": ["serviceaccounts"], "verbs": ["impersonate"],
                    "resourceNames": [account.name],
                }],
            }),
            binding("Role", Some(account.namespace)),
        ]
    });
    let impersonation: Vec<Value> = impersonation.collect();
    vec![
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}}),
        json!({
            "apiVersion": "v1", "kind": "ServiceAccount",
            "metadata": {"name": "spindle", "namespace": namespace, "labels": labels},
        }),
        json!({
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
            "metadata": {"name": "spindle-reconciler", "labels": labels},
            "rules": rules,
        }),
        json!({
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
            "metadata": {"name": "spindle-reconciler", "labels": labels},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "spindle-reconciler"},
            "subjects": [{"kind": "ServiceAccount", "name": "spindle", "namespace": namespace}],
        }),
        // Its inventory, status, Events and Lease live in its own namespace only.
        json!({
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
            "metadata": {"name": "spindle-state", "namespace": namespace, "labels": labels},
            "rules": [
                {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "create", "update"]},
                {"apiGroups": [""], "resources": ["events"], "verbs": ["create"]},
                {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["get", "create", "update"]},
            ],
        }),
        json!({
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
            "metadata": {"name": "spindle-state", "namespace": namespace, "labels": labels},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "spindle-state"},
            "subjects": [{"kind": "ServiceAccount", "name": "spindle", "namespace": namespace}],
        }),
        deployment(args, &labels, &image, policy.is_some()),
        json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "spindle", "namespace": namespace, "labels": labels},
            "spec": {
                "selector": labels,
                "ports": [{"name": "http", "port": 9090, "targetPort": "http", "protocol": "TCP"}],
            },
        }),
    ]
    .into_iter()
    .chain(impersonation)
    .chain(policy.map(|policy| {
        json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": NODE_POLICY, "namespace": namespace, "labels": labels},
            "data": {POLICY_KEY: policy},
        })
    }))
    .collect()
}

fn deployment(args: &InstallArgs, labels: &Value, image: &str, policy: bool) -> Value {
    let mut deployment = json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "spindle", "namespace": args.namespace, "labels": labels},
        "spec": {
            // Two replicas; only the one holding the Lease passes, the other takes over when it
            // stops renewing it.
            "replicas": 2,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "serviceAccountName": "spindle",
                    "securityContext": {"runAsNonRoot": true, "runAsUser": 65532, "fsGroup": 65532},
                    "containers": [{
                        "name": "reconciler",
                        "image": image,
                        "args": [
                            "reconcile",
                            "--repo", args.repo,
                            "--follow", args.follow,
                            "--env", args.env,
                            "--system-namespace", args.namespace,
                            "--listen", "0.0.0.0:9090",
                            "--log-format", "json",
                            "--leader-elect",
                        ],
                        "env": [
                            {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                            {"name": "SPINDLE_CACHE", "value": "/var/cache/spindle"},
                            {"name": "SPINDLE_CREDENTIALS_DIR", "value": format!("/etc/spindle/{CREDENTIALS}")},
                        ],
                        "ports": [{"name": "http", "containerPort": 9090, "protocol": "TCP"}],
                        "livenessProbe": {"httpGet": {"path": "/healthz", "port": "http"}},
                        "readinessProbe": {"httpGet": {"path": "/readyz", "port": "http"}},
                        "resources": {
                            "requests": {"cpu": "100m", "memory": "128Mi"},
                            "limits": {"memory": "1Gi"},
                        },
                        "securityContext": {
                            "allowPrivilegeEscalation": false,
                            "readOnlyRootFilesystem": true,
                            "capabilities": {"drop": ["ALL"]},
                        },
                        "volumeMounts": [
                            {"name": "cache", "mountPath": "/var/cache/spindle"},
                            {"name": "credentials", "mountPath": format!("/etc/spindle/{CREDENTIALS}"), "readOnly": true},
                        ],
                    }],
                    "volumes": [
                        {"name": "cache", "emptyDir": {}},
                        // Optional: a public repository without webhooks needs no Secret.
                        {"name": "credentials", "secret": {"secretName": CREDENTIALS, "optional": true}},
                    ],
                },
            },
        },
    });
    if let Some(account) = &args.service_account {
        let container = &mut deployment["spec"]["template"]["spec"]["containers"][0];
        let container_args = container["args"].as_array_mut().expect("args");
        container_args.extend([json!("--service-account"), json!(account)]);
    }
    if policy {
        let pod = &mut deployment["spec"]["template"]["spec"];
        let container = &mut pod["containers"][0];
        let args = container["args"].as_array_mut().expect("args");
        args.extend([
            json!("--node-policy"),
            json!(format!("/etc/spindle/{NODE_POLICY}/{POLICY_KEY}")),
        ]);
        container["volumeMounts"].as_array_mut().expect("mounts").push(json!(
            {"name": "node-policy", "mountPath": format!("/etc/spindle/{NODE_POLICY}"), "readOnly": true}
        ));
        pod["volumes"].as_array_mut().expect("volumes").push(json!(
            {"name": "node-policy", "configMap": {"name": NODE_POLICY}}
        ));
    }
    deployment
}

/// The resource name of a kind spindle renders.
fn plural(kind: &str) -> String {
    let lower = kind.to_ascii_lowercase();
    match lower.as_str() {
        "ingress" => "ingresses".to_owned(),
        "runtimeclass" => "runtimeclasses".to_owned(),
        _ => format!("{lower}s"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plurals_are_the_api_resource_names() {
        assert_eq!(plural("Deployment"), "deployments");
        assert_eq!(plural("Ingress"), "ingresses");
        assert_eq!(plural("RuntimeClass"), "runtimeclasses");
        assert_eq!(
            plural("HorizontalPodAutoscaler"),
            "horizontalpodautoscalers"
        );
        assert_eq!(plural("SpinAppExecutor"), "spinappexecutors");
    }

    #[test]
    fn service_accounts_are_namespace_and_name() {
        let account = Account::parse("team-a/deployer").unwrap();
        assert_eq!((account.namespace, account.name), ("team-a", "deployer"));
        assert_eq!(account.groups()[1], "system:serviceaccounts:team-a");
        for bad in [
            "deployer",
            "/deployer",
            "team-a/",
            "Team/x",
            "a/b/c",
            "-a/x",
            "a/x:y",
            "a/X",
        ] {
            assert!(Account::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_impersonation_roles_bind_the_reconciler_and_name_only_its_account() {
        let args = InstallArgs {
            print: true,
            repo: "https://git.example.com/r.git".into(),
            follow: "main".into(),
            env: "production".into(),
            namespace: "spindle-system".into(),
            image: None,
            node_policy: None,
            service_account: Some("team-a/deployer".into()),
        };
        let account = Account::parse("team-a/deployer").unwrap();
        let objects = manifests(&args, None, Some(&account));
        let ours: Vec<&Value> = objects
            .iter()
            .filter(|o| o["metadata"]["name"] == "spindle-impersonate-team-a-deployer")
            .collect();
        assert_eq!(ours.len(), 4);
        for object in &ours {
            if let Some(subjects) = object["subjects"].as_array() {
                assert_eq!(
                    subjects,
                    &[
                        json!({"kind": "ServiceAccount", "name": "spindle", "namespace": "spindle-system"})
                    ]
                );
            }
            for rule in object["rules"].as_array().into_iter().flatten() {
                assert!(
                    rule["resourceNames"]
                        .as_array()
                        .is_some_and(|n| !n.is_empty()),
                    "{rule}"
                );
            }
        }
        let none = manifests(
            &InstallArgs {
                service_account: None,
                ..args
            },
            None,
            None,
        );
        assert!(
            !serde_json::to_string(&none)
                .unwrap()
                .contains("impersonate"),
            "the shipped manifests impersonate no one"
        );
    }
}
