//! Connecting to the cluster of the current kubeconfig (or the one spindle runs in).

use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use kube::{
    api::{ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams},
    discovery::Scope,
};

use spindle_render::{KubeVersion, MANAGER, Node, Object};

/// Whether a cluster is configured: `KUBECONFIG`, `~/.kube/config`, or running in a pod.
pub fn configured() -> bool {
    std::env::var_os("KUBECONFIG").is_some_and(|path| !path.is_empty())
        || std::env::var_os("KUBERNETES_SERVICE_HOST").is_some()
        || std::env::var_os("HOME")
            .is_some_and(|home| std::path::Path::new(&home).join(".kube/config").is_file())
}

/// A client for the configured cluster.
pub async fn client() -> Result<kube::Client> {
    kube::Client::try_default()
        .await
        .context("could not configure a Kubernetes client from the kubeconfig")
}

/// A client for the configured cluster that acts as ServiceAccount `account` (`NAMESPACE/NAME`):
/// every request carries Kubernetes' impersonation headers, so the account's RBAC bounds it.
pub async fn client_as(account: &str) -> Result<kube::Client> {
    let (namespace, name) = account
        .split_once('/')
        .filter(|(namespace, name)| !namespace.is_empty() && !name.is_empty())
        .with_context(|| format!("`{account}`: give the ServiceAccount as NAMESPACE/NAME"))?;
    let mut config = kube::Config::infer()
        .await
        .context("could not configure a Kubernetes client from the kubeconfig")?;
    config.auth_info.impersonate = Some(format!("system:serviceaccount:{namespace}:{name}"));
    // The groups Kubernetes gives a ServiceAccount's own token: RBAC bound to them (discovery,
    // say) applies as it would.
    config.auth_info.impersonate_groups = Some(vec![
        "system:serviceaccounts".to_owned(),
        format!("system:serviceaccounts:{namespace}"),
        "system:authenticated".to_owned(),
    ]);
    kube::Client::try_from(config).context("could not build a Kubernetes client")
}

/// The cluster's Kubernetes version, asked within `timeout`.
pub async fn version(client: &kube::Client, timeout: Duration) -> Result<KubeVersion> {
    let info = tokio::time::timeout(timeout, client.apiserver_version())
        .await
        .context("the cluster did not answer")?
        .context("could not ask the cluster for its version")?;
    KubeVersion::from_server(&info.major, &info.minor).map_err(anyhow::Error::msg)
}

/// The cluster's nodes, sorted by name.
pub async fn nodes(client: kube::Client) -> Result<Vec<Node>> {
    use k8s_openapi::api::core::v1::Node as KubeNode;
    let api: kube::Api<KubeNode> = kube::Api::all(client);
    let list = api
        .list(&Default::default())
        .await
        .context("could not list the cluster's nodes")?;
    let mut nodes: Vec<Node> = list
        .items
        .into_iter()
        .map(|node| Node {
            name: node.metadata.name.unwrap_or_default(),
            labels: node.metadata.labels.unwrap_or_default(),
            annotations: node.metadata.annotations.unwrap_or_default(),
        })
        .collect();
    nodes.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(nodes)
}

/// A connection to a cluster that knows which resources it serves.
pub struct Cluster {
    client: kube::Client,
    discovery: kube::Discovery,
}

impl Cluster {
    /// Discovers the resources that `client`'s cluster serves.
    pub async fn connect(client: kube::Client) -> Result<Self> {
        let discovery = kube::Discovery::new(client.clone())
            .run()
            .await
            .context("could not discover the cluster's resources")?;
        Ok(Cluster { client, discovery })
    }

    /// The client the cluster was connected with.
    pub fn client(&self) -> &kube::Client {
        &self.client
    }

    /// The API of `object`'s resource, in its namespace when it is namespaced.
    pub fn api(&self, object: &Object) -> Result<kube::Api<DynamicObject>> {
        let (resource, scope) = self.resolve(object)?;
        Ok(match (scope, object.namespace()) {
            (Scope::Namespaced, Some(namespace)) => {
                kube::Api::namespaced_with(self.client.clone(), namespace, &resource)
            }
            (Scope::Namespaced, None) => bail!("{} needs a namespace", object.display_name()),
            (Scope::Cluster, _) => kube::Api::all_with(self.client.clone(), &resource),
        })
    }

