//! Interfaces spindle does not serve yet: apps that import them start, and a call answers with
//! the interface's own error (what Spin answers when a service is unreachable), never a trap.

use wasmtime::component::Resource;

use super::{
    SpinView,
    bindings::fermyon::spin::{llm, mqtt, mysql, rdbms_types},
};

/// The connection that can never be opened.
pub enum Never {}

const WHY: &str = "not supported by spindle's runtime yet";

type Answer<T, E> = wasmtime::Result<Result<T, E>>;

fn never<T>(
    table: &wasmtime::component::ResourceTable,
    handle: &Resource<Never>,
) -> wasmtime::Result<T> {
    match *table.get(handle)? {}
}

impl mqtt::HostConnection for SpinView<'_> {
    async fn open(
        &mut self,
        address: String,
        _: String,
        _: String,
        _: u64,
    ) -> Answer<Resource<Never>, mqtt::Error> {
        Ok(Err(mqtt::Error::ConnectionFailed(format!(
            "mqtt ({address}): {WHY}"
        ))))
    }
    async fn publish(
        &mut self,
        c: Resource<Never>,
        _: String,
        _: Vec<u8>,
        _: mqtt::Qos,
    ) -> Answer<(), mqtt::Error> {
        never(self.table, &c)
    }
    async fn drop(&mut self, c: Resource<Never>) -> wasmtime::Result<()> {
        never(self.table, &c)
    }
}

impl mqtt::Host for SpinView<'_> {}

impl mysql::HostConnection for SpinView<'_> {
    async fn open(&mut self, _: String) -> Answer<Resource<Never>, rdbms_types::Error> {
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
