//! A Spin app prepared to serve: one engine, every component compiled (or loaded from the compile
//! cache) and pre-instantiated once, stores opened, variables resolved. Each request then gets a
//! fresh instance (Spin's isolation model) with its own deadline and memory cap.

use std::{
    collections::BTreeMap,
    path::PathBuf,
    sync::Arc,
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result, bail};
use wasmtime::{
    Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store, StoreLimits,
    StoreLimitsBuilder, UpdateDeadline,
    component::{Linker, ResourceTable},
};
use wasmtime_wasi::{FsPerms, WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use crate::{
    allow_list::AllowList,
    app::App,
    compile_cache,
    cpu_share::CpuShare,
    epoch::Ticker,
    guest_log::GuestLog,
    handler::Handler,
    host::{self, ComponentHost, SpinView},
    outbound::{Outbound, SelfRequests},
    stores::{RuntimeConfig, StateDir, Stores},
    telemetry::Tracer,
    trigger::{Health, Trigger},
    variables::{self, EnvProvider, Provider},
};

/// How often the engine's epoch advances: the granularity of deadlines and of yielding.
const EPOCH_TICK: Duration = Duration::from_millis(10);

/// How an app is run.
#[derive(Debug, Clone)]
pub struct Options {
    /// Where `default` stores live.
    pub state: StateDir,
    /// Spin's `runtime-config.toml`.
    pub runtime_config: Option<PathBuf>,
    /// Values for application variables, before `SPIN_VARIABLE_*` and the defaults.
    pub variables: BTreeMap<String, String>,
    /// Read `SPIN_VARIABLE_*` from the process environment (as SpinKube sets them).
    pub variables_from_env: bool,
    /// Environment variables given to every component, besides their manifest's.
    pub environment: Vec<(String, String)>,
    /// Serve only these components (SpinKube's `SPIN_COMPONENTS_TO_RETAIN`).
    pub retain: Option<Vec<String>>,
    /// Memory one component instance may use, in bytes.
    pub instance_memory: u64,
    /// How long one request may run.
    pub request_timeout: Duration,
    /// Where compiled components are cached.
    pub cache_dir: Option<PathBuf>,
    /// Where request spans go, when traces are exported.
    pub tracer: Option<Tracer>,
    /// Requests the app answers at once; beyond, 503 with `Retry-After`. The instance pool is
    /// shared by every app of a process (1,000 instances): this keeps one app's flood from
    /// taking all of it.
    pub max_in_flight: usize,
    /// The app's share of the process's cores ([`CpuShare`]): unlimited by default. `spindle
    /// up`, which serves many apps in one process, gives each app one, kept by each new version
    /// of the app (a clone shares its slots).
    pub cpu_share: CpuShare,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            state: StateDir::Ephemeral,
            runtime_config: None,
            variables: BTreeMap::new(),
            variables_from_env: true,
            environment: Vec::new(),
            retain: None,
            instance_memory: 256 << 20,
            request_timeout: Duration::from_secs(30),
            cache_dir: None,
            tracer: None,
            max_in_flight: 250,
            cpu_share: CpuShare::default(),
        }
    }
}

/// One component, ready for requests or messages.
pub struct Prepared {
    /// Its entry point, for the trigger that runs it.
    pub(crate) handler: Handler,
    host: Arc<ComponentHost>,
    environment: Vec<(String, String)>,
    /// The component's `files`, assembled read-only under one folder.
    files: Option<tempfile::TempDir>,
    /// Whether `allowed_outbound_hosts` may let it use TCP and UDP sockets, decided once.
    sockets: Sockets,
}

/// Which socket protocols a component's `allowed_outbound_hosts` may allow.
#[derive(Debug, Clone, Copy)]
struct Sockets {
    tcp: bool,
    udp: bool,
}

