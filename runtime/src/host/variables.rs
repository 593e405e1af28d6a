//! `fermyon:spin/variables`: a component reads the variables its manifest gives it.

use super::{
    SpinView,
    bindings::fermyon::spin::variables::{Error, Host},
};

impl Host for SpinView<'_> {
    async fn get(&mut self, name: String) -> wasmtime::Result<Result<String, Error>> {
        if !crate::template::is_variable_name(&name) {
            return Ok(Err(Error::InvalidName(format!(
                "`{name}` is not a valid variable name"
            ))));
        }
        Ok(self.component.variables.get(&name).cloned().ok_or_else(|| {
            Error::Undefined(format!(
                "no variable `{name}` for component `{}`",
                self.component.id
            ))
        }))
    }
}

/// `wasi:config/store@0.2.0-draft-2024-09-27`: the same variables, as Spin 3 serves them to
/// newer SDKs. A name that is not a variable name, or a variable the component does not have,
/// is `none`, as in Spin.
impl super::bindings::wasi::config::store::Host for SpinView<'_> {
    async fn get(
        &mut self,
        key: String,
    ) -> wasmtime::Result<Result<Option<String>, super::bindings::wasi::config::store::Error>> {
        Ok(Ok(self.component.variables.get(&key).cloned()))
    }

    async fn get_all(
        &mut self,
    ) -> wasmtime::Result<Result<Vec<(String, String)>, super::bindings::wasi::config::store::Error>>
    {
        Ok(Ok(self
            .component
            .variables
            .iter()
            .map(|(name, value)| (name.clone(), value.clone()))
            .collect()))
    }
}
