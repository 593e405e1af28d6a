//! `--build`: running a Spin app's build commands (`[component.build]`), as `spin build` does.

use anyhow::{Context as _, Result, bail};
use spindle_runtime::App;

/// Runs every component's build commands, in manifest order, stopping at the first failure.
pub fn build(app: &App) -> Result<()> {
    for (id, component) in &app.components {
        let Some((commands, workdir)) = &component.build else {
            continue;
        };
        for command in commands {
            eprintln!("building {id}: {command}");
            let status = std::process::Command::new("sh")
                .args(["-c", command])
                .current_dir(workdir)
                .status()
                .with_context(|| format!("cannot run `{command}`"))?;
            if !status.success() {
                bail!("building component `{id}` failed: `{command}` exited with {status}");
            }
        }
    }
    Ok(())
}