/// An app ready to serve.
pub struct Runtime {
    /// The app being served.
    pub app: App,
    engine: ServingEngine,
    pub(crate) components: BTreeMap<String, Prepared>,
    /// Room for the requests answered at once ([`Options::max_in_flight`]).
    pub(crate) in_flight: tokio::sync::Semaphore,
    /// The app's triggers other than HTTP, with their templates rendered.
    pub(crate) triggers: Vec<Trigger>,
    /// Whether those triggers are receiving, and what they handled.
    pub health: Health,
    options: Options,
}

/// A wasmtime engine for serving, with the thread that advances its epoch; shared by every app
/// of a process (one pool of instances, one compile configuration).
#[derive(Clone)]
pub struct ServingEngine(Arc<EngineInner>);

struct EngineInner {
    engine: Engine,
    _ticker: Ticker,
}

impl ServingEngine {
    /// An engine whose instances may each use `instance_memory` bytes.
    pub fn new(instance_memory: u64) -> Result<Self> {
        let engine = engine(instance_memory)?;
        let ticker = Ticker::start(&engine, EPOCH_TICK)?;
        Ok(ServingEngine(Arc::new(EngineInner {
            engine,
            _ticker: ticker,
        })))
    }

    /// The underlying wasmtime engine.
    pub fn engine(&self) -> &Engine {
        &self.0.engine
    }
}

/// The state of one request's store.
pub struct State {
    wasi: WasiCtx,
    http: WasiHttpCtx,
    table: ResourceTable,
    outbound: Outbound,
    host: Arc<ComponentHost>,
    limits: StoreLimits,
    /// When the request ends.
    deadline: Instant,
}

impl WasiView for State {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for State {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.outbound,
        }
    }
}

fn spin_view(state: &mut State) -> SpinView<'_> {
    SpinView {
        table: &mut state.table,
        component: &state.host,
        deadline: state.deadline,
    }
}

/// Address space reserved for each linear memory: wasm32's whole 4 GiB, so that bounds checks
/// compile away and the compiled code does not depend on the instance memory limit (precompiled
/// components stay usable whatever `SPIN_MAX_INSTANCE_MEMORY` says).
const MEMORY_RESERVATION: u64 = 4 << 30;

/// How much of a pooled linear memory or table is reset with `memset` when its instance ends,
/// rather than returned to the kernel with `madvise`. Every `madvise` of a multi-threaded process
/// makes the kernel interrupt the other cores running it to flush their TLBs; on a VM those
/// interrupts took 40% of the CPU under load, and a flood on one app slowed every other app of
/// the process. Resetting a small guest's memory by hand costs a little at concurrency 1 and
/// doubles throughput at 32 (BENCHMARKS.md).
const KEEP_RESIDENT: usize = 2 << 20;

/// An engine for compiling components ahead of time: compiled code it makes is accepted by every
/// serving engine of this build.
pub fn compiling_engine() -> Result<Engine> {
    engine(Options::default().instance_memory)
}

/// An engine for serving: async, epoch deadlines, the pooling allocator.
fn engine(instance_memory: u64) -> Result<Engine> {
    let instance_memory = instance_memory.min(MEMORY_RESERVATION);
    let mut pool = PoolingAllocationConfig::default();
    pool.total_component_instances(1000)
        .total_core_instances(4000)
        .total_memories(2000)
        .total_tables(4000)
        .max_memory_size(instance_memory as usize)
        .max_core_instances_per_component(50)
        .max_memories_per_component(20)
        .max_tables_per_component(50)
        .max_component_instance_size(1 << 20)
        .max_core_instance_size(8 << 20)
        .linear_memory_keep_resident(KEEP_RESIDENT)
        .table_keep_resident(KEEP_RESIDENT);
    let mut config = Config::new();
    config
        .wasm_component_model(true)
        .epoch_interruption(true)
        .memory_reservation(MEMORY_RESERVATION)
        .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    Ok(Engine::new(&config)?)
}

impl Runtime {
    /// Where this app's request spans go, when traces are exported.
    pub fn tracer(&self) -> Option<&Tracer> {
        self.options.tracer.as_ref()
    }

