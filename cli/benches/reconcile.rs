//! Reconcile passes of a 1,000-app repository against the test apiserver: the first full apply,
//! a no-op pass (nothing changed), and a pass after one app's variable changed.
//!
//! Needs the test apiserver (`scripts/benchmarks` starts it). Each pass includes evaluating and
//! rendering the repository, reading the inventory, the drift check (a list per kind), the
//! applies, and one health check (the test cluster runs no pods, so nothing waits for them).

use std::time::{Duration, Instant};

use spindle_config::evaluate::{Evaluator, Limits};
use spindle_config::snapshot::Snapshot;
use spindle_reconciler::reconcile::{Reconciler, Settings};
use support::{
    ENTRY,
    report::{Section, time, verdict},
    repository_variant,
};

mod support;

const APPS: usize = 1000;

fn main() {
    // SPINDLE_LOG=spindle_reconciler::reconcile=debug shows each pass's phases.
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("SPINDLE_LOG")
                .unwrap_or_else(|_| "warn".into()),
        )
        .init();
    let id = format!(
        "bench-{:x}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
    );
    let snapshot = |variant: u32| in_namespace(&repository_variant(APPS, variant), &id);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let client = kube::Client::try_default()
            .await
            .expect("KUBECONFIG names the test apiserver");
        let kube_version = client
            .apiserver_version()
            .await
            .expect("the apiserver's /version")
            .git_version;
        let cache = std::env::temp_dir().join("spindle-bench-cache");
        let evaluator = Evaluator::new(Some(cache), Limits::default()).expect("evaluator");
        let settings = Settings {
            instance: Some(id.clone()),
            health_timeout: Duration::ZERO,
            source: "bench".to_owned(),
            ..Settings::default()
        };
        let mut reconciler = Reconciler::new(client.clone(), evaluator, settings)
            .await
            .unwrap();
        let first = snapshot(0);
        let (first_apply, outcome) = timed(reconciler.pass(&commit(0), &first)).await;
        let sent = outcome.sent.len();
        let mut noops = Vec::new();
        for _ in 0..5 {
            let (took, outcome) = timed(reconciler.pass(&commit(0), &first)).await;
            assert!(outcome.sent.is_empty(), "a no-op sends nothing");
            noops.push(took);
        }
        noops.sort();
        let unchanged = outcome_unchanged(&mut reconciler, &first).await;
        let mut changes = Vec::new();
        for variant in 1..=5 {
            let changed = snapshot(variant);
            let (took, outcome) = timed(reconciler.pass(&commit(variant), &changed)).await;
            assert_eq!(
                outcome.sent.len(),
                1,
                "one Deployment changes: {:?}",
                outcome.sent
            );
            changes.push(took);
        }
        changes.sort();
        let (noop, change) = (noops[2], changes[2]);
        let mut section = Section::new(
            "reconcile",
            "Reconcile",
            "cargo bench --bench reconcile",
            &format!(
                "Against the test kube-apiserver {kube_version} + etcd + controller-manager on \
                 the same cores. The generated 1,000-app repository renders to {sent} objects \
                 (Deployments, Services, Ingresses, PodDisruptionBudgets, a Namespace, a \
                 RuntimeClass). Each pass includes evaluation (unless the commit was already \
                 evaluated), rendering, reading the inventory, one list per kind for drift, the \
                 applies, and one health check (the test cluster runs no pods, so nothing waits \
                 for rollouts). Medians of 5."
            ),
        );
        section.table(
            ["pass", "time", "target"],
            &[
                [
                    format!("first apply of {APPS} apps ({sent} objects sent, 16 in flight)"),
                    time(first_apply),
                    "—".to_owned(),
                ],
                [
                    format!(
                        "no-op (same commit, the interval's drift check; {unchanged} objects \
                         unchanged, nothing sent)"
                    ),
                    time(noop),
                    format!("under 1 s: {}", verdict(noop, Duration::from_secs(1))),
                ],
                [
                    "one app's variable changed (new commit: evaluated, 1 Deployment sent, \
                     inventory and status written)"
                        .to_owned(),
                    time(change),
                    format!("under 2 s: {}", verdict(change, Duration::from_secs(2))),
                ],
            ],
        );
        section.note(format!(
            "Flux's published figure: 25 s for one Kustomization of 1,500 objects, 60 objects/s. \
             spindle's first apply here: {sent} objects in {}, {:.0} objects/s.",
            time(first_apply),
            sent as f64 / first_apply.as_secs_f64()
        ));
        section.write();
        // The namespace goes with everything in it; the RuntimeClass is this run's instance's
        // too, and the next run (another instance) may not take it over.
        let namespaces: kube::Api<k8s_openapi::api::core::v1::Namespace> =
            kube::Api::all(client.clone());
        namespaces.delete(&id, &Default::default()).await.unwrap();
        let classes: kube::Api<k8s_openapi::api::node::v1::RuntimeClass> =
            kube::Api::all(client.clone());
        classes.delete("spin", &Default::default()).await.unwrap();
        let maps: kube::Api<k8s_openapi::api::core::v1::ConfigMap> =
            kube::Api::namespaced(client, "spindle-system");
        for state in ["inventory", "status"] {
            maps.delete(&format!("spindle-{state}-{id}"), &Default::default())
                .await
                .unwrap();
        }
    });
}

async fn outcome_unchanged(reconciler: &mut Reconciler, snapshot: &Snapshot) -> usize {
    reconciler
        .pass(&commit(0), snapshot)
        .await
        .unwrap()
        .unchanged
}

async fn timed<T>(pass: impl Future<Output = anyhow::Result<T>>) -> (Duration, T) {
    let start = Instant::now();
    let outcome = pass.await.expect("the pass runs");
    (start.elapsed(), outcome)
}

fn commit(variant: u32) -> String {
    format!("{variant:040x}")
}

/// The repository with every app in `namespace`.
fn in_namespace(snapshot: &Snapshot, namespace: &str) -> Snapshot {
    let apps = snapshot.text("apps.ncl").unwrap().replace(
        "{ image =",
        &format!("{{ namespace = \"{namespace}\", image ="),
    );
    Snapshot::from_files(
        "bench",
        [
            ("apps.ncl".to_owned(), apps),
            (ENTRY.to_owned(), snapshot.text(ENTRY).unwrap().to_owned()),
        ],
    )
}
