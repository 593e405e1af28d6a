//! One container: the app is unpacked from the image's layers (or read from `/spin.toml` in the
//! container's files), prepared, and served until SIGTERM, which lets in-flight requests finish.
//! Everything the app has to say, including why it cannot start, goes to the container's own
//! stdout and stderr, where `kubectl logs` and `ctr` show it.

use std::{path::Path, time::Instant};

use anyhow::{Context as _, Result};
use containerd_shim_wasm::sandbox::{
    Sandbox,
    context::{RuntimeContext, Source, WasmLayer},
};
use spindle_runtime::{App, artifact, server};

use crate::pod;

/// Exit status when the app cannot start.
const CANNOT_START: i32 = 1;

#[derive(Default)]
pub struct SpindleSandbox;

impl Sandbox for SpindleSandbox {
    async fn run_wasi(&self, ctx: &impl RuntimeContext) -> Result<i32> {
        let envs = ctx.envs().to_vec();
        let layers = match ctx.entrypoint().source {
            Source::Oci(layers) => Some(layers.to_vec()),
            Source::File(_) => None,
        };
        // On a thread and a runtime of its own: this process was forked from the shim, whose
        // runtime's worker threads did not come along.
        let code = std::thread::Builder::new()
            .name("spindle-app".into())
            .spawn(move || run(&envs, layers.as_deref()))?
            .join()
            .unwrap_or(CANNOT_START);
        Ok(code)
    }

    /// Any container: what it holds is checked when it runs, where the error reaches its log.
    async fn can_handle(&self, _ctx: &impl RuntimeContext) -> Result<()> {
        Ok(())
    }
}

fn run(envs: &[String], layers: Option<&[WasmLayer]>) -> i32 {
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .try_init();
    match serve(envs, layers) {
        Ok(status) => status,
        Err(err) => {
            eprintln!("spindle: the app cannot start: {err:#}");
            CANNOT_START
        }
    }
}

/// Serves the app (or runs it, for a command app); the container's exit status.
fn serve(envs: &[String], layers: Option<&[WasmLayer]>) -> Result<i32> {
    let started = Instant::now();
    let runtime_config = Path::new(pod::RUNTIME_CONFIG);
    let pod = pod::from_env(
        envs,
        runtime_config
            .exists()
            .then(|| runtime_config.to_path_buf()),
    )?;
    let app = match layers {
        Some(layers) => unpack(layers)?,
        None => App::load(Path::new("/spin.toml")).context(
            "containerd handed over no Wasm layers and the image's files have no /spin.toml \
             (for a Spin artifact, containerd's log says why the layers were not read: with \
             runwasi 1.0.1, another container compiling on this node at the same moment; the \
             next start succeeds)",
        )?,
    };
    let precompiled = app.components.values().filter(|c| c.precompiled).count();
    let tokio = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let (name, components) = (app.name.clone(), app.components.len());
    let status = tokio.block_on(server::run(
        app,
        pod.options,
        pod.listen,
        |key| pod::var(envs, key),
        |_, address| {
            tracing::info!(
                app = %name,
                components,
                precompiled,
                "serving on http://{address} (ready {} ms after start)",
                started.elapsed().as_millis()
            );
        },
    ))?;
    tracing::info!(status, "stopped: in-flight requests and messages finished");
    Ok(status)
}

/// Writes the layers' app into a folder of the container's own files.
fn unpack(layers: &[WasmLayer]) -> Result<App> {
    let layers: Vec<artifact::Layer> = layers
        .iter()
        .map(|layer| artifact::Layer {
            media_type: layer.config.media_type().as_ref(),
            digest: layer.config.digest().as_ref(),
            bytes: &layer.layer,
            precompiled: layer.precompiled,
        })
        .collect();
    let dir = std::env::temp_dir().join("spindle-app");
    Ok(artifact::unpack(&layers, &dir)?)
}
