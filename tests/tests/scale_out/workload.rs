//! The workload: programs for the `programs` guest in every shape
//! (sequences, fan-out, timers, external events, children,
//! continue-as-new), the events to raise for each, and a model that says
//! what each must output and record. No races: their winner depends on
//! timing, and every output here must be known in advance.

use std::collections::{HashMap, VecDeque};

use serde_json::{Value, json};

/// A small deterministic generator (xorshift64*), so a seed reproduces the
/// workload and the kill schedule.
pub struct Rng(pub u64);

impl Rng {
    /// The next value.
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A value in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// The shapes, one of which each program is built around.
pub const SHAPES: [&str; 6] = [
    "sequence",
    "fan-out",
    "timers",
    "events",
    "children",
    "continue-as-new",
];

/// One instance to start.
pub struct Instance {
    /// Its id.
    pub id: String,
    /// Which of [`SHAPES`] it was built around.
    pub shape: usize,
    /// The program (the orchestration's input).
    pub program: Value,
    /// Events to raise, in order: `(name, data)`.
    pub events: Vec<(String, String)>,
    /// The output it must complete with.
    pub output: String,
    /// What each execution must record, in order.
    pub executions: Vec<Expected>,
}

/// What one execution of a program records.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Expected {
    /// Activities scheduled (each completed once).
    pub activities: usize,
    /// Timers created (each fired once).
    pub timers: usize,
    /// Event subscriptions.
    pub events: usize,
    /// Children started (each completed once), with their own steps.
    pub children: Vec<Vec<Value>>,
}

fn activity(rng: &mut Rng) -> Value {
    json!({"a": format!("s{}", rng.below(100))})
}

fn timer(rng: &mut Rng) -> Value {
    json!({"t": 5 + rng.below(200)})
}

fn event(rng: &mut Rng) -> Value {
    json!({"e": format!("ev{}", rng.below(2))})
}

fn child(rng: &mut Rng) -> Value {
    let n = 1 + rng.below(2);
    let steps: Vec<Value> = (0..n)
        .map(|_| {
            if rng.below(3) == 0 {
                timer(rng)
            } else {
                activity(rng)
            }
        })
        .collect();
    json!({"child": steps})
}

/// Steps built around `shape`, with a little of the others mixed in.
fn steps(rng: &mut Rng, shape: usize) -> Vec<Value> {
    let mut steps = match shape {
        0 => (0..2 + rng.below(3)).map(|_| activity(rng)).collect(),
        1 => {
            let n = 3 + rng.below(5);
            vec![json!({"join": (0..n).map(|_| activity(rng)).collect::<Vec<_>>()})]
        }
        2 => vec![timer(rng), activity(rng), timer(rng)],
        3 => {
            let mut steps = vec![event(rng), activity(rng)];
            if rng.below(2) == 0 {
                steps.push(json!({"join": [event(rng), activity(rng)]}));
            }
            steps
        }
        4 => {
            let mut steps = vec![child(rng)];
            if rng.below(2) == 0 {
                steps.push(json!({"join": [child(rng), activity(rng)]}));
            }
            steps
        }
        _ => vec![activity(rng)],
    };
    // A step of another shape now and then.
    if rng.below(4) == 0 {
        steps.push(match rng.below(4) {
            0 => timer(rng),
            1 => event(rng),
            2 => child(rng),
            _ => activity(rng),
        });
    }
    steps
}

/// The output of `step`, taking the events it waits for from `events` in
/// the order the guest subscribes (depth first), and what it records.
fn run(step: &Value, events: &mut HashMap<String, VecDeque<String>>, rec: &mut Expected) -> String {
    if let Some(text) = step.get("a").and_then(Value::as_str) {
        rec.activities += 1;
        return format!("{text}!");
    }
    if let Some(ms) = step.get("t").and_then(Value::as_u64) {
        rec.timers += 1;
        return format!("t{ms}");
    }
    if let Some(name) = step.get("e").and_then(Value::as_str) {
        rec.events += 1;
        return events
            .get_mut(name)
            .and_then(VecDeque::pop_front)
            .unwrap_or_default();
    }
    if let Some(steps) = step.get("join").and_then(Value::as_array) {
        let outs: Vec<String> = steps.iter().map(|s| run(s, events, rec)).collect();
        return format!("[{}]", outs.join(","));
    }
    if let Some(steps) = step.get("child").and_then(Value::as_array) {
        rec.children.push(steps.clone());
        let mut none = HashMap::new();
        let mut inner = Expected::default();
        let outs: Vec<String> = steps
            .iter()
            .map(|s| run(s, &mut none, &mut inner))
            .collect();
        return outs.join(";");
    }
    String::new()
}

/// The events `steps` wait for, by name, depth first.
fn waits(step: &Value, names: &mut Vec<String>) {
    if let Some(name) = step.get("e").and_then(Value::as_str) {
        names.push(name.to_owned());
    }
    if let Some(steps) = step.get("join").and_then(Value::as_array) {
        for s in steps {
            waits(s, names);
        }
    }
}

/// The output and records of a child running `steps`.
pub fn child_expectation(steps: &[Value]) -> (String, Expected) {
    let mut none = HashMap::new();
    let mut rec = Expected::default();
    let outs: Vec<String> = steps.iter().map(|s| run(s, &mut none, &mut rec)).collect();
    (outs.join(";"), rec)
}

/// Instance `n` of the workload.
pub fn instance(rng: &mut Rng, n: usize) -> Instance {
    let shape = n % SHAPES.len();
    let steps = steps(rng, shape);
    let continues = if shape == 5 {
        1 + rng.below(2)
    } else {
        u64::from(rng.below(8) == 0)
    };
    // Every execution waits for the same events; the k-th event of a name
    // goes to the k-th wait for it, across executions.
    let mut names = Vec::new();
    for s in &steps {
        waits(s, &mut names);
    }
    let mut events = Vec::new();
    let mut queues: HashMap<String, VecDeque<String>> = HashMap::new();
    let mut counters: HashMap<String, usize> = HashMap::new();
    for _ in 0..=continues {
        for name in &names {
            let k = counters.entry(name.clone()).or_default();
            let data = format!("{name}#{k}");
            *k += 1;
            queues
                .entry(name.clone())
                .or_default()
                .push_back(data.clone());
            events.push((name.clone(), data));
        }
    }
    let mut output: Option<String> = None;
    let mut executions = Vec::new();
    for _ in 0..=continues {
        let mut rec = Expected::default();
        let outs: Vec<String> = steps
            .iter()
            .map(|s| run(s, &mut queues, &mut rec))
            .collect();
        let this = outs.join(";");
        output = Some(match output {
            Some(carried) => format!("{carried};{this}"),
            None => this,
        });
        executions.push(rec);
    }
    Instance {
        id: format!("so-{n}"),
        shape,
        program: json!({"steps": steps, "continue": continues}),
        events,
        output: output.unwrap_or_default(),
        executions,
    }
}

/// The workload as the client process reads it: one JSON line each.
pub fn client_file(instances: &[Instance]) -> String {
    let mut text = String::new();
    for i in instances {
        let line = json!({
            "id": i.id,
            "name": "Program",
            "input": i.program.to_string(),
            "events": i.events,
        });
        text.push_str(&line.to_string());
        text.push('\n');
    }
    text
}