    /// Prepares `app` on an engine of its own.
    pub fn new(app: App, options: Options) -> Result<Runtime> {
        let engine = ServingEngine::new(options.instance_memory)?;
        Self::on(&engine, app, options)
    }

    /// Prepares `app` on `shared`: compiles its components, opens its stores, resolves its
    /// variables. Every problem a request would meet later (a missing required variable, an
    /// undeclared store) is reported here.
    pub fn on(shared: &ServingEngine, app: App, options: Options) -> Result<Runtime> {
        let config = match &options.runtime_config {
            Some(path) => RuntimeConfig::load(path)?,
            None => RuntimeConfig::default(),
        };
        Self::on_with_config(shared, app, options, config)
    }

    /// Like [`Runtime::on`], with the runtime config given rather than read from a file.
    pub fn on_with_config(
        shared: &ServingEngine,
        mut app: App,
        options: Options,
        config: RuntimeConfig,
    ) -> Result<Runtime> {
        if let Some(retain) = &options.retain {
            app.retain(retain).map_err(anyhow::Error::msg)?;
        }
        let engine = shared.engine();
        let stores = Stores::open(
            &config,
            &options.state,
            app.components.values().flat_map(|c| &c.key_value_stores),
            app.components.values().flat_map(|c| &c.sqlite_databases),
        )?;
        let env = EnvProvider(|key: &str| std::env::var(key).ok());
        let mut providers: Vec<&dyn Provider> = vec![&options.variables];
        if options.variables_from_env {
            providers.push(&env);
        }
        let mut resolved = variables::resolve(&app, &providers).map_err(anyhow::Error::msg)?;

        let mut linker: Linker<State> = Linker::new(engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)?;
        host::add_to_linker(&mut linker, spin_view)?;

        let mut components = BTreeMap::new();
        for (id, spec) in &app.components {
            let component = if spec.precompiled {
                compile_cache::load_precompiled(engine, &spec.source)
                    .with_context(|| format!("component `{id}`"))?
            } else {
                let wasm = std::fs::read(&spec.source).with_context(|| {
                    format!("component `{id}`: cannot read {}", spec.source.display())
                })?;
                compile_cache::load_or_compile(engine, &wasm, options.cache_dir.as_deref())
                    .with_context(|| {
                        format!(
                            "component `{id}` ({}) is not a valid Wasm component",
                            spec.source.display()
                        )
                    })?
            };
            let mut linker = linker.clone();
            stub_unprovided(&mut linker, &component)?;
            let pre = linker
                .instantiate_pre(&component)
                .map_err(anyhow::Error::from)
                .with_context(|| {
                    format!("component `{id}` imports what spindle does not provide")
                })?;
            let handler = Handler::prepare(app.component_kind(id), pre)
                .with_context(|| format!("component `{id}` cannot be run by its trigger"))?;
            let allowed_hosts = resolved
                .allowed_outbound_hosts
                .remove(id)
                .unwrap_or_default();
            let allow = AllowList::parse(&allowed_hosts)
                .map_err(|err| anyhow::anyhow!("component `{id}` allowed_outbound_hosts: {err}"))?;
            let host = ComponentHost {
                id: id.clone(),
                variables: resolved.variables.remove(id).unwrap_or_default(),
                key_value: spec
                    .key_value_stores
                    .iter()
                    .map(|label| (label.clone(), stores.key_value[label].clone()))
                    .collect(),
                sqlite: spec
                    .sqlite_databases
                    .iter()
                    .map(|label| (label.clone(), stores.sqlite[label].clone()))
                    .collect(),
                allow,
            };
            let mut environment: Vec<(String, String)> =
                spec.environment.clone().into_iter().collect();
            environment.extend(options.environment.iter().cloned());
            components.insert(
                id.clone(),
                Prepared {
                    handler,
                    sockets: Sockets {
                        tcp: host.allow.mentions("tcp"),
                        udp: host.allow.mentions("udp"),
                    },
                    host: Arc::new(host),
                    environment,
                    files: assemble_files(&spec.files)?,
                },
            );
        }
        if components.is_empty() {
            bail!("the app has no components to serve");
        }
        let triggers =
            crate::trigger::render(&app.triggers, &resolved.values).map_err(anyhow::Error::msg)?;
        Ok(Runtime {
            in_flight: tokio::sync::Semaphore::new(options.max_in_flight.max(1)),
            triggers,
            health: Health::default(),
            app,
            engine: shared.clone(),
            components,
            options,
        })
    }