    /// The API of `object`'s resource across all namespaces, for listing.
    pub fn api_all(&self, object: &Object) -> Result<kube::Api<DynamicObject>> {
        let (resource, _) = self.resolve(object)?;
        Ok(kube::Api::all_with(self.client.clone(), &resource))
    }

    fn resolve(&self, object: &Object) -> Result<(ApiResource, Scope)> {
        let (group, version) = match object.api_version().split_once('/') {
            Some((group, version)) => (group, version),
            None => ("", object.api_version()),
        };
        let gvk = GroupVersionKind::gvk(group, version, object.kind());
        let (resource, capabilities) = self.discovery.resolve_gvk(&gvk).with_context(|| {
            format!(
                "the cluster does not serve {} {} (an API version of another Kubernetes release, \
                 or a CustomResourceDefinition that is not installed)",
                object.api_version(),
                object.kind()
            )
        })?;
        Ok((resource, capabilities.scope))
    }

    /// Every object in `namespace`, of every namespaced resource the cluster serves (each with
    /// its `apiVersion` and `kind`), and the resources spindle may not list there.
    pub async fn objects_in(
        &self,
        namespace: &str,
    ) -> Result<(Vec<serde_json::Value>, Vec<String>)> {
        let mut found = Vec::new();
        let mut unlisted = Vec::new();
        for group in self.discovery.groups() {
            for (resource, capabilities) in group.recommended_resources() {
                if capabilities.scope != Scope::Namespaced
                    || !capabilities.supports_operation("list")
                {
                    continue;
                }
                let api: kube::Api<DynamicObject> =
                    kube::Api::namespaced_with(self.client.clone(), namespace, &resource);
                let params = kube::api::ListParams::default();
                let list = match retry(&resource.plural, || api.list(&params)).await {
                    Ok(list) => list,
                    Err(kube::Error::Api(status)) if status.code == 403 => {
                        unlisted.push(resource.plural.clone());
                        continue;
                    }
                    // Gone since discovery, or not listable after all.
                    Err(kube::Error::Api(status)) if (404..=405).contains(&status.code) => {
                        continue;
                    }
                    Err(err) => return Err(readable(err, &resource.plural, "list")),
                };
                for item in list.items {
                    let mut value = serde_json::to_value(item)?;
                    value["apiVersion"] = serde_json::Value::from(resource.api_version.clone());
                    value["kind"] = serde_json::Value::from(resource.kind.clone());
                    found.push(value);
                }
            }
        }
        Ok((found, unlisted))
    }

    /// What the client may not do to `objects`: for each resource and namespace among them, the
    /// `verbs` it lacks, asked of the apiserver (SelfSubjectAccessReview). One line each.
    pub async fn forbidden(&self, objects: &[&Object], verbs: &[&str]) -> Result<Vec<String>> {
        use k8s_openapi::api::authorization::v1::{
            ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec,
        };
        let mut asked = std::collections::BTreeSet::new();
        let reviews: kube::Api<SelfSubjectAccessReview> = kube::Api::all(self.client.clone());
        let params = kube::api::PostParams::default();
        let mut denied = Vec::new();
        for object in objects {
            let Ok((resource, _)) = self.resolve(object) else {
                continue;
            };
            let namespace = object.namespace().map(str::to_owned);
            for &verb in verbs {
                let key = (
                    resource.group.clone(),
                    resource.plural.clone(),
                    namespace.clone(),
                    verb,
                );
                if !asked.insert(key) {
                    continue;
                }
                let review = SelfSubjectAccessReview {
                    spec: SelfSubjectAccessReviewSpec {
                        resource_attributes: Some(ResourceAttributes {
                            group: Some(resource.group.clone()),
                            resource: Some(resource.plural.clone()),
                            namespace: namespace.clone(),
                            verb: Some(verb.to_owned()),
                            ..ResourceAttributes::default()
                        }),
                        ..SelfSubjectAccessReviewSpec::default()
                    },
                    ..SelfSubjectAccessReview::default()
                };
                let answer = retry("an access review", || reviews.create(&params, &review))
                    .await
                    .map_err(|err| readable(err, "an access review", "create"))?;
                if !answer.status.is_some_and(|status| status.allowed) {
                    let plural = match resource.group.as_str() {
                        "" => resource.plural.clone(),
                        group => format!("{}.{group}", resource.plural),
                    };
                    denied.push(match &namespace {
                        Some(namespace) => format!("{verb} {plural} in namespace {namespace}"),
                        None => format!("{verb} {plural} (cluster-wide)"),
                    });
                }
            }
        }
        Ok(denied)
    }

