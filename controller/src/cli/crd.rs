//! `stackd crd`: the Stack CustomResourceDefinition as YAML (what
//! `crds/stack.yaml` holds).
use std::io::Write;

use kube::core::CustomResourceExt;

use super::CliError;
use crate::model::Stack;

/// The Stack CRD rendered as a YAML document, ending with a newline.
pub fn crd_yaml() -> Result<String, CliError> {
    let mut text = serde_saphyr::to_string(&Stack::crd()).map_err(CliError::YamlOutputFailed)?;
    if !text.ends_with('\n') {
        text.push('\n');
    }
    Ok(text)
}

pub(super) fn run(out: &mut dyn Write) -> Result<(), CliError> {
    out.write_all(crd_yaml()?.as_bytes())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_crd_yaml_parses_back_to_the_same_definition() {
        let yaml = crd_yaml().unwrap();
        let parsed: k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition =
            serde_saphyr::from_str(&yaml).unwrap();
        assert_eq!(parsed, Stack::crd());
    }
}
