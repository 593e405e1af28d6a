//! `spindle up` on a Git copy of the example repository: from `git commit` of a changed variable
//! returning to the new value served (notify on the branch ref, evaluation, diff, preparing the
//! new version, the swap).

use std::time::Duration;

use report::{Section, time};
use test_support::{
    git,
    up::{Up, example_repository, live_within},
};

#[path = "support/report.rs"]
mod report;
#[path = "../tests/it/support/mod.rs"]
mod test_support;

const ROUNDS: u32 = 7;

fn main() {
    let dir = example_repository();
    let repo = dir.path();
    let up = Up::start(repo);
    let greeter = up.address("greeter");
    up.wait_for("ready: 3 app(s)");
    let production = repo.join("environments/production.ncl");
    let original = std::fs::read_to_string(&production).unwrap();
    let mut rounds: Vec<Duration> = (1..=ROUNDS)
        .map(|round| {
            let greeting = format!("Good evening {round}");
            std::fs::write(&production, original.replace("Good day", &greeting)).unwrap();
            git(repo, &["commit", "-qam", &greeting]);
            live_within(&greeter, &greeting, Duration::from_secs(30))
        })
        .collect();
    let shown = rounds
        .iter()
        .map(|d| format!("{:.0}", d.as_secs_f64() * 1000.0))
        .collect::<Vec<_>>()
        .join(" ");
    rounds.sort();
    let mut section = Section::new(
        "up",
        "`spindle up`",
        "cargo bench --bench up",
        "`spindle up` following a Git copy of the example repository (3 apps); each round commits \
         a new value of one app's variable and polls that app until it serves it.",
    );
    section.table(
        ["step", "median", "rounds (ms)"],
        &[[
            "`git commit` of a variable change to the new value served".to_owned(),
            time(rounds[rounds.len() / 2]),
            shown,
        ]],
    );
    section.write();
}