    /// Server-side applies `object` as spindle's field manager (only validated with `dry_run`),
    /// returning the object as the server stores (or would store) it.
    pub async fn apply(&self, object: &Object, dry_run: bool) -> Result<DynamicObject> {
        let mut params = PatchParams::apply(MANAGER).force();
        params.dry_run = dry_run;
        let api = self.api(object)?;
        let patch = Patch::Apply(object.value());
        retry(&object.display_name(), || {
            api.patch(object.name(), &params, &patch)
        })
        .await
        .map_err(|err| readable(err, &object.display_name(), "apply"))
    }
}

/// Makes Namespace `name` if it is missing (server-side applied as spindle's field manager).
/// Needs no discovery: the Lease's first round calls it before any pass has connected.
pub async fn ensure_namespace(client: &kube::Client, name: &str) -> Result<()> {
    use k8s_openapi::api::core::v1::Namespace;
    let api: kube::Api<Namespace> = kube::Api::all(client.clone());
    let namespace =
        serde_json::json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}});
    let patch = Patch::Apply(&namespace);
    let params = PatchParams::apply(MANAGER).force();
    let what = format!("Namespace {name}");
    retry(&what, || api.patch(name, &params, &patch))
        .await
        .map_err(|err| readable(err, &what, "apply"))?;
    Ok(())
}

/// `err` as one line for people: `could not VERB WHAT: REASON: MESSAGE` for the apiserver's
/// answers (not the debug dump of its Status), with a hint where one helps.
pub fn readable(err: kube::Error, what: &str, verb: &str) -> anyhow::Error {
    match err {
        kube::Error::Api(status) => {
            let hint = match status.code {
                403 => {
                    " (the reconciler's ServiceAccount lacks this permission: see docs/reconciler.md)"
                }
                422 if status.message.contains("field is immutable") => {
                    " (a field that cannot change differs: delete the object, or rename it in the repository)"
                }
                _ => "",
            };
            anyhow::anyhow!(
                "could not {verb} {what}: {} ({}): {}{hint}",
                status.reason,
                status.code,
                status.message
            )
        }
        other => anyhow::Error::new(other).context(format!("could not {verb} {what}")),
    }
}

/// Attempts per request when the apiserver is unavailable or throttles.
const ATTEMPTS: u32 = 5;

/// Runs `request` until it succeeds, fails for good, or `ATTEMPTS` run out; waits 0.2 s, 0.4 s,
/// ... between attempts.
pub async fn retry<T, F, Fut>(what: &str, mut request: F) -> Result<T, kube::Error>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, kube::Error>>,
{
    let mut delay = Duration::from_millis(200);
    let mut attempt = 1;
    loop {
        match request().await {
            Err(err) if attempt < ATTEMPTS && is_transient(&err) => {
                tracing::warn!("{what}: {err}; retrying in {delay:?}");
                tokio::time::sleep(delay).await;
                delay *= 2;
                attempt += 1;
            }
            other => return other,
        }
    }
}

/// Errors worth another attempt: the apiserver is busy, restarting or unreachable.
fn is_transient(err: &kube::Error) -> bool {
    match err {
        kube::Error::Api(status) => matches!(status.code, 429 | 500 | 502 | 503 | 504),
        kube::Error::HyperError(_) | kube::Error::Service(_) => true,
        _ => false,
    }
}
