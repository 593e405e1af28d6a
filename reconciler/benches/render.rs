//! Render time for generated repositories of 10, 100 and 1,000 apps.
//!
//! `cargo bench -p spindle --bench render --profile dev` prints, per size, the median and fastest
//! time of the whole path a reconcile takes before talking to a cluster (evaluate, validate,
//! render, write YAML), and of rendering alone.

use spindle::{
    evaluate::{Evaluator, Limits},
    render::{self, Options},
    spec, yaml,
};
use support::{median_and_fastest, repository};

mod support;

fn main() {
    let cache = std::env::temp_dir().join("spindle-bench-cache");
    let evaluator = Evaluator::new(Some(cache), Limits::default()).expect("evaluator");
    let options = Options {
        revision: Some("0123456789abcdef0123456789abcdef01234567".to_owned()),
        ..Options::new("production")
    };
    println!(
        "{:>6}  {:>8}  {:>26}  {:>22}",
        "apps", "objects", "evaluate+render+YAML median", "render only median"
    );
    for apps in [10, 100, 1000] {
        let snapshot = repository(apps);
        let mut objects = 0;
        let runs = if apps >= 1000 { 7 } else { 15 };
        let (whole, _) = median_and_fastest(runs, || {
            let loaded = spec::load(&evaluator, &snapshot, None).expect("valid repository");
            let rendered = render::render(&loaded.platform, &options).expect("renders");
            let bytes: usize = rendered
                .iter()
                .map(|object| yaml::to_string(object.value()).len())
                .sum();
            assert!(bytes > 0);
            objects = rendered.len();
        });
        let loaded = spec::load(&evaluator, &snapshot, None).expect("valid repository");
        let (alone, _) = median_and_fastest(runs, || {
            render::render(&loaded.platform, &options).expect("renders");
        });
        println!("{apps:>6}  {objects:>8}  {whole:>26.1?}  {alone:>22.1?}");
    }
}
