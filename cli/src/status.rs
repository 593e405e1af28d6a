//! `spindle status`: what each reconciler in the cluster last did, from its status ConfigMap.

use anyhow::Result;
use clap::Args;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, ListParams};

use super::exit;
use spindle_reconciler::cluster;
use spindle_reconciler::reconcile::{
    short,
    status::{self, Status},
};
use spindle_render::MANAGER;

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Only this reconciler instance.
    #[arg(long, value_name = "NAME")]
    instance: Option<String>,
    /// Namespace of spindle's inventory and status.
    #[arg(long, default_value = "spindle-system", value_name = "NAMESPACE")]
    system_namespace: String,
    /// `table` for people, `json` for machines.
    #[arg(long, short = 'o', value_enum, default_value = "table")]
    output: Output,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Output {
    Table,
    Json,
}

pub fn status(args: &StatusArgs) -> Result<i32> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let statuses = runtime.block_on(async {
        let client = cluster::client().await?;
        let maps: Api<ConfigMap> = Api::namespaced(client, &args.system_namespace);
        let names: Vec<String> = match &args.instance {
            Some(instance) => vec![status::status_name(instance)],
            None => maps
                .list(
                    &ListParams::default()
                        .labels(&format!("app.kubernetes.io/managed-by={MANAGER}")),
                )
                .await?
                .items
                .into_iter()
                .filter_map(|map| map.metadata.name)
                .filter(|name| name.starts_with("spindle-status-"))
                .collect(),
        };
        let mut statuses = Vec::new();
        for name in names {
            if let Some(status) = status::read(&maps, &name).await? {
                statuses.push(status);
            }
        }
        anyhow::Ok(statuses)
    })?;
    if statuses.is_empty() {
        eprintln!(
            "no reconciler has reported in namespace {}{}",
            args.system_namespace,
            args.instance
                .as_ref()
                .map(|i| format!(" under the name {i}"))
                .unwrap_or_default()
        );
        return Ok(exit::INVALID);
    }
    match args.output {
        Output::Json => println!("{}", serde_json::to_string_pretty(&statuses)?),
        Output::Table => print!("{}", table(&statuses)),
    }
    let all_ready = statuses
        .iter()
        .all(|s| s.condition("Ready").is_some_and(|c| c.status == "True"));
    Ok(if all_ready { exit::OK } else { exit::INVALID })
}

/// The statuses as aligned text: one line per reconciler, its apps below it, then why it is not
/// ready.
fn table(statuses: &[Status]) -> String {
    let mut rows = vec![
        [
            "INSTANCE",
            "ENVIRONMENT",
            "READY",
            "REASON",
            "APPLIED",
            "ATTEMPTED",
            "LEADER",
        ]
        .map(str::to_owned),
    ];
    for status in statuses {
        let ready = status.condition("Ready");
        rows.push([
            status.instance.clone(),
            status.environment.clone(),
            ready.map_or("Unknown", |c| c.status.as_str()).to_owned(),
            ready.map_or("", |c| c.reason.as_str()).to_owned(),
            status
                .last_applied_revision
                .as_deref()
                .map_or("-", short)
                .to_owned(),
            status
                .last_attempted_revision
                .as_deref()
                .map_or("-", short)
                .to_owned(),
            // The Lease's holder: whoever may write the Lease chose it.
            status
                .leader
                .as_deref()
                .map_or_else(|| "-".to_owned(), spindle_render::diff::format::inert),
        ]);
    }
    let mut out = align(&rows);
    for status in statuses {
        if !status.apps.is_empty() {
            let mut apps = vec![["APP", "STATE", "REASON"].map(str::to_owned)];
            for (name, health) in &status.apps {
                apps.push([name.clone(), health.state.clone(), health.reason.clone()]);
            }
            out.push_str(&format!("\n{}:\n", status.instance));
            out.push_str(&align(&apps));
        }
        if let Some(ready) = status.condition("Ready")
            && ready.status != "True"
            && !ready.message.is_empty()
        {
            out.push_str(&format!(
                "\n{} is not ready: {}\n",
                status.instance, ready.message
            ));
        }
    }
    out
}

fn align<const N: usize>(rows: &[[String; N]]) -> String {
    let widths: Vec<usize> = (0..N)
        .map(|i| {
            rows.iter()
                .map(|row| row[i].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in rows {
        let cells: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_lines_up_and_says_why_not_ready() {
        let mut status = Status {
            instance: "prod".into(),
            environment: "production".into(),
            last_applied_revision: Some("0123456789abcdef".into()),
            last_attempted_revision: Some("fedcba9876543210".into()),
            leader: Some("spindle-7c9f-x2".into()),
            ..Status::default()
        };
        status.set(
            "Ready",
            false,
            "ValidationFailed",
            "environments/prod.ncl:3:5: bad",
        );
        let text = table(&[status]);
        assert!(text.starts_with("INSTANCE  ENVIRONMENT  READY  REASON            APPLIED       ATTEMPTED     LEADER\nprod      production   False  ValidationFailed  0123456789ab  fedcba987654  spindle-7c9f-x2\n"), "{text}");
        assert!(text.contains("prod is not ready: environments/prod.ncl:3:5: bad"));
    }
}