    /// A store for one request (or message) to `component`: its WASI context, files, stores and
    /// limits, and a deadline after which the guest is stopped.
    /// `depth` counts the requests from guests of this app to itself that led to this one.
    pub(crate) fn store(self: &Arc<Self>, component: &Prepared, depth: u8) -> Result<Store<State>> {
        self.store_for(component, depth, self.options.request_timeout, &[])
    }

    /// A store like [`Runtime::store`]'s, stopped after `timeout`, whose guest sees `args`.
    pub(crate) fn store_for(
        self: &Arc<Self>,
        component: &Prepared,
        depth: u8,
        timeout: Duration,
        args: &[String],
    ) -> Result<Store<State>> {
        let mut wasi = WasiCtx::builder();
        wasi.args(args)
            .stdout(GuestLog::stdout(&component.host.id))
            .stderr(GuestLog::stderr(&component.host.id))
            .envs(&component.environment);
        if let Some(files) = &component.files {
            wasi.preopened_dir(files.path(), "/", FsPerms::ReadOnly)?;
        }
        sockets(&mut wasi, component.sockets, &component.host);
        let app: std::sync::Weak<dyn SelfRequests> = Arc::<Runtime>::downgrade(self);
        let deadline = Instant::now() + timeout;
        let state = State {
            wasi: wasi.build(),
            http: WasiHttpCtx::new(),
            table: ResourceTable::new(),
            outbound: Outbound::new(component.host.allow.clone(), app, depth),
            host: component.host.clone(),
            limits: StoreLimitsBuilder::new()
                .memory_size(self.options.instance_memory as usize)
                .trap_on_grow_failure(true)
                .build(),
            deadline,
        };
        let mut store = Store::new(self.engine.engine(), state);
        store.limiter(|state| &mut state.limits);
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(move |_| {
            if Instant::now() >= deadline {
                Err(wasmtime::Error::new(DeadlineExceeded(timeout)))
            } else {
                // Let other requests on this thread run, then check again.
                Ok(UpdateDeadline::Yield(1))
            }
        });
        Ok(store)
    }

    /// The component by its id.
    pub(crate) fn component(&self, id: &str) -> Option<&Prepared> {
        self.components.get(id)
    }

    /// The app's share of the process's cores.
    pub fn cpu_share(&self) -> &CpuShare {
        &self.options.cpu_share
    }

    pub(crate) fn request_timeout(&self) -> Duration {
        self.options.request_timeout
    }

    /// The triggers other than HTTP, with their templates rendered.
    pub fn triggers(&self) -> &[Trigger] {
        &self.triggers
    }
}

/// The resource type of every resource of an interface spindle does not provide.
struct Unprovided;

