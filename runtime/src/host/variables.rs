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
