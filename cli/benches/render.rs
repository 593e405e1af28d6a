//! Render time for generated repositories of 10, 100 and 1,000 apps: the whole path a reconcile
//! takes before talking to a cluster (evaluate, validate, render, write YAML), and rendering alone.

use std::time::Duration;

use spindle_config::evaluate::{Evaluator, Limits};
use spindle_config::spec;
use spindle_reconciler::pipeline;
use spindle_render::Target;
use spindle_render::yaml;
use support::{
    median_and_fastest,
    report::{Section, time, verdict},
    repository,
};

mod support;

fn main() {
    let cache = std::env::temp_dir().join("spindle-bench-cache");
    let evaluator = Evaluator::new(Some(cache), Limits::default()).expect("evaluator");
    let target = Target {
        revision: Some("0123456789abcdef0123456789abcdef01234567".to_owned()),
        ..Target::default()
    };
    let mut rows = Vec::new();
    let mut whole_1000 = Duration::ZERO;
    for apps in [10, 100, 1000] {
        let snapshot = repository(apps);
        let mut objects = 0;
        let runs = if apps >= 1000 { 7 } else { 15 };
        let (whole, _) = median_and_fastest(runs, || {
            let rendered = pipeline::build(&evaluator, &snapshot, None, &target)
                .expect("valid repository")
                .objects;
            let bytes: usize = rendered
                .iter()
                .map(|object| yaml::to_string(object.value()).len())
                .sum();
            assert!(bytes > 0);
            objects = rendered.len();
        });
        let loaded = spec::load(&evaluator, &snapshot, None).expect("valid repository");
        let (alone, _) = median_and_fastest(runs, || {
            pipeline::render(&loaded, &snapshot, &target).expect("renders");
        });
        whole_1000 = whole;
        rows.push([
            apps.to_string(),
            objects.to_string(),
            time(whole),
            time(alone),
        ]);
    }
    let mut section = Section::new(
        "render",
        "Render",
        "cargo bench --bench render",
        "The same generated repositories, rendered for the newest Kubernetes (Deployment, \
         Service, Ingress, PodDisruptionBudget for apps with 2+ replicas, Namespace, \
         RuntimeClass), then written as YAML. Medians.",
    );
    section.table(
        [
            "apps",
            "objects",
            "evaluate + validate + render + YAML",
            "render alone",
        ],
        &rows,
    );
    section.note(format!(
        "Target for 1,000 apps rendered, evaluation included (under 1 s): {}, {}.",
        verdict(whole_1000, Duration::from_secs(1)),
        time(whole_1000)
    ));
    section.write();
}
