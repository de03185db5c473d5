//! Policy files for `duroxide deploy --policy FILE`: a `ComponentPolicy` as
//! TOML (a file named `*.toml`) or JSON (any other name). Fields left out
//! keep their defaults; an unknown field is refused, naming it, so a
//! misspelt limit never passes unnoticed.

use std::path::Path;

use duroxide::ComponentPolicy;

use crate::exit::{Code, fail};

/// Reads and checks the policy file at `file`.
pub async fn read(file: &Path) -> anyhow::Result<ComponentPolicy> {
    let text = tokio::fs::read_to_string(file).await.map_err(|e| {
        let code = match e.kind() {
            std::io::ErrorKind::NotFound => Code::NotFound,
            _ => Code::Failure,
        };
        fail(
            code,
            format!("cannot read policy file '{}': {e}", file.display()),
        )
    })?;
    parse(&text, is_toml(file)).map_err(|reason| {
        fail(
            Code::Usage,
            format!("policy file '{}' is not a policy: {reason}", file.display()),
        )
    })
}

/// Whether `file` is named as TOML.
fn is_toml(file: &Path) -> bool {
    file.extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("toml"))
}

/// The policy `text` holds, as TOML or JSON.
fn parse(text: &str, toml: bool) -> Result<ComponentPolicy, String> {
    if toml {
        toml::from_str(text).map_err(|e| e.to_string())
    } else {
        serde_json::from_str(text).map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn toml_and_json_give_the_same_policy() {
        let toml = r#"
            memory_budget_bytes = 536870912
            max_history_events = 5000
            [limits]
            max_memory_bytes = 33554432
            orchestration_turn_budget_ms = 500
        "#;
        let json = r#"{"memory_budget_bytes": 536870912, "max_history_events": 5000,
            "limits": {"max_memory_bytes": 33554432, "orchestration_turn_budget_ms": 500}}"#;
        let from_toml = parse(toml, true).unwrap();
        assert_eq!(from_toml, parse(json, false).unwrap());
        assert_eq!(from_toml.memory_budget_bytes, 512 << 20);
        assert_eq!(
            from_toml.limits.orchestration_turn_budget,
            Duration::from_millis(500)
        );
        assert_eq!(
            from_toml.max_concurrent_activities,
            ComponentPolicy::default().max_concurrent_activities
        );
    }

    #[test]
    fn a_misspelt_field_is_refused_by_name() {
        let err = parse("max_history = 5", true).unwrap_err();
        assert!(err.contains("max_history"), "{err}");
        let err = parse(r#"{"limits": {"max_memory": 1}}"#, false).unwrap_err();
        assert!(err.contains("unknown field `max_memory`"), "{err}");
    }

    #[test]
    fn files_are_told_apart_by_their_extension() {
        assert!(is_toml(Path::new("p.toml")));
        assert!(is_toml(Path::new("p.TOML")));
        assert!(!is_toml(Path::new("p.json")));
        assert!(!is_toml(Path::new("policy")));
    }
}