fn stub_unprovided(
    linker: &mut Linker<State>,
    component: &wasmtime::component::Component,
) -> Result<()> {
    use wasmtime::component::{ResourceType, types::ComponentItem};
    let engine = linker.engine().clone();
    for (name, item) in component.component_type().imports(&engine) {
        let ComponentItem::ComponentInstance(instance) = item.ty else {
            continue;
        };
        // An interface of types only (`fermyon:spin/redis-types`, which a Redis handler's export
        // uses) is defined by being opened, whoever provides it: no host functions define it.
        let types_only = instance.exports(&engine).all(|(_, item)| {
            !matches!(
                item.ty,
                ComponentItem::ComponentFunc(_) | ComponentItem::Resource(_)
            )
        });
        if crate::interfaces::linked(name) && !types_only {
            continue;
        }
        let mut stubs = linker.instance(name)?;
        for (export, item) in instance.exports(&engine) {
            match item.ty {
                ComponentItem::ComponentFunc(_) => {
                    let what = format!("{name}#{export}");
                    stubs.func_new(export, move |_, _, _, _| {
                        wasmtime::bail!("`{what}` is not supported by spindle's runtime yet")
                    })?;
                }
                ComponentItem::Resource(_) => {
                    stubs.resource(export, ResourceType::host::<Unprovided>(), |_, _| Ok(()))?;
                }
                _ => {}
            }
        }
    }
    Ok(())
}

/// A request ran past its deadline.
#[derive(Debug)]
pub struct DeadlineExceeded(pub Duration);

impl std::fmt::Display for DeadlineExceeded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the request ran longer than {:?} and was stopped",
            self.0
        )
    }
}

impl std::error::Error for DeadlineExceeded {}

/// Copies a component's files into a folder of their own, laid out as the guest sees them.
fn assemble_files(files: &[(PathBuf, String)]) -> Result<Option<tempfile::TempDir>> {
    if files.is_empty() {
        return Ok(None);
    }
    let dir = tempfile::Builder::new()
        .prefix("spindle-files-")
        .tempdir()?;
    for (host, guest) in files {
        // `files::placement` normalised the paths; this keeps a copy inside the folder whatever
        // a future caller hands over.
        if guest.split('/').any(|segment| segment == "..") {
            bail!("the guest path {guest} leaves the app's files");
        }
        let target = dir.path().join(guest.trim_start_matches('/'));
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::copy(host, &target)
            .with_context(|| format!("cannot copy {} for the guest", host.display()))?;
    }
    Ok(Some(dir))
}

/// `wasi:sockets` as Spin allows them: TCP connects and UDP datagrams only where the component's
/// `allowed_outbound_hosts` has a `tcp://` or `udp://` entry for the address, binds (explicit, or
/// the implicit one of a connect) anywhere, no listening sockets, and name lookups when any socket
/// may be used. Without such entries, every socket use is denied.
fn sockets(
    wasi: &mut wasmtime_wasi::WasiCtxBuilder,
    Sockets { tcp, udp }: Sockets,
    host: &Arc<ComponentHost>,
) {
    use wasmtime_wasi::sockets::SocketAddrUse;
    wasi.allow_tcp(tcp)
        .allow_udp(udp)
        .allow_ip_name_lookup(tcp || udp);
    if !(tcp || udp) {
        return;
    }
    let host = host.clone();
    wasi.socket_addr_check(move |address, usage| {
        let host = host.clone();
        Box::pin(async move {
            match usage {
                SocketAddrUse::TcpBind | SocketAddrUse::UdpBind => true,
                SocketAddrUse::TcpListen | SocketAddrUse::TcpAccept => false,
                SocketAddrUse::TcpConnect => host.allow.allows_address("tcp", address, true).await,
                SocketAddrUse::UdpSend => host.allow.allows_address("udp", address, true).await,
                // Checked per datagram received: addresses only, no name lookups.
                SocketAddrUse::UdpReceive => host.allow.allows_address("udp", address, false).await,
            }
        })
    });
}

#[cfg(test)]
mod tests {
    use crate::compile_cache::compatibility;

    #[test]
    fn compiled_code_does_not_depend_on_the_instance_memory_limit() {
        let with_limit = |mib: u64| compatibility(&super::engine(mib << 20).unwrap());
        assert_eq!(with_limit(16), with_limit(256));
        assert_eq!(with_limit(256), with_limit(8192));
        assert_eq!(
            with_limit(256),
            compatibility(&super::compiling_engine().unwrap())
        );
    }
}
