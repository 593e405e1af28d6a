//! Interfaces spindle does not serve yet: apps that import them start, and a call answers with
//! the interface's own error (what Spin answers when a service is unreachable), never a trap.
//! An address `allowed_outbound_hosts` does not allow is refused first, with Spin's message, as
//! it will be once the interface is served.

use wasmtime::component::Resource;

use super::{
    SpinView,
    bindings::fermyon::spin::{llm, mysql, rdbms_types},
};

/// The connection that can never be opened.
pub enum Never {}

const WHY: &str = "not supported by spindle's runtime yet";

type Answer<T, E> = wasmtime::Result<Result<T, E>>;

/// Why `address` (`scheme://[user[:password]@]host[:port][/…]`) may not be opened, when the
/// component's `allowed_outbound_hosts` does not allow it (or it has no host); credentials masked.
pub(super) fn refused(view: &SpinView<'_>, address: &str) -> Option<String> {
    let refusal = || {
        Some(format!(
            "address {} is not permitted",
            crate::allow_list::redact(address)
        ))
    };
    let Some((scheme, rest)) = address.split_once("://") else {
        return refusal();
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, at)| at);
    let (host, port) = match host_port.strip_prefix('[') {
        Some(bracketed) => {
            let (host, after) = bracketed.split_once(']').unwrap_or((bracketed, ""));
            (host, after.strip_prefix(':'))
        }
        None => match host_port.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (host_port, None),
        },
    };
    let port = match port.map(str::parse::<u16>) {
        Some(Ok(port)) => Some(port),
        Some(Err(_)) => return refusal(),
        None => None,
    };
    if host.is_empty() || !view.component.allow.allows(scheme, host, port) {
        return refusal();
    }
    None
}

fn never<T>(
    table: &wasmtime::component::ResourceTable,
    handle: &Resource<Never>,
) -> wasmtime::Result<T> {
    match *table.get(handle)? {}
}

impl mysql::HostConnection for SpinView<'_> {
    async fn open(&mut self, address: String) -> Answer<Resource<Never>, rdbms_types::Error> {
        if let Some(refusal) = refused(self, &address) {
            return Ok(Err(rdbms_types::Error::ConnectionFailed(refusal)));
        }
        Ok(Err(rdbms_types::Error::ConnectionFailed(format!(
            "mysql: {WHY}"
        ))))
    }
    async fn query(
        &mut self,
        c: Resource<Never>,
        _: String,
        _: Vec<rdbms_types::ParameterValue>,
    ) -> Answer<rdbms_types::RowSet, rdbms_types::Error> {
        never(self.table, &c)
    }
    async fn execute(
        &mut self,
        c: Resource<Never>,
        _: String,
        _: Vec<rdbms_types::ParameterValue>,
    ) -> Answer<(), rdbms_types::Error> {
        never(self.table, &c)
    }
    async fn drop(&mut self, c: Resource<Never>) -> wasmtime::Result<()> {
        never(self.table, &c)
    }
}

impl mysql::Host for SpinView<'_> {}

impl rdbms_types::Host for SpinView<'_> {}

impl llm::Host for SpinView<'_> {
    async fn infer(
        &mut self,
        model: String,
        _: String,
        _: Option<llm::InferencingParams>,
    ) -> Answer<llm::InferencingResult, llm::Error> {
        Ok(Err(llm::Error::RuntimeError(format!(
            "model `{model}`: {WHY}"
        ))))
    }
    async fn generate_embeddings(
        &mut self,
        model: String,
        _: Vec<String>,
    ) -> Answer<llm::EmbeddingsResult, llm::Error> {
        Ok(Err(llm::Error::RuntimeError(format!(
            "model `{model}`: {WHY}"
        ))))
    }
}
