//! Interfaces spindle does not serve: apps that import them start, and a call answers with the
//! interface's own error (what Spin answers when a service is unavailable), never a trap.

use super::{SpinView, bindings::fermyon::spin::llm};

const WHY: &str = "not supported by spindle's runtime yet";

type Answer<T, E> = wasmtime::Result<Result<T, E>>;

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
