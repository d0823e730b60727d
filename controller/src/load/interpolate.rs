//! stub
#[derive(Debug, Clone, thiserror::Error)]
#[error("x")]
pub enum InterpolationError {
    X,
}
pub struct Substituted {
    pub value: String,
    pub unset: Vec<String>,
}
pub fn substitute(
    t: &str,
    _l: &dyn Fn(&str) -> Option<String>,
) -> Result<Substituted, InterpolationError> {
    Ok(Substituted {
        value: t.into(),
        unset: vec![],
    })
}
