//! A guest built against `duroxide:orchestration@0.2.0` (the copy in
//! `wit/`), with bindings of its own rather than the SDK's: a component
//! deployed before the contract gained `schedule-activity-with-retry`.
//! `Hello` schedules `Greet` and waits for it.

#[allow(
    unsafe_code,
    reason = "the bindings wit-bindgen generates export and call raw functions"
)]
mod guest {
    wit_bindgen::generate!({
        world: "workflows",
        path: "wit",
    });

    use duroxide::orchestration::context;
    use duroxide::orchestration::types::{Manifest, OrchestrationInfo, Outcome};
    use exports::duroxide::orchestration::{activities, component, orchestrator};

    struct Guest;

    impl orchestrator::Guest for Guest {
        fn run(name: String, _version: String, input: String) -> Result<String, String> {
            if name != "Hello" {
                return Err(format!("unknown orchestration {name}"));
            }
            let task = context::schedule_activity("Greet", &input);
            match context::wait(&[task]).outcome {
                Outcome::Ok(output) => Ok(output),
                Outcome::Err(error) => Err(error),
            }
        }
    }

    impl activities::Guest for Guest {
        fn run(name: String, input: String) -> Result<String, String> {
            match name.as_str() {
                "Greet" => Ok(format!("hello {input} from 0.2.0")),
                _ => Err(format!("unknown activity {name}")),
            }
        }
    }

    impl component::Guest for Guest {
        fn describe() -> Manifest {
            Manifest {
                orchestrations: vec![OrchestrationInfo {
                    name: "Hello".into(),
                    version: "1.0.0".into(),
                }],
                activities: vec!["Greet".into()],
            }
        }
    }

    export!(Guest);
}
